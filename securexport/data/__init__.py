"""The data path: the read-only source, the minimising transforms, k-anonymity, the one-snapshot
pipeline and its two-process read, the encrypted spool, and the breach-response entity list."""
