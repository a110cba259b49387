"""The hazardous layer: small format code over ``cryptography``'s primitives.

Nothing here invents cryptography.  It encodes and checks standard formats (OpenSSH keys and
SSHSIG signatures, age files, RFC 6962 Merkle hashing, C2SP signed notes) and is tested against
the standard tools.  Only ``bundle``, ``ledger``, ``keys`` and ``trust`` import it; the CLI never
does.  Failures are deliberately opaque: one error, no detailed oracle.
"""
