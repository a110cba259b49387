"""Ledger receipts: ``c2sp.org/tlog-proof@v1``, an offline proof that one manifest is logged.

A bundle's ``receipt.tlog`` holds the entry's index, its RFC 6962 inclusion proof and the signed
checkpoint the proof leads to.  :func:`parse_receipt` reads one strictly; :func:`verify_receipt`
checks it against trusted ledger keys.  Pure: bytes in, verdict out, no ledger needed.
"""

from __future__ import annotations

import base64
import binascii
import re
from collections.abc import Sequence
from dataclasses import dataclass, field

from securexport._crypto import merkle
from securexport._crypto.note import Checkpoint, open_note
from securexport.errors import VerificationError
from securexport.limits import DEFAULT_LIMITS

TLOG_PROOF_HEADER = "c2sp.org/tlog-proof@v1"
MAX_PROOF_HASHES = 64
_INDEX_RE = re.compile(r"0|[1-9][0-9]{0,19}")


@dataclass(frozen=True)
class Receipt:
    """An offline proof that one leaf is in the log: index, inclusion proof, signed checkpoint."""

    index: int
    proof: tuple[bytes, ...]
    checkpoint: str  # the signed checkpoint note, verbatim
    extra: bytes | None = None  # opaque and unauthenticated (tlog-proof "extra" line)

    def to_bytes(self) -> bytes:
        lines = [TLOG_PROOF_HEADER]
        if self.extra is not None:
            lines.append("extra " + base64.b64encode(self.extra).decode())
        lines.append(f"index {self.index}")
        lines.extend(base64.b64encode(h).decode() for h in self.proof)
        return ("\n".join(lines) + "\n\n" + self.checkpoint).encode()


def _strict_b64(text: str) -> bytes:
    raw = base64.b64decode(text, validate=True)
    if base64.b64encode(raw).decode() != text:
        raise ValueError("non-canonical base64")
    return raw


def parse_receipt(data: bytes, *, max_bytes: int = DEFAULT_LIMITS.max_receipt_bytes) -> Receipt:
    """Parse a ``c2sp.org/tlog-proof@v1`` receipt strictly (no signature checks here)."""
    bad = VerificationError("malformed ledger receipt", hint="the receipt.tlog file is damaged")
    if len(data) > max_bytes:
        raise VerificationError(f"ledger receipt larger than {max_bytes} bytes")
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise bad from exc
    head, sep, checkpoint = text.partition("\n\n")
    if not sep or not checkpoint:
        raise bad
    lines = head.split("\n")
    if lines[0] != TLOG_PROOF_HEADER or len(lines) < 2:
        raise bad
    rest = lines[1:]
    extra: bytes | None = None
    try:
        if rest[0].startswith("extra "):
            extra = _strict_b64(rest[0][len("extra ") :])
            rest = rest[1:]
        if not rest or not rest[0].startswith("index "):
            raise bad
        index_text = rest[0][len("index ") :]
        if not _INDEX_RE.fullmatch(index_text):
            raise bad
        hashes = [_strict_b64(line) for line in rest[1:]]
    except (binascii.Error, ValueError) as exc:
        raise bad from exc
    if len(hashes) > MAX_PROOF_HASHES or any(len(h) != merkle.HASH_SIZE for h in hashes):
        raise bad
    return Receipt(int(index_text), tuple(hashes), checkpoint, extra)


@dataclass(frozen=True)
class ReceiptVerdict:
    """What a verified receipt proves: the leaf is entry ``index`` under ``checkpoint``."""

    index: int
    checkpoint: Checkpoint
    checkpoint_note: str = field(repr=False)

    @property
    def origin(self) -> str:
        return self.checkpoint.origin

    @property
    def size(self) -> int:
        return self.checkpoint.size

    @property
    def root_hash(self) -> bytes:
        return self.checkpoint.root_hash


def verify_receipt(
    receipt_bytes: bytes,
    leaf: bytes,
    verifier_keys: Sequence[str],
    *,
    origin: str | None = None,
    max_bytes: int = DEFAULT_LIMITS.max_receipt_bytes,
) -> ReceiptVerdict:
    """Check that ``leaf`` (the signed manifest bytes) is logged; return index and checkpoint.

    The checkpoint must be signed by a trusted key whose name is the checkpoint's origin (and the
    origin must be ``origin`` when given), and the inclusion proof must lead from
    ``leaf_hash(leaf)`` at the receipt's index to the checkpoint's root.  Pure: bytes in, verdict
    out; any failure is a :class:`VerificationError`.
    """
    receipt = parse_receipt(receipt_bytes, max_bytes=max_bytes)
    opened = open_note(receipt.checkpoint, verifier_keys)
    checkpoint = Checkpoint.parse(opened.text)
    if checkpoint.origin not in opened.verified_by:
        raise VerificationError(
            "the receipt's checkpoint is not signed by the log it names",
            hint="trust the ledger key of the exporter's installation (trust add --role ledger)",
        )
    if origin is not None and checkpoint.origin != origin:
        raise VerificationError("the receipt comes from another ledger")
    if not merkle.verify_inclusion(
        merkle.leaf_hash(leaf), receipt.index, checkpoint.size, receipt.proof, checkpoint.root_hash
    ):
        raise VerificationError("the receipt does not prove that this manifest is in the ledger")
    return ReceiptVerdict(receipt.index, checkpoint, receipt.checkpoint)
