"""Resource limits as data: one frozen dataclass with safe defaults, passed explicitly."""

from __future__ import annotations

from dataclasses import dataclass

KiB = 1024
MiB = 1024 * KiB
GiB = 1024 * MiB


@dataclass(frozen=True)
class Limits:
    """Bounds checked *before* work is done on untrusted input (DESIGN.md §12)."""

    max_bundle_bytes: int = 64 * GiB
    max_bundle_entries: int = 16  # outer bundle: the fixed member names, plus cosignatures
    max_payload_entries: int = 64
    max_manifest_bytes: int = 4 * MiB
    max_approval_bytes: int = 1 * MiB
    max_signature_bytes: int = 16 * KiB
    max_receipt_bytes: int = 256 * KiB
    max_key_file_bytes: int = 64 * KiB
    max_sync_bytes: int = 512 * MiB  # a ledger sync file (the owner's witness reads it whole)
    max_revocation_bytes: int = 16 * KiB
    max_trust_file_bytes: int = 1 * MiB  # allowed_signers, trusted_logs
    max_entity_list_bytes: int = 1 * GiB  # a sealed breach-response entity list, decrypted
    max_expansion_ratio: int = 1000  # uncompressed / compressed size of one payload entry
    max_recipients: int = 64
    max_scrypt_log_n: int = 18  # age's default cost is the ceiling (DESIGN.md §9)
    max_row_cap: int = 100_000_000
    # an approval's lists: values of one op = "in" filter, bucket edges, map entries
    max_in_values: int = 1000
    max_bucket_edges: int = 1000
    max_map_entries: int = 10_000
    max_cell_bytes: int = 16 * MiB
    # decrypt's recount of k holds at most this many distinct (class, entity) pairs in memory
    # at once (~100 bytes each, so ~25 MB); a payload with more rows counts them through
    # encrypted scratch files, this many at a time (securexport.content)
    max_k_pairs_in_memory: int = 250_000


DEFAULT_LIMITS = Limits()
