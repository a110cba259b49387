"""Approvals: the template, a strict check, signing, and loading a signed one for a run."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from securexport._crypto import sshsig
from securexport.environment import Environment
from securexport.errors import FileError, SecurexportError
from securexport.fsutil import atomic_write, read_limited, signature_path
from securexport.home.keystore import open_keystore
from securexport.home.truststore import TrustStore
from securexport.limits import DEFAULT_LIMITS, Limits
from securexport.policy import authorise
from securexport.policy.approval import Approval, approval_template, parse_approval


def init_approval() -> str:
    """A commented approval template to fill in."""
    return approval_template()


def write_approval_template(output: Path) -> Path:
    """The template into ``output``, which must not exist yet (never replaced)."""
    if output.exists():
        raise FileError(f"{output} exists already")
    atomic_write(output, init_approval().encode("utf-8"), mode=0o644, overwrite=False)
    return output


@dataclass(frozen=True)
class ApprovalCheck:
    approval: Approval
    signed: bool
    signer: str | None
    window: str  # "valid", "not yet valid", "expired"
    problems: tuple[str, ...]


def check_approval(
    env: Environment, path: Path | BinaryIO, limits: Limits = DEFAULT_LIMITS
) -> ApprovalCheck:
    """Parse strictly; report signature and validity without refusing on them.

    ``path`` may be a stream (``approval check -``): then there is no FILE.sig beside it, and
    the approval is reported as not signed.
    """
    problems: list[str] = []
    signer: str | None = None
    if isinstance(path, Path):
        raw = read_limited(path, limits.max_approval_bytes, "approval")
        approval = parse_approval(raw, limits=limits, filename=path.name)
        sig_path: Path | None = signature_path(path)
    else:
        raw = path.read(limits.max_approval_bytes + 1)
        if len(raw) > limits.max_approval_bytes:
            raise FileError(
                "the approval on standard input is larger than the limit "
                f"({limits.max_approval_bytes} bytes)"
            )
        approval = parse_approval(raw, limits=limits, filename="<stdin>")
        sig_path = None
    signed = sig_path is not None and sig_path.exists()
    if sig_path is not None and signed:
        try:
            sig = read_limited(sig_path, limits.max_signature_bytes, "signature")
            signer = authorise.load_signed_approval(
                raw, sig, TrustStore(env.home).approver_name, limits
            ).signer_name
        except SecurexportError as exc:
            problems.append(exc.message)
    elif sig_path is not None:
        problems.append("not signed")
    else:
        problems.append("not signed (read from standard input: no FILE.sig beside it)")
    now = env.now()
    window = "valid"
    if now < approval.not_before:
        window = "not yet valid"
    elif now > approval.expires:
        window = "expired"
    if window != "valid":
        problems.append(f"validity window: {window}")
    return ApprovalCheck(approval, signed, signer, window, tuple(problems))


def sign_approval(
    env: Environment, path: Path, as_name: str, limits: Limits = DEFAULT_LIMITS
) -> Path:
    """Parse strictly, warn if the window is over, write the detached SSHSIG to FILE.sig."""
    raw = read_limited(path, limits.max_approval_bytes, "approval")
    approval = parse_approval(raw, limits=limits, filename=path.name)
    key = open_keystore(env).signing_key(as_name)  # a missing key is the one error, alone
    if env.now() > approval.expires:
        env.warn(f"approval {approval.id} has already expired; signing it anyway")
    signature = sshsig.sign(key, raw, sshsig.NAMESPACE_APPROVAL)
    sig_path = signature_path(path)
    atomic_write(sig_path, signature, mode=0o644)
    return sig_path


def load_for_run(
    env: Environment, approval_path: Path, limits: Limits
) -> tuple[authorise.SignedApproval, bytes, bytes]:
    """A signed approval as a run needs it (plan, export, a pseudonym key's export): signed by
    a trusted approver, or refused; with its bytes and signature."""
    raw = read_limited(approval_path, limits.max_approval_bytes, "approval")
    sig_path = signature_path(approval_path)
    sig = (
        read_limited(sig_path, limits.max_signature_bytes, "signature")
        if sig_path.exists()
        else None
    )
    signed = authorise.load_signed_approval(
        raw, sig, TrustStore(env.home).approver_name, limits, filename=approval_path.name
    )
    assert sig is not None
    return signed, raw, sig
