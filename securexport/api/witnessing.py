"""The data owner's witness (DESIGN.md §12): an offline file exchange that makes run caps, expiry
and revocation the owner's to enforce, not the exporter's installation's.

1. Exporter: ``ledger sync --since SIZE -o FILE`` writes a sync file (securexport.ledger.sync).
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
``required = true`` refuse it without a valid ``receipt.cosig`` by that key (exit 5;
securexport.ledger.cosigned).
"""

from __future__ import annotations

import hashlib
import sqlite3
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from securexport._crypto import merkle, sshsig
from securexport._crypto.cosignature import (
    add_cosignature,
    cosign,
    make_cosigner_key,
    verify_cosignature,
)
from securexport._crypto.ed25519 import public_key_bytes
from securexport._crypto.note import Checkpoint, OpenedNote, open_note
from securexport.bundle.container import (
    APPROVAL,
    APPROVAL_SIG,
    MANIFEST,
    add_cosignature_member,
    open_bundle,
)
from securexport.environment import Environment
from securexport.errors import FileError, PolicyError, UsageError, VerificationError
from securexport.fsutil import atomic_write, read_limited, signature_path
from securexport.home.keystore import open_keystore
from securexport.home.ledger import open_ledger
from securexport.home.revocations import load_revocations
from securexport.home.truststore import TrustStore
from securexport.ledger.cosigned import note_text, witness_name
from securexport.ledger.mirror import Mirror
from securexport.ledger.receipt import Receipt
from securexport.ledger.sync import SyncEntry, SyncFile, make_sync, parse_sync
from securexport.limits import DEFAULT_LIMITS, Limits
from securexport.policy import authorise
from securexport.policy.approval import Approval, parse_approval
from securexport.policy.manifest import Manifest, parse_manifest
from securexport.policy.revocation import Revocations
from securexport.policy.times import from_unix, parse_rfc3339, rfc3339

DEFAULT_MAX_DELAY = timedelta(days=31)
CLOCK_SKEW = timedelta(minutes=5)


def witness_verifier_key(env: Environment) -> str:
    """The owner's witness key (cosignature/v1), for approvals' ``[witness] key``."""
    key = open_keystore(env).witness_signing_key()
    return make_cosigner_key(witness_name(key), public_key_bytes(key))


# --------------------------------------------------------------------------------------------
# Exporter: the sync file
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class SyncWritten:
    output: Path
    origin: str
    since: int
    size: int

    def to_json(self) -> dict[str, Any]:
        return {
            "output": str(self.output),
            "origin": self.origin,
            "since": self.since,
            "size": self.size,
        }


def write_sync(env: Environment, since: int, output: Path) -> SyncWritten:
    """Write the sync file of the entries from ``since`` to the newest checkpoint."""
    with open_ledger(env) as ledger:
        sync, size = make_sync(ledger, since)
    atomic_write(output, sync.to_bytes(), mode=0o644)
    return SyncWritten(output, sync.origin, since, size)


# --------------------------------------------------------------------------------------------
# Owner: witnessing
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

    def __init__(self, trust: TrustStore, extra: Sequence[Path], limits: Limits) -> None:
        self._lookup = trust.approver_name
        self._limits = limits
        self._given: dict[str, tuple[bytes, bytes]] = {}
        self._checked: dict[str, Approval] = {}
        for path in extra:
            try:
                raw = path.read_bytes()
                sig = signature_path(path).read_bytes()
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
        signed = authorise.load_signed_approval(raw, sig, self._lookup, self._limits)
        self._checked[sha256] = signed.approval
        return signed.approval


@dataclass(frozen=True)
class _Judge:
    """What one witness run holds every new export to."""

    approvals: _ApprovalSource
    revocations: Revocations
    now: datetime
    max_delay: timedelta
    limits: Limits


def _check_export(entry: SyncEntry, approval: Approval, runs_before: int, judge: _Judge) -> None:
    """One new export against its approval, as the owner sees it; PolicyError if outside."""
    manifest = parse_manifest(entry.manifest, max_bytes=judge.limits.max_manifest_bytes)
    signer = sshsig.verify(entry.signature, entry.manifest, sshsig.NAMESPACE_MANIFEST)
    run = runs_before + 1  # counted over the witness's own mirror, not the exporter's claim
    if approval.max_runs is not None and run > approval.max_runs:
        raise PolicyError(f"run {run} of an approval allowing {approval.max_runs}")
    if manifest.run != run:
        raise PolicyError(f"numbered run {manifest.run}, but it is run {run} in the log")
    try:  # the same checks verify/decrypt and `ledger verify` make
        authorise.check_manifest(manifest, approval, signer)
    except VerificationError as exc:
        raise PolicyError(f"export outside its approval: {exc.message}") from exc
    created = parse_rfc3339(manifest.created_at)
    if created > judge.now + CLOCK_SKEW:
        raise PolicyError(f"dated {manifest.created_at}, in the witness's future")
    if judge.now - created > judge.max_delay:
        raise PolicyError(
            f"made at {manifest.created_at}, more than {judge.max_delay.days} days before this "
            "witness run (backdated?)",
        )
    found = judge.revocations.problems(
        approval_id=approval.id,
        approval_sha256=approval.sha256,
        exporter=signer,
        recipients=[age for _, age in (*manifest.recipients, *manifest.auditors)],
    )
    if found:
        raise PolicyError(found[0])


def _open_sync(
    sync_path: Path, log_name: str, verifier: str
) -> tuple[SyncFile, OpenedNote, Checkpoint]:
    """The sync file, its checkpoint signed by the log's trusted key and ending its entries."""
    sync = parse_sync(read_limited(sync_path, DEFAULT_LIMITS.max_sync_bytes, "sync file"))
    opened = open_note(sync.checkpoint, [verifier])
    checkpoint = Checkpoint.parse(opened.text)
    if checkpoint.origin != sync.origin or checkpoint.origin not in opened.verified_by:
        raise VerificationError(f"the sync file is not from the ledger {log_name}")
    if sync.since + len(sync.entries) != checkpoint.size:
        raise VerificationError("the sync file's entries do not end at its checkpoint")
    return sync, opened, checkpoint


def _new_entries(
    mirror: Mirror, sync: SyncFile, checkpoint: Checkpoint, log_name: str
) -> tuple[int, list[SyncEntry]]:
    """The mirror's size and the entries it has not seen; VerificationError on any rollback,
    fork or proof that does not hold."""
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
    return old_size, new


def _judge_all(
    mirror: Mirror, new: Sequence[SyncEntry], judge: _Judge, log_name: str
) -> list[tuple[SyncEntry, Manifest]]:
    """Every new export inside its approval, runs counted over the mirror plus this file;
    otherwise one PolicyError naming the first refused entry."""
    counted: dict[str, int] = {}
    refused: list[str] = []
    checked: list[tuple[SyncEntry, Manifest]] = []
    for entry in new:
        try:
            manifest = parse_manifest(entry.manifest, max_bytes=judge.limits.max_manifest_bytes)
            sha = manifest.approval_sha256
            approval = judge.approvals.get(sha, entry.attachments)
            before = counted.get(sha, mirror.runs(sha))
            _check_export(entry, approval, before, judge)
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
    return checked


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
    trust = TrustStore(env.home)
    verifier, _ = trust.ledger_origin(log_name)
    sync, opened, checkpoint = _open_sync(sync_path, log_name, verifier)
    now = env.now()
    judge = _Judge(
        _ApprovalSource(trust, approvals, limits),
        load_revocations(env.home),
        now,
        max_delay,
        limits,
    )
    key = open_keystore(env).witness_signing_key()
    name = witness_name(key)
    mirror = Mirror(env.home.mirror_path(checkpoint.origin))
    try:
        old_size, new = _new_entries(mirror, sync, checkpoint, log_name)
        checked = _judge_all(mirror, new, judge, log_name)
        with mirror.transaction():
            for entry, manifest in checked:
                mirror.add_entry(entry.index, manifest, entry.signature, entry.attachments)
            mirror.add_checkpoint(
                checkpoint.size, checkpoint.root_hash, sync.checkpoint, rfc3339(now)
            )
            line = cosign(opened.text, name, key, int(now.timestamp()))
            atomic_write(output, add_cosignature(sync.checkpoint, line).encode(), mode=0o644)
    except sqlite3.Error as exc:
        raise FileError(f"the witness mirror failed: {exc}") from exc
    finally:
        mirror.close()
    wkey = make_cosigner_key(name, public_key_bytes(key))
    return WitnessReport(checkpoint.origin, old_size, checkpoint.size, len(new), wkey, output)


# --------------------------------------------------------------------------------------------
# Exporter: add the cosignature to a bundle
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class CosignResult:
    bundle: Path
    export_id: str
    checkpoint_size: int
    cosigned_at: str | None  # the witness's time, when the approval names its key

    def to_json(self) -> dict[str, Any]:
        return {
            "bundle": str(self.bundle),
            "export_id": self.export_id,
            "checkpoint_size": self.checkpoint_size,
            "cosigned_at": self.cosigned_at,
        }


def cosign_bundle(
    env: Environment, bundle_path: Path, cosig_path: Path, limits: Limits = DEFAULT_LIMITS
) -> CosignResult:
    """Prove the bundle's entry against the cosigned checkpoint; add it as ``receipt.cosig``."""
    note = read_limited(cosig_path, limits.max_receipt_bytes, "cosignature").decode(
        "utf-8", errors="replace"
    )
    with open_bundle(bundle_path, limits) as bundle:
        manifest = parse_manifest(bundle.member(MANIFEST), max_bytes=limits.max_manifest_bytes)
        approval_raw = bundle.member(APPROVAL)
    approval = parse_approval(approval_raw)
    with open_ledger(env) as ledger:
        pinned = ledger.pinned_verifier_key()
        if pinned is None:
            raise VerificationError("the ledger is empty")
        opened = open_note(note, [pinned])
        checkpoint = Checkpoint.parse(opened.text)
        if checkpoint.origin != ledger.origin:
            raise VerificationError("the cosigned checkpoint is for another ledger")
        stored = Checkpoint.parse(note_text(ledger.checkpoint_at(checkpoint.size)))
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
    return CosignResult(
        bundle_path,
        manifest.export_id,
        checkpoint.size,
        from_unix(timestamp) if timestamp is not None else None,
    )
