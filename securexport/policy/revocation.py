"""Revocations (DESIGN.md §12): an approver withdraws an approval, an exporter key or a recipient.

A revocation is a small canonical JSON document (RFC 8785) signed by a trusted approver with a
detached SSHSIG in the namespace ``securexport-revocation-v1``::

    {"schema": "securexport.revocation/1", "kind": "approval", "approval_id": "APR-2026-0042",
     "revoked_at": "2026-06-01T12:00:00Z", "reason": "…"}

``kind`` is ``approval`` (with ``approval_id``, which revokes every version of that id, or
``approval_sha256``, which revokes exactly one signed file), ``exporter`` (with ``ssh``, an
``ssh-ed25519`` key) or ``recipient`` (with ``age``, an ``age1…`` recipient; auditors too).
Once imported into ``$SECUREXPORT_HOME/revocations/`` (securexport.home.revocations, after its
signature by a trusted approver is checked), ``export`` refuses (exit 3), and ``verify``/``decrypt`` refuse (exit 5), anything it
names, whenever it was made: a revocation says "stop trusting this", not "from this date".
Revocations only ever take trust away, so one signed by an approver who is later removed from the
trust store stays in force; a damaged stored revocation makes every check fail (fail closed).
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

import rfc8785

from securexport._crypto import sshsig
from securexport._crypto.sshkey import InvalidKeyError, SshPublicKey
from securexport.errors import PolicyError, UsageError, VerificationError
from securexport.limits import DEFAULT_LIMITS, Limits
from securexport.policy.approval import Approval
from securexport.policy.times import rfc3339

SCHEMA = "securexport.revocation/1"
Kind = Literal["approval", "exporter", "recipient"]
KINDS: tuple[Kind, ...] = ("approval", "exporter", "recipient")
MAX_REASON_CHARS = 1000
_TARGET_KEY = {
    "approval": ("approval_id", "approval_sha256"),
    "exporter": ("ssh",),
    "recipient": ("age",),
}
_HEX64 = re.compile(r"[0-9a-f]{64}")
_APPROVAL_ID = re.compile(r"[A-Z0-9][A-Za-z0-9._-]{0,63}")
_AGE = re.compile(r"age1[qpzry9x8gf2tvdw0s3jn54khce6mua7l]{58}")
_TIME = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ")

ErrorClass = type[PolicyError] | type[VerificationError]


@dataclass(frozen=True)
class Revocation:
    """One parsed revocation.  Exactly one target field is set."""

    kind: Kind
    revoked_at: str
    raw: bytes
    approval_id: str | None = None
    approval_sha256: str | None = None
    ssh: SshPublicKey | None = None
    age: str | None = None
    reason: str | None = None

    @property
    def sha256(self) -> str:
        return hashlib.sha256(self.raw).hexdigest()

    def target(self) -> str:
        if self.kind == "approval":
            return (
                f"approval {self.approval_id}"
                if self.approval_id
                else f"approval sha256 {self.approval_sha256}"
            )
        if self.kind == "exporter":
            assert self.ssh is not None
            return f"exporter key {self.ssh.fingerprint()}"
        return f"recipient {self.age}"

    def names_approval(self, approval_id: str, approval_sha256: str) -> bool:
        return self.kind == "approval" and (
            self.approval_id == approval_id or self.approval_sha256 == approval_sha256
        )

    def names_exporter(self, key: SshPublicKey) -> bool:
        return self.kind == "exporter" and self.ssh == key

    def names_recipient(self, age: str) -> bool:
        return self.kind == "recipient" and self.age == age

    def to_json(self) -> dict[str, Any]:
        doc: dict[str, Any] = json.loads(self.raw)
        doc["sha256"] = self.sha256
        return doc


def make_revocation(kind: str, target: str, now: datetime, reason: str | None = None) -> bytes:
    """The canonical bytes of a new revocation of ``target`` (checked like the parser does)."""
    if kind not in KINDS:
        raise UsageError(
            f"unknown revocation kind {kind!r}", hint="approval, exporter or recipient"
        )
    doc: dict[str, Any] = {"schema": SCHEMA, "kind": kind, "revoked_at": rfc3339(now)}
    target = target.strip()
    if kind == "approval":
        doc["approval_sha256" if _HEX64.fullmatch(target) else "approval_id"] = target
    elif kind == "exporter":
        try:
            doc["ssh"] = SshPublicKey.parse(target).to_line()
        except InvalidKeyError as exc:
            raise UsageError(f"not an ssh-ed25519 key: {exc}") from None
    else:
        doc["age"] = target
    if reason:
        doc["reason"] = reason
    raw = bytes(rfc8785.dumps(doc))
    try:
        parse_revocation(raw)
    except VerificationError as exc:
        raise UsageError(exc.message) from None
    return raw


def parse_revocation(raw: bytes, limits: Limits = DEFAULT_LIMITS) -> Revocation:
    """Parse strictly: canonical JSON, known keys only, exactly one well-formed target."""
    bad = "malformed revocation"
    if len(raw) > limits.max_revocation_bytes:
        raise VerificationError(f"{bad}: larger than {limits.max_revocation_bytes} bytes")
    try:
        doc = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, ValueError) as exc:
        raise VerificationError(f"{bad}: not JSON") from exc
    if not isinstance(doc, dict) or doc.get("schema") != SCHEMA:
        raise VerificationError(f"{bad}: not a {SCHEMA} document")
    if bytes(rfc8785.dumps(doc)) != raw:
        raise VerificationError(f"{bad}: not canonical JSON (RFC 8785)")
    kind = doc.get("kind")
    if kind not in KINDS:
        raise VerificationError(f"{bad}: unknown kind")
    targets = _TARGET_KEY[kind]
    allowed = {"schema", "kind", "revoked_at", "reason", *targets}
    if set(doc) - allowed:
        raise VerificationError(f"{bad}: unknown keys {sorted(set(doc) - allowed)}")
    present = [t for t in targets if t in doc]
    if len(present) != 1 or not all(isinstance(doc[k], str) for k in doc):
        raise VerificationError(f"{bad}: needs exactly one target, and string values")
    revoked_at = doc.get("revoked_at")
    if not isinstance(revoked_at, str) or not _TIME.fullmatch(revoked_at):
        raise VerificationError(f"{bad}: revoked_at is not RFC 3339 UTC")
    reason = doc.get("reason")
    if reason is not None and (not reason or len(reason) > MAX_REASON_CHARS):
        raise VerificationError(f"{bad}: reason is empty or too long")
    value: str = doc[present[0]]
    fields: dict[str, Any] = {}
    if present[0] == "approval_id" and not _APPROVAL_ID.fullmatch(value):
        raise VerificationError(f"{bad}: approval_id is not an approval id")
    if present[0] == "approval_sha256" and not _HEX64.fullmatch(value):
        raise VerificationError(f"{bad}: approval_sha256 is not 64 lower-case hex digits")
    if present[0] == "age" and not _AGE.fullmatch(value):
        raise VerificationError(f"{bad}: age is not an age1… X25519 recipient")
    if present[0] == "ssh":
        try:
            key = SshPublicKey.parse(value)
        except InvalidKeyError as exc:
            raise VerificationError(f"{bad}: ssh is not an ssh-ed25519 key") from exc
        if key.to_line() != value:
            raise VerificationError(f"{bad}: ssh must be 'ssh-ed25519 AAAA…' without a comment")
        fields["ssh"] = key
    else:
        fields[present[0]] = value
    return Revocation(kind=kind, revoked_at=revoked_at, raw=raw, reason=reason, **fields)


def verify_revocation(
    raw: bytes, signature: bytes, approver_for: Callable[[SshPublicKey], str | None] | None
) -> tuple[Revocation, str | None]:
    """Check the SSHSIG (and, with ``approver_for``, that a trusted approver made it), parse.

    Returns the revocation and the approver's name (None when ``approver_for`` is None).
    """
    signer = sshsig.verify(signature, raw, sshsig.NAMESPACE_REVOCATION)
    name: str | None = None
    if approver_for is not None:
        name = approver_for(signer)
        if name is None:
            raise VerificationError(
                f"the revocation is signed by a key that is not a trusted approver "
                f"({signer.fingerprint()})",
                hint="only an approver trusted here (trust add NAME KEY --role approver) can revoke",
            )
    return parse_revocation(raw), name


@dataclass(frozen=True)
class Revocations:
    """A loaded set of revocations, and the checks the commands make against it."""

    items: tuple[Revocation, ...]

    def problems(
        self,
        *,
        approval_id: str | None = None,
        approval_sha256: str | None = None,
        exporter: SshPublicKey | None = None,
        recipients: Iterable[str] = (),
    ) -> list[str]:
        """What the given approval, exporter key and recipients have revoked (empty: nothing)."""
        found: list[str] = []
        wanted = list(recipients)
        for r in self.items:
            hit = (
                (approval_id is not None and r.names_approval(approval_id, approval_sha256 or ""))
                or (exporter is not None and r.names_exporter(exporter))
                or any(r.names_recipient(age) for age in wanted)
            )
            if hit:
                found.append(f"{r.target()} was revoked at {r.revoked_at}")
        return found

    def check(
        self,
        approval: Approval,
        *,
        exporter: SshPublicKey | None,
        recipients: Sequence[str],
        error: ErrorClass,
    ) -> None:
        """Raise ``error`` naming the first revocation that applies."""
        found = self.problems(
            approval_id=approval.id,
            approval_sha256=approval.sha256,
            exporter=exporter,
            recipients=recipients,
        )
        if found:
            raise error(
                found[0] + (f" (and {len(found) - 1} more)" if len(found) > 1 else ""),
                hint="the approver revoked it: ask the data owner for a new approval",
            )
