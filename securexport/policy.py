"""Does a signed approval authorise this run?  Pure checks over parsed inputs (DESIGN.md §5, §7).

Signature first, then parsing: the approval's bytes are verified against the trust store before
a single TOML key is read.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

from securexport._crypto import sshsig
from securexport._crypto.sshkey import SshPublicKey
from securexport.approval import Approval, Exporter, parse_approval
from securexport.errors import PolicyError, VerificationError
from securexport.limits import Limits


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
        raise error(f"approval {approval.id} is not valid before {_rfc3339(approval.not_before)}")
    if now > approval.expires:
        raise error(
            f"approval {approval.id} expired at {_rfc3339(approval.expires)}",
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


def _rfc3339(moment: datetime) -> str:
    return moment.isoformat().replace("+00:00", "Z")
