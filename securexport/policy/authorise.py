"""Does a signed approval authorise this run?  Pure checks over parsed inputs (DESIGN.md §5, §7).

Signature first, then parsing: the approval's bytes are verified against the trust store before
a single TOML key is read.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime

from securexport._crypto import sshsig
from securexport._crypto.sshkey import SshPublicKey
from securexport.errors import PolicyError, VerificationError
from securexport.limits import Limits
from securexport.policy.approval import Approval, Exporter, parse_approval, transform_version
from securexport.policy.manifest import Manifest
from securexport.policy.times import rfc3339


@dataclass(frozen=True)
class SignedApproval:
    approval: Approval
    signer_name: str
    signer: SshPublicKey


def load_signed_approval(
    raw: bytes,
    signature: bytes | None,
    approver_for: Callable[[SshPublicKey], str | None],
    limits: Limits,
    *,
    error: type[PolicyError] | type[VerificationError] = PolicyError,
    filename: str = "approval.toml",
) -> SignedApproval:
    """Verify the approver's SSHSIG over the raw bytes, then parse strictly.

    ``approver_for`` maps a key to the trusted approver's name (or None).  ``error`` is the
    class raised for a missing/bad/untrusted signature: PolicyError when exporting (exit 3),
    VerificationError when checking a bundle (exit 5).
    """
    if len(raw) > limits.max_approval_bytes:
        raise error("the approval is larger than the limit")
    if signature is None:
        raise error(
            "the approval is not signed",
            hint="the data owner signs it with: securexport approval sign FILE --as NAME",
        )
    try:
        signer = sshsig.verify(
            signature, raw, sshsig.NAMESPACE_APPROVAL, max_bytes=limits.max_signature_bytes
        )
    except VerificationError as exc:
        raise error("the approval signature is invalid", hint="re-sign the approval") from exc
    name = approver_for(signer)
    if name is None:
        raise error(
            f"the approval is signed by a key that is not a trusted approver ({signer.fingerprint()})",
            hint="trust the data owner's key: securexport trust add NAME KEY --role approver",
        )
    return SignedApproval(
        approval=parse_approval(raw, limits=limits, filename=filename),
        signer_name=name,
        signer=signer,
    )


def check_window(
    approval: Approval,
    now: datetime,
    *,
    error: type[PolicyError] | type[VerificationError] = PolicyError,
) -> None:
    """The validity window is inclusive at both ends."""
    if now < approval.not_before:
        raise error(f"approval {approval.id} is not valid before {rfc3339(approval.not_before)}")
    if now > approval.expires:
        raise error(
            f"approval {approval.id} expired at {rfc3339(approval.expires)}",
            hint="ask the data owner for a renewed approval",
        )


def require_exporter(approval: Approval, key: SshPublicKey, name: str) -> Exporter:
    exporter = approval.exporter_by_key(key)
    if exporter is None:
        raise PolicyError(
            f"identity {name!r} is not an exporter named in approval {approval.id}",
            hint="only the exporters listed in [[exporters]] may run it",
        )
    return exporter


def next_run(approval: Approval, runs_used: int) -> int:
    if approval.max_runs is not None and runs_used >= approval.max_runs:
        raise PolicyError(
            f"approval {approval.id} has used all {approval.max_runs} of its runs",
            hint="ask the data owner for a new approval",
        )
    return runs_used + 1


def check_manifest(manifest: Manifest, approval: Approval, signer: SshPublicKey) -> Exporter:
    """Hold a signed manifest against the approval it names (pure; VerificationError, exit 5).

    The same checks serve ``verify``/``decrypt`` on a bundle and ``ledger verify`` on each
    logged export: the signer is a listed exporter, and the export's time, run number,
    recipients, row count, format, columns and files are what the approval allows.
    """
    if approval.sha256 != manifest.approval_sha256 or approval.id != manifest.approval_id:
        raise VerificationError(
            "the manifest names a different approval than the one in the bundle"
        )
    exporter = approval.exporter_by_key(signer)
    if exporter is None:
        raise VerificationError(
            "the manifest is signed by a key that is not an exporter of the approval"
        )
    try:
        claimed = SshPublicKey.parse(manifest.operator_ssh)
    except ValueError as exc:
        raise VerificationError("manifest operator key is malformed") from exc
    if claimed != signer:
        raise VerificationError("the manifest's operator key is not the key that signed it")
    try:
        created = datetime.strptime(manifest.created_at, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC)
    except ValueError as exc:
        raise VerificationError("manifest created_at is not RFC 3339 UTC") from exc
    if not approval.not_before <= created <= approval.expires:
        raise VerificationError("the export was made outside the approval's validity window")
    if approval.max_runs is not None and not 1 <= manifest.run <= approval.max_runs:
        raise VerificationError("the export's run number is beyond the approval's max_runs")
    want_recipients = tuple((p.name, p.age) for p in approval.recipients)
    want_auditors = tuple((p.name, p.age) for p in approval.auditors)
    if manifest.recipients != want_recipients or manifest.auditors != want_auditors:
        raise VerificationError("the manifest's recipients differ from the approval's")
    if manifest.rows_written > approval.row_cap:
        raise VerificationError("the manifest states more rows than the approval's row cap")
    if manifest.output_format != approval.output_format:
        raise VerificationError("the manifest's format differs from the approval's")
    # What each column is and how an invalid value was handled (a dropped row vs a NULL).
    approved_columns = [
        (c.name, c.source, transform_version(c), c.on_invalid) for c in approval.columns
    ]
    doc_columns = manifest.document.get("columns")
    if (
        not isinstance(doc_columns, list)
        or [
            (c.get("name"), c.get("source"), c.get("transform"), c.get("on_invalid"))
            for c in doc_columns
            if isinstance(c, dict)
        ]
        != approved_columns
    ):
        raise VerificationError("the manifest's columns differ from the approval's")
    ext = "csv" if approval.output_format == "csv" else "jsonl"
    if [f.path for f in manifest.files] != [f"data/{approval.dataset}.{ext}"]:
        raise VerificationError("the manifest's file list is not what the approval produces")
    if sum(f.rows for f in manifest.files) != manifest.rows_written:
        raise VerificationError("the manifest's file row counts do not add up")
    return exporter
