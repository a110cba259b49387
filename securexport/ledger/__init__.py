"""The export register: the Merkle log and its SQLite and PostgreSQL stores, receipts, the sync
file the exporter sends the data owner, the owner's mirror and the cosignature checks."""
