"""The export register's recipes: ledger key, list, show, verify, checkpoint, prove."""

from __future__ import annotations

import functools
import json
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from securexport._crypto import sshsig
from securexport.bundle.container import APPROVAL, APPROVAL_SIG
from securexport.environment import Environment
from securexport.errors import VerificationError
from securexport.fsutil import atomic_write
from securexport.home.keystore import open_keystore
from securexport.home.ledger import open_ledger
from securexport.home.truststore import TrustStore, parse_verifier_key
from securexport.ledger.log import BundleState, Ledger
from securexport.ledger.store import KIND_EXPORT, Entry
from securexport.limits import DEFAULT_LIMITS
from securexport.policy import authorise
from securexport.policy.manifest import parse_manifest


def ledger_verifier_key(env: Environment) -> str:
    """This installation's ledger verifier key (creating the ledger key on first use).

    The data owner puts it in the approval (``[[exporters]] ledger = …``) or recipients trust it
    with ``trust add NAME KEY --role ledger``, so receipts can be checked offline.
    """
    with open_ledger(env) as ledger:
        pinned = ledger.pinned_verifier_key()
        if pinned:
            return pinned
        return ledger.verifier_key(open_keystore(env).ledger_signing_key())


@dataclass(frozen=True)
class EntrySummary:
    """One logged export: the ledger's index columns, what its manifest says, its bundle.

    ``manifest_says`` is read from the logged manifest without verifying it (``ledger verify``
    does): ``exporter``, ``rows`` and ``recipients`` (their names), or ``malformed`` once the
    manifest stops making sense, keeping what was read before that.
    """

    index: int
    kind: str
    export_id: str
    approval_id: str
    approval_sha256: str
    run: int
    created_at: str
    manifest_says: Mapping[str, Any]
    #: ``written``; ``missing`` (the export was interrupted after its entry was committed: an
    #: orphan, its run used); ``in-progress`` (its export is still running here); or
    #: ``unconfirmed`` (committed on another machine, or before a reboot, and never confirmed).
    #: None where it was not asked (``ledger show``).
    bundle: str | None = None

    @property
    def exporter(self) -> Any:
        return self.manifest_says.get("exporter")

    @property
    def rows(self) -> Any:
        return self.manifest_says.get("rows")

    @property
    def recipients(self) -> list[Any] | None:
        recipients: list[Any] | None = self.manifest_says.get("recipients")
        return recipients

    @property
    def malformed(self) -> bool:
        return bool(self.manifest_says.get("malformed", False))

    def to_json(self) -> dict[str, Any]:
        doc: dict[str, Any] = {
            "index": self.index,
            "kind": self.kind,
            "export_id": self.export_id,
            "approval_id": self.approval_id,
            "approval_sha256": self.approval_sha256,
            "run": self.run,
            "created_at": self.created_at,
            **self.manifest_says,
        }
        if self.bundle is not None:
            doc["bundle"] = self.bundle
        return doc


@dataclass(frozen=True)
class EntryDetail:
    """One entry as ``ledger show`` prints it: its summary and the whole logged manifest."""

    entry: EntrySummary
    manifest: Any  # the manifest's JSON, as logged (not verified)

    def to_json(self) -> dict[str, Any]:
        return {**self.entry.to_json(), "manifest": self.manifest}


def ledger_entries(
    env: Environment, *, start: int = 0, limit: int | None = None
) -> list[EntrySummary]:
    """One summary per logged export, in log order, with whether its bundle was written."""
    with open_ledger(env) as ledger:
        summaries = [_entry_summary(e) for e in ledger.entries(start=start, limit=limit)]
        if not summaries:
            return []
        states = {b.export_id: b.state for b in ledger.bundle_states(start=start, limit=limit)}
        return [replace(s, bundle=states.get(s.export_id, "unconfirmed")) for s in summaries]


def _entry_summary(entry: Entry) -> EntrySummary:
    says: dict[str, Any] = {}
    try:
        doc = json.loads(entry.leaf)
        says["exporter"] = doc.get("operator", {}).get("name")
        says["rows"] = doc.get("records", {}).get("written")
        says["recipients"] = [r.get("name") for r in doc.get("recipients", [])]
    except (ValueError, AttributeError):
        says["malformed"] = True
    return EntrySummary(
        index=entry.index,
        kind=entry.kind,
        export_id=entry.export_id,
        approval_id=entry.approval_id,
        approval_sha256=entry.approval_sha256,
        run=entry.run,
        created_at=entry.created_at,
        manifest_says=says,
    )


def ledger_show(env: Environment, key: str) -> EntryDetail:
    """One entry, by index or export id, with its full manifest."""
    with open_ledger(env) as ledger:
        # An index is ASCII digits that fit the ledger's integers; anything else is an export id.
        is_index = re.fullmatch(r"[0-9]{1,18}", key) is not None
        entry = ledger.entry(int(key) if is_index else key)
        return EntryDetail(_entry_summary(entry), json.loads(entry.leaf))


def _entry_checker(env: Environment, ledger: Ledger) -> Callable[[Entry], None]:
    """Per-entry audit for ``ledger verify``.

    The manifest parses and its signature verifies; the ledger's index columns agree with the
    signed bytes; and the export is held against the exact approval it ran under (stored beside
    the entry, signature checked against this installation's trusted approvers): exporter,
    window, run number, recipients, row cap, format, columns and files.
    """
    trust = TrustStore(env.home)

    # Many entries ran under one approval: parse and verify each (approval, signature) pair
    # once.  The answer depends only on those bytes and the trust store, fixed for the run.
    @functools.lru_cache(maxsize=256)
    def load_approval(raw: bytes, sig: bytes | None) -> authorise.SignedApproval:
        return authorise.load_signed_approval(
            raw, sig, trust.approver_name, DEFAULT_LIMITS, error=VerificationError
        )

    def check(entry: Entry) -> None:
        manifest = parse_manifest(entry.leaf, max_bytes=DEFAULT_LIMITS.max_manifest_bytes)
        signer = sshsig.verify(entry.signature, entry.leaf, sshsig.NAMESPACE_MANIFEST)
        # Every index column outside the tree must say what the signed bytes say.
        signed_columns = (
            KIND_EXPORT,
            manifest.export_id,
            manifest.approval_id,
            manifest.approval_sha256,
            manifest.run,
            manifest.created_at,
        )
        if signed_columns != (
            entry.kind,
            entry.export_id,
            entry.approval_id,
            entry.approval_sha256,
            entry.run,
            entry.created_at,
        ):
            raise VerificationError("the ledger's index columns disagree with the signed manifest")
        raw = ledger.attachment(entry.export_id, APPROVAL)
        sig = ledger.attachment(entry.export_id, APPROVAL_SIG)
        if raw is None:
            raise VerificationError("the approval this export ran under is not stored beside it")
        authorise.check_manifest(manifest, load_approval(raw, sig).approval, signer)

    return check


def _check_pinned_key(env: Environment, origin: str, pinned: str) -> str:
    """Hold the key the ledger recorded to a key trusted from outside it, when there is one:
    a ledger rewritten wholesale and re-signed under a new key then fails (exit 5)."""
    trusted = [
        t.key_text
        for t in TrustStore(env.home).ledger_keys()
        if parse_verifier_key(t.key_text)[0] == origin
    ]
    if not trusted:
        return "pinned"
    if pinned not in trusted:
        raise VerificationError(
            f"the ledger's checkpoint key is not the key trusted for {origin}",
            hint="the ledger was re-keyed or replaced; compare `securexport ledger key` with "
            "the key the data owner trusts",
        )
    return "trusted"


@dataclass(frozen=True)
class LedgerAudit:
    """What ``ledger verify`` established (a failure raises instead).

    ``checkpoint_key`` is ``trusted`` when the checkpoints were held to a key this installation
    trusts for the origin, ``pinned`` when only to the key the ledger itself recorded
    (self-consistency, no more), and None for an empty ledger, which has no key yet (nor
    ``origin`` or ``root_hash``).
    """

    size: int
    entries_checked: int
    checkpoints_checked: int
    #: Orphans are not tampering: the entry is sound, its export was interrupted.
    missing_bundles: tuple[BundleState, ...] = ()
    checkpoint_key: str | None = None
    origin: str | None = None
    root_hash: bytes | None = None

    def to_json(self) -> dict[str, Any]:
        doc: dict[str, Any] = {"ok": True}
        if self.checkpoint_key is not None:
            doc["checkpoint_key"] = self.checkpoint_key
            doc["origin"] = self.origin
        doc["size"] = self.size
        if self.root_hash is not None:
            doc["root_hash"] = self.root_hash.hex()
        doc["entries_checked"] = self.entries_checked
        doc["checkpoints_checked"] = self.checkpoints_checked
        doc["missing_bundles"] = [
            {"index": b.index, "run": b.run, "export_id": b.export_id} for b in self.missing_bundles
        ]
        return doc


def ledger_verify(env: Environment) -> LedgerAudit:
    """Recompute the tree, check every checkpoint and every entry; exit 5 at the first bad one."""
    with open_ledger(env) as ledger:
        key = ledger.pinned_verifier_key()
        if key is None:
            return LedgerAudit(size=0, entries_checked=0, checkpoints_checked=0)
        key_source = _check_pinned_key(env, ledger.origin, key)
        report = ledger.verify_all(key, check_entry=_entry_checker(env, ledger))
        missing = [b for b in ledger.bundle_states() if b.state == "missing"]
        return LedgerAudit(
            size=report.size,
            entries_checked=report.entries_checked,
            checkpoints_checked=report.checkpoints_checked,
            missing_bundles=tuple(missing),
            checkpoint_key=key_source,
            origin=report.origin,
            root_hash=report.root_hash,
        )


def ledger_checkpoint(env: Environment) -> str:
    """The newest signed checkpoint (a C2SP signed note)."""
    with open_ledger(env) as ledger:
        note = ledger.latest_checkpoint()
        if note is None:
            raise VerificationError("the ledger is empty: no checkpoint yet")
        return note


def ledger_prove(env: Environment, export_id: str, output: Path | None = None) -> bytes:
    """A fresh receipt (tlog-proof) for an export against the newest checkpoint, also written
    to ``output`` when one is given."""
    with open_ledger(env) as ledger:
        receipt = ledger.prove(export_id).to_bytes()
    if output is not None:
        atomic_write(output, receipt, mode=0o644)
    return receipt
