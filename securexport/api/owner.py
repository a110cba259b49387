"""The data owner's recipes: revocations (DESIGN.md §12) and breach response.

Revoke writes a signed revocation document (securexport.policy.revocation); import checks it
against the trusted approvers and stores it (securexport.home.revocations).  A breach report
answers which exports, approvals, recipients and how many people (an upper bound: the sum over
exports) from the manifests alone; with the owner's identity it opens the sealed entity lists
(securexport.data.entities: exact counts per export), and with candidate ids it names the
people, as the owner's own ids, for the union of the exports.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from securexport._crypto import agefile, sshsig
from securexport._crypto.sshkey import SshPublicKey
from securexport.bundle.container import MANIFEST, open_bundle
from securexport.data.entities import ENTITIES, parse_entity_list
from securexport.environment import Environment
from securexport.errors import FileError, SecurexportError, UsageError, VerificationError
from securexport.fsutil import atomic_write, signature_path
from securexport.home.keystore import open_keystore
from securexport.home.ledger import open_ledger, open_mirror
from securexport.home.revocations import RevocationStore, load_revocations
from securexport.home.truststore import TrustStore
from securexport.limits import DEFAULT_LIMITS, Limits
from securexport.policy.manifest import Manifest, parse_manifest
from securexport.policy.revocation import (
    Revocation,
    make_revocation,
    parse_revocation,
    verify_revocation,
)

# --------------------------------------------------------------------------------------------
# Revocations
# --------------------------------------------------------------------------------------------


def revoke(
    env: Environment,
    kind: str,
    target: str,
    as_name: str,
    output: Path,
    *,
    reason: str | None = None,
) -> Revocation:
    """Write a revocation signed by identity ``as_name`` to ``output`` and ``output.sig``."""
    if output.exists() or output.is_symlink():
        raise FileError(f"{output} exists already", hint="choose a new output name")
    raw = make_revocation(kind, target, env.now(), reason)
    signature = sshsig.sign(
        open_keystore(env).signing_key(as_name), raw, sshsig.NAMESPACE_REVOCATION
    )
    atomic_write(signature_path(output), signature, mode=0o644)
    atomic_write(output, raw, mode=0o644)
    return parse_revocation(raw)


def import_revocation(env: Environment, path: Path) -> tuple[Revocation, str, bool]:
    """Verify ``path`` (and ``path.sig``) against the trusted approvers and store it.

    Returns the revocation, the approver's name and whether it was new.
    """
    try:
        raw = path.read_bytes()
        signature = signature_path(path).read_bytes()
    except FileNotFoundError as exc:
        raise FileError(f"{exc.filename} does not exist", hint="the signature is FILE.sig") from exc
    except OSError as exc:
        raise FileError(f"cannot read {path}: {exc.strerror}") from exc
    trust = TrustStore(env.home)
    revocation, name = verify_revocation(
        raw, signature, lambda key: trust.approver_name(key, sshsig.NAMESPACE_REVOCATION)
    )
    assert name is not None
    env.home.ensure()
    added = RevocationStore(env.home).add(raw, signature)
    return revocation, name, added


def list_revocations(env: Environment) -> list[Revocation]:
    """The revocations imported into this home, each signature checked again."""
    return list(load_revocations(env.home).items)


# --------------------------------------------------------------------------------------------
# Breach response
# --------------------------------------------------------------------------------------------


@dataclass
class ExportFacts:
    export_id: str
    created_at: str
    approval_id: str
    approval_sha256: str
    exporter: str
    recipients: list[dict[str, str]]
    rows: int
    people: int | None  # from the signed manifest (None: the approval had no [owner])
    people_opened: int | None = None  # from the opened list
    people_named: list[str] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        doc: dict[str, Any] = {
            "export_id": self.export_id,
            "created_at": self.created_at,
            "approval": {"id": self.approval_id, "sha256": self.approval_sha256},
            "exporter": self.exporter,
            "recipients": self.recipients,
            "rows": self.rows,
            "people": self.people,
        }
        if self.people_opened is not None:
            doc["people_opened"] = self.people_opened
            doc["people_named"] = len(self.people_named)
        return doc


@dataclass
class BreachReport:
    exports: list[ExportFacts]
    opened: bool
    named: list[str] | None  # candidate ids found in any of the exports (None: no candidates)
    missing_lists: list[str]  # exports without a sealed list

    @property
    def approvals(self) -> list[str]:
        return sorted({e.approval_id for e in self.exports})

    @property
    def recipients(self) -> list[dict[str, str]]:
        seen: dict[tuple[str, str], dict[str, str]] = {}
        for e in self.exports:
            for r in e.recipients:
                seen.setdefault((r["name"], r["age"]), r)
        return [seen[k] for k in sorted(seen)]

    @property
    def people_at_most(self) -> int:
        return sum(e.people if e.people is not None else e.rows for e in self.exports)

    def to_json(self) -> dict[str, Any]:
        return {
            "exports": [e.to_json() for e in self.exports],
            "approvals": self.approvals,
            "recipients": self.recipients,
            "people_at_most": self.people_at_most,
            "opened": self.opened,
            "people": None if self.named is None else len(self.named),
            "named": self.named,
            "missing_lists": self.missing_lists,
        }


def _facts(manifest: Manifest) -> ExportFacts:
    records = manifest.document.get("records", {})
    people = records.get("entities") if isinstance(records, dict) else None
    recipients = [{"name": n, "age": a, "role": "recipient"} for n, a in manifest.recipients] + [
        {"name": n, "age": a, "role": "auditor"} for n, a in manifest.auditors
    ]
    return ExportFacts(
        export_id=manifest.export_id,
        created_at=manifest.created_at,
        approval_id=manifest.approval_id,
        approval_sha256=manifest.approval_sha256,
        exporter=manifest.operator_name,
        recipients=recipients,
        rows=manifest.rows_written,
        people=people if isinstance(people, int) and not isinstance(people, bool) else None,
    )


def _read_candidates(path: Path) -> list[str]:
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise FileError(f"cannot read {path}: {exc.strerror}") from exc
    except UnicodeDecodeError as exc:
        raise FileError(f"{path} is not UTF-8 text") from exc
    return [line for line in (ln.rstrip("\r") for ln in text.split("\n")) if line]


def breach_report(
    env: Environment,
    *,
    export_ids: Iterable[str] = (),
    bundles: Iterable[Path] = (),
    log: str | None = None,
    as_name: str | None = None,
    candidates: Path | None = None,
    recipient: str | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
    limits: Limits = DEFAULT_LIMITS,
) -> BreachReport:
    """Answer a breach: from the owner's witness mirror of ``log``, or this home's ledger.

    The leaked exports are named (``export_ids``, ``bundles``), or selected: every logged export
    to ``recipient`` (a name or an ``age1…`` key: a lost laptop), made between ``since`` and
    ``until`` (inclusive).  Each selected entry's signature is checked as a named one is.
    """
    wanted = list(export_ids)
    for path in bundles:
        with open_bundle(path, limits) as bundle:
            raw = bundle.member(MANIFEST)
        wanted.append(parse_manifest(raw, max_bytes=limits.max_manifest_bytes).export_id)
    if (since is not None or until is not None) and recipient is None:
        raise UsageError("--since and --until narrow a --recipient search", hint="add --recipient")
    if recipient is not None:
        wanted += _exports_to(env, log, recipient, since, until, limits)
        if not wanted:
            raise VerificationError(f"no logged export was sent to {recipient} in that period")
    if not wanted:
        raise UsageError(
            "name the leaked exports",
            hint="--bundle FILE, --export-id ID, or --recipient NAME (all exports to them)",
        )
    if candidates is not None and as_name is None:
        raise UsageError("naming people needs the owner's key", hint="add --as NAME")

    rows: list[tuple[bytes, bytes, bytes | None]] = []
    if log is not None:
        rows = _from_mirror(env, log, wanted)
    else:
        with open_ledger(env) as ledger:
            for export_id in dict.fromkeys(wanted):
                entry = ledger.entry(export_id)
                rows.append((entry.leaf, entry.signature, ledger.attachment(export_id, ENTITIES)))

    identity = open_keystore(env).age_identity(as_name) if as_name is not None else None
    names = _read_candidates(candidates) if candidates is not None else None
    named: set[str] = set()
    exports: list[ExportFacts] = []
    missing: list[str] = []
    for leaf, signature, sealed in rows:
        manifest = parse_manifest(leaf, max_bytes=limits.max_manifest_bytes)
        signer = sshsig.verify(signature, leaf, sshsig.NAMESPACE_MANIFEST)
        if SshPublicKey.parse(manifest.operator_ssh) != signer:
            raise VerificationError(f"export {manifest.export_id}: the manifest signature is wrong")
        facts = _facts(manifest)
        exports.append(facts)
        if sealed is None:
            missing.append(manifest.export_id)
            continue
        if identity is None:
            continue
        plain = agefile.decrypt(sealed, [identity], max_bytes=limits.max_entity_list_bytes)
        entity_list = parse_entity_list(plain)
        records = manifest.document.get("records", {})
        if entity_list.digest != records.get("entity_set_sha256"):
            raise VerificationError(
                f"export {manifest.export_id}: the sealed entity list is not the one its signed "
                "manifest records"
            )
        facts.people_opened = len(entity_list.hashes)
        if names is not None:
            facts.people_named = [n for n in names if entity_list.keyed(n) in entity_list.hashes]
            named.update(facts.people_named)
    return BreachReport(
        exports=exports,
        opened=identity is not None,
        named=None if names is None else sorted(named, key=lambda n: (len(n), n)),
        missing_lists=missing,
    )


def _exports_to(
    env: Environment,
    log: str | None,
    recipient: str,
    since: datetime | None,
    until: datetime | None,
    limits: Limits,
) -> list[str]:
    """Export ids of every logged export naming ``recipient`` (recipient or auditor)."""
    leaves: list[tuple[str, bytes]] = []
    if log is not None:
        mirror = open_mirror(env, log)
        try:
            for export_id in mirror.export_ids():
                found = mirror.entry(export_id)
                if found is not None:
                    leaves.append((export_id, found[1]))
        finally:
            mirror.close()
    else:
        with open_ledger(env) as ledger:
            leaves = [(e.export_id, e.leaf) for e in ledger.entries()]
    selected = []
    for export_id, leaf in leaves:
        try:
            manifest = parse_manifest(leaf, max_bytes=limits.max_manifest_bytes)
        except SecurexportError:
            continue  # not a readable manifest: `ledger verify` reports it
        parties = (*manifest.recipients, *manifest.auditors)
        if not any(recipient in (name, age) for name, age in parties):
            continue
        created = datetime.fromisoformat(manifest.created_at.replace("Z", "+00:00"))
        if (since is None or created >= since) and (until is None or created <= until):
            selected.append(export_id)
    return selected


def _from_mirror(
    env: Environment, log: str, wanted: Sequence[str]
) -> list[tuple[bytes, bytes, bytes | None]]:
    mirror = open_mirror(env, log)
    try:
        out = []
        for export_id in dict.fromkeys(wanted):
            found = mirror.entry(export_id)
            if found is None:
                raise VerificationError(f"export {export_id} is not in the mirror of {log}")
            out.append((found[1], found[2], mirror.attachment(export_id, ENTITIES)))
        return out
    finally:
        mirror.close()
