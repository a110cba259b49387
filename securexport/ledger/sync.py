"""The ledger sync file: what an exporter sends the data owner's witness (DESIGN.md §12).

Canonical JSON (RFC 8785): the entries since SIZE (signed manifests, with the approval and its
signature, and any breach-response attachment), the newest signed checkpoint and an RFC 6962
consistency proof from SIZE.  Parsing is strict; signatures and proofs are checked by the
witness (securexport.api.witnessing).
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import rfc8785

from securexport._crypto import merkle
from securexport._crypto.note import Checkpoint
from securexport.bundle.container import APPROVAL, APPROVAL_SIG
from securexport.data.entities import ENTITIES
from securexport.errors import UsageError, VerificationError
from securexport.ledger.log import Ledger

SYNC_SCHEMA = "securexport.ledger-sync/1"
SYNC_ATTACHMENTS = (APPROVAL, APPROVAL_SIG, ENTITIES)


@dataclass(frozen=True)
class SyncEntry:
    index: int
    manifest: bytes
    signature: bytes
    attachments: Mapping[str, bytes] = field(default_factory=dict)


@dataclass(frozen=True)
class SyncFile:
    origin: str
    since: int
    checkpoint: str  # the ledger's signed note, verbatim
    consistency: tuple[bytes, ...]
    entries: tuple[SyncEntry, ...]

    def to_bytes(self) -> bytes:
        doc: dict[str, Any] = {
            "schema": SYNC_SCHEMA,
            "origin": self.origin,
            "since": self.since,
            "checkpoint": self.checkpoint,
            "consistency": [base64.b64encode(h).decode() for h in self.consistency],
            "entries": [
                {
                    "index": e.index,
                    "manifest": base64.b64encode(e.manifest).decode(),
                    "signature": base64.b64encode(e.signature).decode(),
                    "attachments": {
                        k: base64.b64encode(v).decode() for k, v in sorted(e.attachments.items())
                    },
                }
                for e in self.entries
            ],
        }
        return bytes(rfc8785.dumps(doc))


def _b64(value: object) -> bytes:
    if not isinstance(value, str):
        raise ValueError("expected base64 text")
    raw = base64.b64decode(value, validate=True)
    if base64.b64encode(raw).decode() != value:
        raise ValueError("non-canonical base64")
    return raw


def parse_sync(data: bytes) -> SyncFile:
    """Parse a sync file strictly (signatures and proofs are checked by :func:`witness`)."""
    bad = "malformed ledger sync file"
    try:
        doc = json.loads(data.decode("utf-8"))
        if not isinstance(doc, dict) or doc.get("schema") != SYNC_SCHEMA:
            raise ValueError("schema")
        if set(doc) != {"schema", "origin", "since", "checkpoint", "consistency", "entries"}:
            raise ValueError("keys")
        origin, since, note = doc["origin"], doc["since"], doc["checkpoint"]
        if not isinstance(origin, str) or not isinstance(note, str):
            raise ValueError("types")
        if isinstance(since, bool) or not isinstance(since, int) or since < 0:
            raise ValueError("since")
        proof = tuple(_b64(h) for h in doc["consistency"])
        if any(len(h) != merkle.HASH_SIZE for h in proof) or len(proof) > 64:
            raise ValueError("proof")
        entries = []
        for i, item in enumerate(doc["entries"]):
            if set(item) != {"index", "manifest", "signature", "attachments"}:
                raise ValueError("entry keys")
            if item["index"] != since + i:
                raise ValueError("entry index")
            attachments = item["attachments"]
            if not isinstance(attachments, dict) or set(attachments) - set(SYNC_ATTACHMENTS):
                raise ValueError("attachments")
            entries.append(
                SyncEntry(
                    index=since + i,
                    manifest=_b64(item["manifest"]),
                    signature=_b64(item["signature"]),
                    attachments={k: _b64(v) for k, v in attachments.items()},
                )
            )
    except (UnicodeDecodeError, ValueError, TypeError, KeyError, binascii.Error) as exc:
        raise VerificationError(bad) from exc
    return SyncFile(origin, since, note, proof, tuple(entries))


def make_sync(ledger: Ledger, since: int) -> tuple[SyncFile, int]:
    """Exporter side: the sync file from ``since`` to the newest checkpoint, and its size."""
    note = ledger.latest_checkpoint()
    if note is None:
        raise VerificationError("the ledger is empty: nothing to sync")
    size = Checkpoint.parse(note[: note.rfind("\n\n") + 1]).size
    if not 0 <= since <= size:
        raise UsageError(f"--since must be between 0 and {size}, the ledger's size")
    entries = []
    for entry in ledger.entries(start=since, limit=size - since):
        attachments = {}
        for name in SYNC_ATTACHMENTS:
            data = ledger.attachment(entry.export_id, name)
            if data is not None:
                attachments[name] = data
        entries.append(SyncEntry(entry.index, entry.leaf, entry.signature, attachments))
    proof = ledger.consistency_proof(since, size)
    return SyncFile(ledger.origin, since, note, tuple(proof), tuple(entries)), size
