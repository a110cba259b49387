"""A bundle's life after export: inspect it, verify it, decrypt it (DESIGN.md §8.4)."""

from __future__ import annotations

import contextlib
import hashlib
import os
import shutil
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, BinaryIO

from securexport._crypto import agefile, sshsig
from securexport.bundle.container import (
    APPROVAL,
    APPROVAL_SIG,
    COSIGNATURE,
    KEY_FILE,
    MANIFEST,
    MANIFEST_SIG,
    RECEIPT,
    OpenedBundle,
    check_payload,
    extract_payload,
    open_bundle,
)
from securexport.bundle.plaintext import check_plaintext
from securexport.environment import Environment
from securexport.errors import FileError, KeyUnavailableError, UsageError, VerificationError
from securexport.fsutil import claim_partial_dir, fsync_dir, os_error_message, release_partial_dir
from securexport.home.keystore import open_keystore
from securexport.home.revocations import load_revocations
from securexport.home.truststore import TrustStore
from securexport.ledger.cosigned import check_cosignature
from securexport.ledger.receipt import verify_receipt
from securexport.limits import DEFAULT_LIMITS, Limits
from securexport.policy import authorise
from securexport.policy.approval import Approval
from securexport.policy.manifest import Manifest, parse_manifest


@dataclass(frozen=True)
class InspectedColumn:
    """One output column as the manifest describes it (as written, None where it says nothing)."""

    name: str | None
    source: str | None
    transform: str | None


def _as_written(value: object) -> str | None:
    """A manifest value the parser does not check, as text for showing (None stays None)."""
    return None if value is None else str(value)


@dataclass(frozen=True)
class Inspection:
    """A bundle's manifest, parsed strictly but not verified: no keys, no trust decision.

    The manifest's typed fields are the ones the parser checks; the others here are shown as
    written (text, None where the manifest says nothing).  ``to_json`` is the manifest document.
    """

    manifest: Manifest

    def _part(self, key: str) -> Any:
        return self.manifest.document.get(key, {})

    @property
    def approval_signer(self) -> str | None:
        return _as_written(self._part("approval").get("signer"))

    @property
    def exporter_fingerprint(self) -> str | None:
        return _as_written(self._part("operator").get("key_fingerprint"))

    @property
    def exporter_host(self) -> str | None:
        return _as_written(self._part("operator").get("host"))

    @property
    def matching_rows(self) -> str | None:
        return _as_written(self._part("records").get("matching"))

    @property
    def k_achieved(self) -> str | None:
        return _as_written(self._part("records").get("k_achieved"))

    @property
    def columns(self) -> tuple[InspectedColumn, ...]:
        return tuple(
            InspectedColumn(
                _as_written(col.get("name")),
                _as_written(col.get("source")),
                _as_written(col.get("transform")),
            )
            for col in self.manifest.document.get("columns", [])
        )

    def to_json(self) -> dict[str, Any]:
        return dict(self.manifest.document)


BundleSource = Path | BinaryIO
"""A bundle file, or a stream holding one (``verify -``: standard input)."""


@contextlib.contextmanager
def _bundle_file(source: BundleSource, limits: Limits) -> Iterator[Path]:
    """``source`` as a file: a path as it is; a stream spooled to a private temporary file
    (the bundle reader seeks), refused beyond the bundle size limit, removed afterwards."""
    if isinstance(source, Path):
        yield source
        return
    with tempfile.TemporaryDirectory(prefix="securexport-stdin-") as tmp:  # 0700
        path = Path(tmp) / "bundle.sxb"
        with open(path, "xb") as out:
            os.fchmod(out.fileno(), 0o600)
            copied = 0
            while chunk := source.read(1 << 20):
                copied += len(chunk)
                if copied > limits.max_bundle_bytes:
                    raise VerificationError(
                        "the bundle on standard input is larger than the bundle size limit "
                        f"({limits.max_bundle_bytes} bytes)"
                    )
                out.write(chunk)
        yield path


def inspect(bundle_path: BundleSource, limits: Limits = DEFAULT_LIMITS) -> Inspection:
    """The manifest, parsed, without keys and without any trust decision."""
    with _bundle_file(bundle_path, limits) as path, open_bundle(path, limits) as bundle:
        return Inspection(
            parse_manifest(bundle.member(MANIFEST), max_bytes=limits.max_manifest_bytes)
        )


@dataclass(frozen=True)
class Verdict:
    """What ``verify`` established; every field was checked (a failure raises instead)."""

    export_id: str
    approval_id: str
    approval_sha256: str
    approver: str
    exporter: str
    exporter_fingerprint: str
    created_at: str
    rows: int
    recipients: tuple[str, ...]
    auditors: tuple[str, ...]
    ledger_origin: str
    ledger_index: int
    ledger_size: int
    checks: tuple[str, ...] = field(default_factory=tuple)
    manifest: Manifest | None = None
    approval: Approval | None = None

    def to_json(self) -> dict[str, Any]:
        return {
            "ok": True,
            "export_id": self.export_id,
            "approval": {
                "id": self.approval_id,
                "sha256": self.approval_sha256,
                "approver": self.approver,
            },
            "exporter": {"name": self.exporter, "fingerprint": self.exporter_fingerprint},
            "created_at": self.created_at,
            "rows": self.rows,
            "recipients": list(self.recipients),
            "auditors": list(self.auditors),
            "ledger": {
                "origin": self.ledger_origin,
                "index": self.ledger_index,
                "size": self.ledger_size,
            },
            "checks": list(self.checks),
        }


def _verify_open(env: Environment, bundle: OpenedBundle, limits: Limits) -> Verdict:
    checks: list[str] = []
    manifest = parse_manifest(bundle.member(MANIFEST), max_bytes=limits.max_manifest_bytes)
    signer = sshsig.verify(
        bundle.member(MANIFEST_SIG),
        manifest.raw,
        sshsig.NAMESPACE_MANIFEST,
        max_bytes=limits.max_signature_bytes,
    )
    checks.append("manifest signature")
    trust = TrustStore(env.home)
    signed = authorise.load_signed_approval(
        bundle.member(APPROVAL),
        bundle.member(APPROVAL_SIG),
        trust.approver_name,
        limits,
        error=VerificationError,
    )
    approval = signed.approval
    checks.append(f"approval signed by trusted approver {signed.signer_name}")
    load_revocations(env.home).check(
        approval,
        exporter=signer,
        recipients=[age for _, age in (*manifest.recipients, *manifest.auditors)],
        error=VerificationError,
    )
    exporter = authorise.check_manifest(manifest, approval, signer)
    checks.append(f"exporter {exporter.name} is named in the approval")
    want_recipients = tuple((p.name, p.age) for p in approval.recipients)
    want_auditors = tuple((p.name, p.age) for p in approval.auditors)
    checks.append("manifest agrees with the approval")

    if bundle.payload_sha256() != manifest.payload_sha256:
        raise VerificationError("payload.zip does not match the manifest (sha256)")
    key_file = bundle.member(KEY_FILE)
    if hashlib.sha256(key_file).hexdigest() != manifest.key_file_sha256:
        raise VerificationError("payload.key.age does not match the manifest (sha256)")
    if agefile.x25519_stanza_count(key_file) != len(want_recipients) + len(want_auditors):
        raise VerificationError(
            "payload.key.age is wrapped for a different number of keys than the approval names"
        )
    checks.append("payload and key file hashes")
    check_payload(bundle, {f.path: f.bytes for f in manifest.files}, limits)
    checks.append("payload structure (AES-256 AE-2 entries, names, sizes)")

    verifier_keys = [t.key_text for t in trust.ledger_keys()]
    if exporter.ledger:
        verifier_keys.append(exporter.ledger)
    if not bundle.has(RECEIPT):
        raise VerificationError("the bundle has no ledger receipt: it was not logged")
    if not verifier_keys:
        raise VerificationError(
            "no trusted ledger key to check the receipt with",
            hint="name the exporter's ledger key in the approval, or: securexport trust add NAME KEY --role ledger",
        )
    checkpoint = verify_receipt(bundle.member(RECEIPT), manifest.raw, verifier_keys)
    checks.append(f"ledger receipt (entry {checkpoint.index} in a tree of {checkpoint.size})")
    cosigned = check_cosignature(
        bundle.member(COSIGNATURE) if bundle.has(COSIGNATURE) else None,
        manifest.raw,
        verifier_keys,
        checkpoint.origin,
        approval.witness,
        limits,
    )
    if cosigned is not None:
        checks.append(cosigned)
    return Verdict(
        export_id=manifest.export_id,
        approval_id=approval.id,
        approval_sha256=approval.sha256,
        approver=signed.signer_name,
        exporter=exporter.name,
        exporter_fingerprint=signer.fingerprint(),
        created_at=manifest.created_at,
        rows=manifest.rows_written,
        recipients=tuple(n for n, _ in want_recipients),
        auditors=tuple(n for n, _ in want_auditors),
        ledger_origin=checkpoint.origin,
        ledger_index=checkpoint.index,
        ledger_size=checkpoint.size,
        checks=tuple(checks),
        manifest=manifest,
        approval=approval,
    )


def verify(env: Environment, bundle_path: BundleSource, limits: Limits = DEFAULT_LIMITS) -> Verdict:
    """Check everything that can be checked without decrypting (exit 5 on any failure)."""
    with _bundle_file(bundle_path, limits) as path, open_bundle(path, limits) as bundle:
        return _verify_open(env, bundle, limits)


@dataclass(frozen=True)
class DecryptResult:
    directory: Path
    files: tuple[Path, ...]
    rows: int
    verdict: Verdict


def decrypt(
    env: Environment,
    bundle_path: Path,
    as_name: str,
    out_dir: Path,
    limits: Limits = DEFAULT_LIMITS,
) -> DecryptResult:
    """Verify everything first, then unwrap, extract to DIR.partial, check, rename to DIR."""
    if str(out_dir) == "-":
        raise UsageError(
            "decrypted data is never written to standard output",
            hint="give a directory to create: decrypt BUNDLE --as NAME -o DIR",
        )
    if out_dir.is_symlink() or (
        out_dir.exists() and (not out_dir.is_dir() or any(out_dir.iterdir()))
    ):
        raise FileError(f"{out_dir} exists and is not an empty directory")
    partial = out_dir.with_name(out_dir.name + ".partial")
    # The identity unlocks (scrypt, ~0.8 s for a key file; it releases the GIL) on another
    # thread while the bundle is verified; it is used only once everything has verified.
    store = open_keystore(env)
    unlocking = store.unlock_in_background(lambda: store.age_identity(as_name))
    with unlocking, open_bundle(bundle_path, limits) as bundle:
        verdict = _verify_open(env, bundle, limits)
        assert verdict.manifest is not None and verdict.approval is not None
        manifest, approval = verdict.manifest, verdict.approval
        identity = unlocking.result()
        try:
            unwrapped = agefile.decrypt(bundle.member(KEY_FILE), [identity], max_bytes=256)
        except KeyUnavailableError as exc:
            names = ", ".join(n for n, _ in (*manifest.recipients, *manifest.auditors))
            raise KeyUnavailableError(
                f"identity {as_name!r} is not a recipient of this bundle",
                hint=f"it was encrypted for: {names}",
            ) from exc
        password = unwrapped.decode("ascii")
        if len(password) != 43:
            raise VerificationError("the payload password has the wrong form")
        try:
            partial.parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise FileError(f"cannot create {partial.parent}: {os_error_message(exc)}") from exc
        lock_fd = claim_partial_dir(partial, env.notice)
        renamed = False
        try:
            extract_payload(
                bundle,
                password,
                {f.path: (f.bytes, f.hmac_sha256) for f in manifest.files},
                partial,
            )
            for f in manifest.files:
                check_plaintext(partial / f.path, approval, f.rows, limits)
            release_partial_dir(partial)
            if out_dir.exists():
                out_dir.rmdir()
            os.rename(partial, out_dir)
            renamed = True
            fsync_dir(out_dir.parent if str(out_dir.parent) else Path(os.curdir))
        except BaseException:
            # Plaintext whose rename could not be made durable is not left behind either.
            shutil.rmtree(out_dir if renamed else partial, ignore_errors=True)
            raise
        finally:
            os.close(lock_fd)
    return DecryptResult(
        directory=out_dir,
        files=tuple(out_dir / f.path for f in manifest.files),
        rows=manifest.rows_written,
        verdict=verdict,
    )
