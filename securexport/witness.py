"""The data owner's witness (DESIGN.md §12): an offline file exchange that makes run caps, expiry
and revocation the owner's to enforce, not the exporter's installation's.

1. Exporter: ``ledger sync --since SIZE -o FILE`` writes a sync file: the entries since SIZE
   (signed manifests, with the approval and its signature, and any breach-response
   attachment), the newest signed checkpoint and an RFC 6962 consistency proof from SIZE.
2. Owner: ``ledger witness FILE --log NAME`` checks the file against the log's key (trusted with
   ``trust add NAME KEY --role ledger``) and against a mirror of every entry it has seen
   (``witness/<origin>.db`` in the owner's home): the old entries must be unchanged, the tree
   rebuilt from the mirror plus the new entries must have the checkpoint's root, and every new
   export must stay inside its approval (signed by a trusted approver, exporter named, created
   inside the validity window and not long before now, runs counted over the mirror ≤
   ``max_runs``, nothing revoked).  Only then does it store the checkpoint and cosign it with its
   own Ed25519 key (C2SP ``cosignature/v1``), writing the cosigned checkpoint to a file.
   One refused export refuses the whole file: a cosignature vouches for every entry under it.
3. Exporter: ``ledger cosign BUNDLE COSIG`` proves the bundle's entry against the cosigned
   checkpoint and adds that proof, as ``receipt.cosig``, to the bundle.

``verify``/``decrypt`` of a bundle whose approval names ``[witness] key`` with
``required = true`` refuse it without a valid ``receipt.cosig`` by that key (exit 5).
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import hashlib
import json
import sqlite3
import urllib.parse
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import rfc8785
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from securexport import policy
from securexport._crypto import merkle, sshsig
from securexport._crypto.cosignature import (
    add_cosignature,
    cosign,
    make_cosigner_key,
    verify_cosignature,
)
from securexport._crypto.note import Checkpoint, open_note
from securexport.approval import Approval, Witness
from securexport.bundle import APPROVAL, APPROVAL_SIG, MANIFEST, add_cosignature_member
from securexport.environment import Environment
from securexport.errors import (
    FileError,
    PolicyError,
    SecurexportError,
    UsageError,
    VerificationError,
)
from securexport.fsutil import atomic_write, ensure_private_dir
from securexport.ledger import Receipt, verify_receipt
from securexport.limits import DEFAULT_LIMITS, Limits
from securexport.manifest import parse_manifest
from securexport.revocation import Revocations

SYNC_SCHEMA = "securexport.ledger-sync/1"
MAX_SYNC_BYTES = 512 * 1024 * 1024
ENTITIES = "entities.age"  # the breach-response attachment (securexport.breach)
SYNC_ATTACHMENTS = (APPROVAL, APPROVAL_SIG, ENTITIES)
DEFAULT_MAX_DELAY = timedelta(days=31)
CLOCK_SKEW = timedelta(minutes=5)


def witness_name(private_key: Ed25519PrivateKey) -> str:
    """The witness's key name: ``securexport.witness/<16 hex of SHA-256(public key)>``."""
    from cryptography.hazmat.primitives import serialization

    raw = private_key.public_key().public_bytes(
        serialization.Encoding.Raw, serialization.PublicFormat.Raw
    )
    return f"securexport.witness/{hashlib.sha256(raw).hexdigest()[:16]}"


def witness_verifier_key(env: Environment) -> str:
    """The owner's witness key (cosignature/v1), for approvals' ``[witness] key``."""
    from securexport.api import _keystore

    key = _keystore(env).witness_signing_key()
    return make_cosigner_key(witness_name(key), key.public_key())


# --------------------------------------------------------------------------------------------
# Sync files
# --------------------------------------------------------------------------------------------


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


def make_sync(env: Environment, since: int) -> tuple[SyncFile, int]:
    """Exporter side: the sync file from ``since`` to the newest checkpoint, and its size."""
    from securexport.register import _open_ledger

    with _open_ledger(env) as ledger:
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


def write_sync(env: Environment, since: int, output: Path) -> dict[str, Any]:
    sync, size = make_sync(env, since)
    atomic_write(output, sync.to_bytes(), mode=0o644)
    return {"output": str(output), "origin": sync.origin, "since": since, "size": size}


# --------------------------------------------------------------------------------------------
# The witness's mirror: $SECUREXPORT_HOME/witness/<origin, percent-encoded>.db
# --------------------------------------------------------------------------------------------

_MIRROR_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS entries (
    idx             INTEGER PRIMARY KEY,
    export_id       TEXT NOT NULL UNIQUE,
    approval_id     TEXT NOT NULL,
    approval_sha256 TEXT NOT NULL,
    created_at      TEXT NOT NULL,
    leaf            BLOB NOT NULL,
    signature       BLOB NOT NULL,
    leaf_hash       BLOB NOT NULL
);
CREATE INDEX IF NOT EXISTS entries_approval ON entries (approval_sha256);
CREATE TABLE IF NOT EXISTS attachments (
    export_id TEXT NOT NULL, name TEXT NOT NULL, data BLOB NOT NULL,
    PRIMARY KEY (export_id, name)
);
CREATE TABLE IF NOT EXISTS checkpoints (
    size INTEGER PRIMARY KEY, root_hash BLOB NOT NULL, note TEXT NOT NULL,
    cosigned_at TEXT NOT NULL
);
"""


def mirror_path(env: Environment, origin: str) -> Path:
    return env.home.path / "witness" / (urllib.parse.quote(origin, safe="") + ".db")


class Mirror:
    """Every entry of one log the witness has checked, and the checkpoints it cosigned."""

    def __init__(self, path: Path) -> None:
        ensure_private_dir(path.parent)
        try:
            self.conn = sqlite3.connect(str(path), timeout=60, isolation_level=None)
            self.conn.execute("PRAGMA synchronous = FULL")
            for statement in _MIRROR_SCHEMA.split(";"):
                if statement.strip():
                    self.conn.execute(statement)
        except sqlite3.Error as exc:
            raise FileError(f"cannot open the witness mirror {path}: {exc}") from exc
        path.chmod(0o600)

    def close(self) -> None:
        self.conn.close()

    def latest(self) -> tuple[int, bytes, str] | None:
        row = self.conn.execute(
            "SELECT size, root_hash, note FROM checkpoints ORDER BY size DESC LIMIT 1"
        ).fetchone()
        return None if row is None else (int(row[0]), bytes(row[1]), str(row[2]))

    def leaf_hashes(self, limit: int) -> Iterator[bytes]:
        cursor = self.conn.execute(
            "SELECT leaf_hash FROM entries WHERE idx < ? ORDER BY idx", (limit,)
        )
        while rows := cursor.fetchmany(1024):
            for row in rows:
                yield bytes(row[0])

    def leaf_hash(self, index: int) -> bytes | None:
        row = self.conn.execute("SELECT leaf_hash FROM entries WHERE idx = ?", (index,)).fetchone()
        return None if row is None else bytes(row[0])

    def runs(self, approval_sha256: str) -> int:
        row = self.conn.execute(
            "SELECT COUNT(*) FROM entries WHERE approval_sha256 = ?", (approval_sha256,)
        ).fetchone()
        return int(row[0])

    def entry(self, export_id: str) -> tuple[int, bytes, bytes] | None:
        row = self.conn.execute(
            "SELECT idx, leaf, signature FROM entries WHERE export_id = ?", (export_id,)
        ).fetchone()
        return None if row is None else (int(row[0]), bytes(row[1]), bytes(row[2]))

    def export_ids(self) -> list[str]:
        return [str(r[0]) for r in self.conn.execute("SELECT export_id FROM entries ORDER BY idx")]

    def attachment(self, export_id: str, name: str) -> bytes | None:
        row = self.conn.execute(
            "SELECT data FROM attachments WHERE export_id = ? AND name = ?", (export_id, name)
        ).fetchone()
        return None if row is None else bytes(row[0])

    @contextlib.contextmanager
    def transaction(self) -> Iterator[None]:
        self.conn.execute("BEGIN IMMEDIATE")
        try:
            yield
        except BaseException:
            self.conn.execute("ROLLBACK")
            raise
        self.conn.execute("COMMIT")


# --------------------------------------------------------------------------------------------
# Witnessing
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class WitnessReport:
    origin: str
    old_size: int
    new_size: int
    new_entries: int
    witness_key: str
    output: Path | None

    def to_json(self) -> dict[str, Any]:
        return {
            "origin": self.origin,
            "old_size": self.old_size,
            "size": self.new_size,
            "new_entries": self.new_entries,
            "witness_key": self.witness_key,
            "cosignature": str(self.output) if self.output else None,
        }


class _ApprovalSource:
    """Approvals by SHA-256: from the sync file's attachments, or files the owner gives."""

    def __init__(self, env: Environment, extra: Sequence[Path], limits: Limits) -> None:
        from securexport.api import _approver_lookup, _trust

        self._lookup = _approver_lookup(_trust(env))
        self._limits = limits
        self._given: dict[str, tuple[bytes, bytes]] = {}
        self._checked: dict[str, Approval] = {}
        for path in extra:
            try:
                raw = path.read_bytes()
                sig = path.with_name(path.name + ".sig").read_bytes()
            except OSError as exc:
                raise FileError(f"cannot read {exc.filename}: {exc.strerror}") from exc
            self._given[hashlib.sha256(raw).hexdigest()] = (raw, sig)

    def get(self, sha256: str, attachments: Mapping[str, bytes]) -> Approval:
        if sha256 in self._checked:
            return self._checked[sha256]
        if APPROVAL in attachments and APPROVAL_SIG in attachments:
            raw, sig = attachments[APPROVAL], attachments[APPROVAL_SIG]
        elif sha256 in self._given:
            raw, sig = self._given[sha256]
        else:
            raise PolicyError(
                f"the approval with sha256 {sha256[:16]}… is not in the sync file",
                hint="pass it with --approval FILE (FILE.sig beside it)",
            )
        if hashlib.sha256(raw).hexdigest() != sha256:
            raise PolicyError("the approval sent with an export is not the one it names")
        signed = policy.load_signed_approval(raw, sig, self._lookup, self._limits)
        self._checked[sha256] = signed.approval
        return signed.approval


def _check_export(
    entry: SyncEntry,
    approval: Approval,
    runs_before: int,
    now: datetime,
    max_delay: timedelta,
    revocations: Revocations,
    limits: Limits,
) -> None:
    """One new export against its approval, as the owner sees it; PolicyError if outside."""
    manifest = parse_manifest(entry.manifest, max_bytes=limits.max_manifest_bytes)
    signer = sshsig.verify(entry.signature, entry.manifest, sshsig.NAMESPACE_MANIFEST)
    run = runs_before + 1  # counted over the witness's own mirror, not the exporter's claim
    if approval.max_runs is not None and run > approval.max_runs:
        raise PolicyError(f"run {run} of an approval allowing {approval.max_runs}")
    if manifest.run != run:
        raise PolicyError(f"numbered run {manifest.run}, but it is run {run} in the log")
    try:  # the same checks verify/decrypt and `ledger verify` make
        policy.check_manifest(manifest, approval, signer)
    except VerificationError as exc:
        raise PolicyError(f"export outside its approval: {exc.message}") from exc
    created = datetime.strptime(manifest.created_at, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC)
    if created > now + CLOCK_SKEW:
        raise PolicyError(f"dated {manifest.created_at}, in the witness's future")
    if now - created > max_delay:
        raise PolicyError(
            f"made at {manifest.created_at}, more than {max_delay.days} days before this witness "
            "run (backdated?)",
        )
    found = revocations.problems(
        approval_id=approval.id,
        approval_sha256=approval.sha256,
        exporter=signer,
        recipients=[age for _, age in (*manifest.recipients, *manifest.auditors)],
    )
    if found:
        raise PolicyError(found[0])


def witness(
    env: Environment,
    sync_path: Path,
    log_name: str,
    output: Path,
    *,
    approvals: Sequence[Path] = (),
    max_delay: timedelta = DEFAULT_MAX_DELAY,
    limits: Limits = DEFAULT_LIMITS,
) -> WitnessReport:
    """Owner side: check a sync file, update the mirror, cosign; see the module docstring.

    Inconsistency with what the witness saw before (a rolled-back or forked log, a bad proof or
    signature) is a VerificationError (exit 5); an export outside its approval a PolicyError
    (exit 3).  Either way nothing is stored and no cosignature is written.
    """
    from securexport.api import _keystore, _read_file, _trust

    ledger_keys = [k for k in _trust(env).ledger_keys() if k.name == log_name]
    if not ledger_keys:
        raise UsageError(
            f"no trusted ledger named {log_name!r}",
            hint="securexport trust add NAME KEY --role ledger (the exporter's 'ledger key')",
        )
    verifier = ledger_keys[0].key_text
    sync = parse_sync(_read_file(sync_path, MAX_SYNC_BYTES, "sync file"))
    opened = open_note(sync.checkpoint, [verifier])
    checkpoint = Checkpoint.parse(opened.text)
    if checkpoint.origin != sync.origin or checkpoint.origin not in opened.verified_by:
        raise VerificationError(f"the sync file is not from the ledger {log_name}")
    if sync.since + len(sync.entries) != checkpoint.size:
        raise VerificationError("the sync file's entries do not end at its checkpoint")
    now = env.now()
    revocations = Revocations.of(env.home)
    source = _ApprovalSource(env, approvals, limits)
    key = _keystore(env).witness_signing_key()
    name = witness_name(key)
    wkey = make_cosigner_key(name, key.public_key())

    mirror = Mirror(mirror_path(env, checkpoint.origin))
    try:
        latest = mirror.latest()
        old_size = 0 if latest is None else latest[0]
        if checkpoint.size < old_size:
            raise VerificationError(
                f"the ledger {log_name} shrank: this witness cosigned size {old_size}, the sync "
                f"file's checkpoint has size {checkpoint.size} (rolled back?)"
            )
        if sync.since > old_size:
            raise UsageError(
                f"this witness has seen {old_size} entries of {log_name}; the sync file starts "
                f"at {sync.since}",
                hint=f"ask the exporter for: securexport ledger sync --since {old_size}",
            )
        # The tree at `since` from the mirror, then the consistency proof to the new checkpoint.
        compact = merkle.CompactRange()
        for leaf in mirror.leaf_hashes(sync.since):
            compact.append(leaf)
        if not merkle.verify_consistency(
            sync.since, checkpoint.size, compact.root(), checkpoint.root_hash, sync.consistency
        ):
            raise VerificationError(
                f"the ledger {log_name} is not consistent with what this witness saw before "
                "(bad consistency proof)"
            )
        new: list[SyncEntry] = []
        for entry in sync.entries:
            leaf = merkle.leaf_hash(entry.manifest)
            if entry.index < old_size:
                if mirror.leaf_hash(entry.index) != leaf:
                    raise VerificationError(
                        f"entry {entry.index} of the ledger {log_name} differs from the one this "
                        "witness saw before: the log was rolled back or forked"
                    )
            else:
                new.append(entry)
            compact.append(leaf)
        if compact.root() != checkpoint.root_hash:
            raise VerificationError("the sync file's entries do not match its checkpoint")

        # Policy over the new exports, runs counted over the mirror plus this file.
        counted: dict[str, int] = {}
        refused: list[str] = []
        checked: list[tuple[SyncEntry, Any]] = []
        for entry in new:
            try:
                manifest = parse_manifest(entry.manifest, max_bytes=limits.max_manifest_bytes)
                sha = manifest.approval_sha256
                approval = source.get(sha, entry.attachments)
                before = counted.get(sha, mirror.runs(sha))
                _check_export(entry, approval, before, now, max_delay, revocations, limits)
                counted[sha] = before + 1
                checked.append((entry, manifest))
            except (PolicyError, VerificationError) as exc:
                refused.append(f"entry {entry.index}: {exc.message}")
        if refused:
            more = f" (and {len(refused) - 1} more)" if len(refused) > 1 else ""
            raise PolicyError(
                f"not cosigning {log_name}: {refused[0]}{more}",
                hint="a cosignature vouches for every export under it; the data owner decides "
                "what to do about this export",
            )

        with mirror.transaction():
            for entry, manifest in checked:
                mirror.conn.execute(
                    "INSERT INTO entries (idx, export_id, approval_id, approval_sha256, "
                    "created_at, leaf, signature, leaf_hash) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                    (
                        entry.index,
                        manifest.export_id,
                        manifest.approval_id,
                        manifest.approval_sha256,
                        manifest.created_at,
                        entry.manifest,
                        entry.signature,
                        merkle.leaf_hash(entry.manifest),
                    ),
                )
                for aname, data in entry.attachments.items():
                    mirror.conn.execute(
                        "INSERT INTO attachments (export_id, name, data) VALUES (?, ?, ?)",
                        (manifest.export_id, aname, data),
                    )
            mirror.conn.execute(
                "INSERT OR IGNORE INTO checkpoints (size, root_hash, note, cosigned_at) "
                "VALUES (?, ?, ?, ?)",
                (
                    checkpoint.size,
                    checkpoint.root_hash,
                    sync.checkpoint,
                    now.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
                ),
            )
            line = cosign(opened.text, name, key, int(now.timestamp()))
            atomic_write(output, add_cosignature(sync.checkpoint, line).encode(), mode=0o644)
    except sqlite3.Error as exc:
        raise FileError(f"the witness mirror failed: {exc}") from exc
    finally:
        mirror.close()
    return WitnessReport(checkpoint.origin, old_size, checkpoint.size, len(new), wkey, output)


# --------------------------------------------------------------------------------------------
# Exporter: add the cosignature to a bundle.  Recipient: check it.
# --------------------------------------------------------------------------------------------


def cosign_bundle(
    env: Environment, bundle_path: Path, cosig_path: Path, limits: Limits = DEFAULT_LIMITS
) -> dict[str, Any]:
    """Prove the bundle's entry against the cosigned checkpoint; add it as ``receipt.cosig``."""
    from securexport.api import _read_file
    from securexport.bundle import open_bundle
    from securexport.register import _open_ledger

    note = _read_file(cosig_path, limits.max_receipt_bytes, "cosignature").decode(
        "utf-8", errors="replace"
    )
    with open_bundle(bundle_path, limits) as bundle:
        manifest = parse_manifest(bundle.member(MANIFEST), max_bytes=limits.max_manifest_bytes)
        approval_raw = bundle.member(APPROVAL)
    from securexport.approval import parse_approval

    approval = parse_approval(approval_raw)
    with _open_ledger(env) as ledger:
        pinned = ledger.pinned_verifier_key()
        if pinned is None:
            raise VerificationError("the ledger is empty")
        opened = open_note(note, [pinned])
        checkpoint = Checkpoint.parse(opened.text)
        if checkpoint.origin != ledger.origin:
            raise VerificationError("the cosigned checkpoint is for another ledger")
        stored = Checkpoint.parse(_note_text(ledger.checkpoint_at(checkpoint.size)))
        if stored.root_hash != checkpoint.root_hash:
            raise VerificationError("the cosigned checkpoint is not one this ledger signed")
        entry = ledger.entry(manifest.export_id)
        if entry.leaf != manifest.raw:
            raise VerificationError("the bundle's manifest is not the logged one")
        if entry.index >= checkpoint.size:
            raise UsageError(
                f"the cosigned checkpoint (size {checkpoint.size}) does not cover this export "
                f"(entry {entry.index})",
                hint="sync again after the export, and ask the owner to witness it",
            )
        proof = ledger.prove_at(manifest.export_id, checkpoint.size)
    receipt = Receipt(proof.index, proof.proof, note).to_bytes()
    timestamp = None
    if approval.witness is not None:
        _, timestamp = verify_cosignature(note, approval.witness.key)
    add_cosignature_member(bundle_path, receipt, limits)
    return {
        "bundle": str(bundle_path),
        "export_id": manifest.export_id,
        "checkpoint_size": checkpoint.size,
        "cosigned_at": _time(timestamp) if timestamp is not None else None,
    }


def _note_text(note: str) -> str:
    return note[: note.rfind("\n\n") + 1]


def _time(timestamp: int) -> str:
    return datetime.fromtimestamp(timestamp, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def check_cosignature(
    cosig: bytes | None,
    manifest_raw: bytes,
    ledger_keys: Sequence[str],
    origin: str,
    witness_cfg: Witness | None,
    limits: Limits = DEFAULT_LIMITS,
) -> str | None:
    """For verify/decrypt: a check line, or None if there is nothing to check.

    With ``[witness] required = true`` a missing or bad cosignature is a VerificationError; with
    ``required = false`` a present one must still verify.
    """
    if witness_cfg is None:
        return None
    if cosig is None:
        if witness_cfg.required:
            raise VerificationError(
                "the approval requires the data owner's witness cosignature, and the bundle has "
                "none (receipt.cosig)",
                hint="the exporter adds it with: securexport ledger cosign BUNDLE COSIG_FILE",
            )
        return None
    try:
        verdict = verify_receipt(
            cosig, manifest_raw, ledger_keys, origin=origin, max_bytes=limits.max_receipt_bytes
        )
        _, timestamp = verify_cosignature(verdict.checkpoint_note, witness_cfg.key)
    except SecurexportError as exc:
        raise VerificationError(
            f"the witness cosignature does not verify: {exc.message}",
        ) from exc
    return (
        f"witness cosignature at {_time(timestamp)} over a checkpoint of size {verdict.size} "
        f"including entry {verdict.index}"
    )


__all__ = [
    "Mirror",
    "SyncFile",
    "WitnessReport",
    "check_cosignature",
    "cosign_bundle",
    "make_sync",
    "mirror_path",
    "parse_sync",
    "witness",
    "witness_verifier_key",
    "write_sync",
]
