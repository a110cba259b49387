"""Running adversarial cases: the context each case gets, forging helpers, the clean-up checks.

A case drives securexport (API, CliRunner or a subprocess) and returns the exit code it saw.
:func:`run_case` then holds the result to the case's data: the exit code, the check that caught
it (a regex over the error message), and that nothing was left behind — no output bundle or
directory, no ``.partial``, and the canary (a value planted in every source row) in no file and
no stream.

The forging helpers play a *malicious exporter*: they hold the exporter's signing key and
ledger, so they can re-sign a manifest and log it, which gets a hostile payload past the
signature and receipt checks to the check that is meant to catch it.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import re
import sqlite3
import uuid
import warnings
import zipfile
from collections.abc import Callable, Iterable, Mapping
from functools import cached_property
from pathlib import Path
from typing import Any

import pyzipper

from securexport import api
from securexport._crypto import agefile, sshsig
from securexport.bundle.container import (
    FIXED_DATE_TIME,
    KEY_FILE,
    MANIFEST,
    MANIFEST_SIG,
    MEMBER_ORDER,
    PAYLOAD,
    RECEIPT,
    file_hmac_key,
    new_payload_password,
    write_bundle,
)
from securexport.environment import Environment
from securexport.errors import SecurexportError
from securexport.home.keystore import KeyStore
from securexport.ledger.log import Ledger
from securexport.policy.manifest import canonical_bytes
from tests.adversarial.registry import Case
from tests.support.cli import SCRYPT_VAR, Runner
from tests.support.world import DEFAULT_COLUMNS, FIXED_NOW, TEST_LOG_N, World

CANARY = "SXCANARY"  # planted in every source row's `prison`; exported by a `keep` column
KEEP_PRISON = (
    '\n[[column]]\nname = "prison"\nsource = "prison"\ntransform = "keep"\nrole = "sensitive"\n'
)
ADV_COLUMNS = DEFAULT_COLUMNS + KEEP_PRISON
ADV_EXPIRES = "2030-12-31T23:59:59Z"  # also valid for the real clock of CLI subprocesses
REPO = Path(__file__).resolve().parents[2]
ROLES = {"owner": "owner", "exporter": "analyst", "recipient": "force", "auditor": "audit"}


def plant_canary(db_path: Path) -> None:
    with sqlite3.connect(db_path) as conn:
        conn.execute("UPDATE offenders SET prison = ? || rowid", (CANARY,))
    conn.close()


def sha256_file(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


class Ctx:
    """What a case gets: the world, a valid approval and bundle, and ways to run securexport."""

    def __init__(self, world: World) -> None:
        self.world = world
        self.root = world.root
        self.out = world.root / "extract"  # the decrypt output directory
        self.messages: list[str] = []  # error messages and hints seen
        self.streams: list[str] = []  # stdout/stderr of CLI runs
        self.planted: set[Path] = set()  # files/dirs the case put there on purpose
        self.allow_partials: set[Path] = set()  # .partial a SIGKILL may leave (checked for canary)
        self.outputs: list[Path] = [self.out]  # must not exist after a failure
        self.sources: set[Path] = {world.db_path}
        self.external_vectors = 0
        self.fuzz_executions = 0
        self.allow_output = False  # the case checks its own output (e.g. round trips)
        plant_canary(world.db_path)

    # ------------------------------------------------------------------ fixtures, lazily

    @cached_property
    def approval(self) -> Path:
        return self.world.write_approval(
            columns=ADV_COLUMNS, expires=ADV_EXPIRES, name="adv-approval.toml"
        )

    @cached_property
    def bundle(self) -> Path:
        return self.world.export(self.approval, out=self.root / "base.sxb").bundle

    @cached_property
    def second_bundle(self) -> Path:
        return self.world.export(self.approval, out=self.root / "second.sxb").bundle

    def env(self, role: str) -> Environment:
        return getattr(self.world, role)  # type: ignore[no-any-return]

    def keystore(self, role: str) -> KeyStore:
        return KeyStore(self.env(role), scrypt_log_n=TEST_LOG_N)

    def approval_with(self, *, sign: bool = True, name: str | None = None, **kw: Any) -> Path:
        kw.setdefault("columns", ADV_COLUMNS)
        kw.setdefault("expires", ADV_EXPIRES)
        return self.world.write_approval(sign=sign, name=name, **kw)

    # ------------------------------------------------------------------ running

    def api(self, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> int:
        """Call ``fn``; the exit code of the SecurexportError it raises, or 0."""
        try:
            fn(*args, **kwargs)
        except SecurexportError as exc:
            self.messages.append(exc.message)
            if exc.hint:
                self.messages.append(exc.hint)
            return exc.exit_code
        return 0

    def decrypt(
        self, bundle: Path, as_name: str = "force", role: str = "recipient", out: Path | None = None
    ) -> int:
        return self.api(api.decrypt, self.env(role), bundle, as_name, out or self.out)

    def verify(self, bundle: Path, role: str = "recipient") -> int:
        return self.api(api.verify, self.env(role), bundle)

    def export(
        self, approval: Path | None = None, *, out: Path | None = None, source: str | None = None
    ) -> int:
        out = out or self.root / f"out-{uuid.uuid4().hex[:8]}.sxb"
        self.outputs.append(out)
        return self.api(
            api.export,
            self.world.exporter,
            approval or self.approval,
            source or self.world.source_url,
            "analyst",
            out,
        )

    def cli_env(self, role: str, **extra: str) -> dict[str, str]:
        env = {
            "SECUREXPORT_KEYSTORE": "file",
            "SECUREXPORT_PASSPHRASE_FILE": str(self.env(role).passphrase_file),
            "SECUREXPORT_HOME": str(self.env(role).home.path),
        }
        env.update(extra)
        return env

    def cli(self, args: list[str], role: str = "recipient", **extra_env: str) -> int:
        """Run the CLI in-process with click's CliRunner (stdout and stderr kept apart)."""
        from securexport.cli import cli

        env = self.cli_env(role, **extra_env)
        result = Runner().invoke(cli, ["--home", env["SECUREXPORT_HOME"], *args], env=env)
        self.streams += [result.stdout, result.stderr]
        self.messages.append(result.stderr)
        if result.exit_code != 0:
            assert result.stdout == "", "stdout must stay empty on failure"
            if "-v" in args:  # a traceback first, then the one-line error
                assert "\nsecurexport: error: " in result.stderr, result.stderr
            else:
                assert result.stderr.startswith("securexport: error: "), result.stderr
                assert "Traceback" not in result.stderr
        return result.exit_code

    # ------------------------------------------------------------------ bundle surgery

    @staticmethod
    def members(bundle: Path) -> dict[str, bytes]:
        with zipfile.ZipFile(bundle) as zf:
            return {name: zf.read(name) for name in zf.namelist()}

    def write(self, members: Mapping[str, bytes], name: str = "forged.sxb") -> Path:
        """A bundle with these members, written the way securexport writes bundles."""
        path = self.root / name
        with open(path, "w+b") as fh:
            write_bundle(fh, [(n, members[n]) for n in MEMBER_ORDER if n in members])
        return path

    def write_raw(self, items: Iterable[tuple[str, bytes]], name: str = "raw.sxb") -> Path:
        """A plain stored ZIP with exactly these entries, in this order (no checks)."""
        path = self.root / name
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)  # zipfile warns about duplicates
            with zipfile.ZipFile(path, "w", zipfile.ZIP_STORED) as zf:
                for member, data in items:
                    zf.writestr(zipfile.ZipInfo(member, date_time=FIXED_DATE_TIME), data)
        return path

    def resign(
        self,
        members: Mapping[str, bytes],
        edit: Callable[[dict[str, Any]], None] | None = None,
        *,
        encode: Callable[[dict[str, Any]], bytes] = canonical_bytes,
        signer: str = "exporter",
        relog: bool = True,
    ) -> dict[str, bytes]:
        """A malicious exporter's forgery: fix the hashes, edit, re-sign and (re)log."""
        out = dict(members)
        doc = json.loads(out[MANIFEST])
        doc["export_id"] = str(uuid.uuid4())
        doc["payload"]["sha256"] = hashlib.sha256(out[PAYLOAD]).hexdigest()
        doc["payload"]["bytes"] = len(out[PAYLOAD])
        doc["key_file"]["sha256"] = hashlib.sha256(out[KEY_FILE]).hexdigest()
        if edit is not None:
            edit(doc)
        raw = encode(doc)
        name = {"exporter": "analyst", "owner": "owner", "outsider": "stranger"}[signer]
        key = self.keystore(signer).signing_key(name)
        signature = sshsig.sign(key, raw, sshsig.NAMESPACE_MANIFEST)
        out[MANIFEST], out[MANIFEST_SIG] = raw, signature
        if relog:
            out[RECEIPT] = self.log(raw, signature, doc)
        return out

    def log(self, raw: bytes, signature: bytes, doc: Mapping[str, Any]) -> bytes:
        """Append a manifest to the exporter's own ledger; the receipt's bytes."""
        ledger_key = self.keystore("exporter").ledger_signing_key()
        approval = doc.get("approval", {}) if isinstance(doc.get("approval"), dict) else {}
        sha = str(approval.get("sha256", "0" * 64))
        with Ledger.open(self.world.exporter.home.ledger_path) as ledger:
            receipt = ledger.append_export(
                raw,
                signature,
                export_id=str(doc.get("export_id", uuid.uuid4())),
                approval_id=str(approval.get("id", "forged")),
                approval_sha256=sha,
                run=ledger.runs_used(sha) + 1,
                max_runs=None,
                signer=ledger_key,
                now=FIXED_NOW,
            )
        return receipt.to_bytes()

    def plaintext(self, members: Mapping[str, bytes]) -> dict[str, bytes]:
        """The payload's files, decrypted in memory with the recipient's key (never on disk)."""
        identity = self.keystore("recipient").age_identity("force")
        password = agefile.decrypt(members[KEY_FILE], [identity], max_bytes=256)
        with pyzipper.AESZipFile(io.BytesIO(members[PAYLOAD])) as zf:
            zf.setpassword(password)
            return {name: zf.read(name) for name in zf.namelist()}

    def forge_content(
        self,
        files: Mapping[str, bytes],
        rows: int,
        edit: Callable[[dict[str, Any]], None] | None = None,
        *,
        nbits: int = 256,
        ae_version: int = 2,
        encrypt: bool = True,
        manifest_files: list[dict[str, Any]] | None = None,
        patch: Callable[[bytes], bytes] | None = None,
        password_hook: Callable[[str], None] | None = None,
    ) -> Path:
        """A signed, logged bundle whose payload holds ``files`` (real AES, a fresh password)."""
        base = self.members(self.bundle)
        password = new_payload_password()
        if password_hook is not None:
            password_hook(password)
        payload = aes_payload(password, files, nbits=nbits, ae_version=ae_version, encrypt=encrypt)
        if patch is not None:
            payload = patch(payload)
        doc = json.loads(base[MANIFEST])
        parties = [p["age"] for p in doc["recipients"] + doc["auditors"]]
        key_file = agefile.encrypt(password.encode("ascii"), parties)
        hmac_key = file_hmac_key(password)
        listed = manifest_files or [
            {
                "path": name,
                "bytes": len(data),
                "rows": rows,
                "hmac_sha256": _hmac(hmac_key, data),
            }
            for name, data in files.items()
        ]

        def apply(d: dict[str, Any]) -> None:
            d["files"] = listed
            d["records"]["written"] = sum(f["rows"] for f in listed)
            if edit is not None:
                edit(d)

        forged = self.resign({**base, PAYLOAD: payload, KEY_FILE: key_file}, apply)
        return self.write(forged, f"content-{uuid.uuid4().hex[:8]}.sxb")

    def forge_payload(
        self, payload: bytes, edit: Callable[[dict[str, Any]], None] | None = None
    ) -> Path:
        """A signed, logged bundle around an arbitrary (hostile) payload.zip."""
        forged = self.resign({**self.members(self.bundle), PAYLOAD: payload}, edit)
        return self.write(forged, f"payload-{uuid.uuid4().hex[:8]}.sxb")

    # ------------------------------------------------------------------ checks

    def leftovers(self) -> list[str]:
        problems: list[str] = []
        for path in self.outputs:
            if (path.exists() or path.is_symlink()) and path not in self.planted:
                problems.append(f"output left behind: {path}")
        for path in self.root.rglob("*.partial"):
            if path not in self.planted and path not in self.allow_partials:
                problems.append(f"partial left behind: {path}")
        needle = CANARY.encode()
        for path in self.root.rglob("*"):
            if path.is_symlink() or not path.is_file() or path in self.sources:
                continue
            if path.name.startswith(tuple(p.name for p in self.sources)):
                continue  # the source database's own -journal/-wal files
            if needle in path.read_bytes():
                problems.append(f"canary found in {path}")
        return problems

    def leaks(self) -> list[str]:
        text = "\n".join(self.messages + self.streams)
        for role in ("owner", "exporter", "recipient", "auditor", "outsider"):
            stream = self.env(role).stderr
            if isinstance(stream, io.StringIO):
                text += stream.getvalue()
        return ["canary in a message or stream"] if CANARY in text else []


def _hmac(key: bytes, data: bytes) -> str:
    import hmac

    return hmac.new(key, data, hashlib.sha256).hexdigest()


def aes_payload(
    password: str,
    files: Mapping[str, bytes],
    *,
    nbits: int = 256,
    ae_version: int = 2,
    encrypt: bool = True,
) -> bytes:
    """payload.zip bytes holding ``files`` as WinZip AES entries (or plain ones)."""
    buf = io.BytesIO()
    mode = (0o100600) << 16
    kwargs: dict[str, Any] = {"compression": pyzipper.ZIP_DEFLATED}
    if encrypt:
        kwargs["encryption"] = pyzipper.WZ_AES
    with pyzipper.AESZipFile(buf, "w", **kwargs) as zf:
        if encrypt:
            zf.setpassword(password.encode("ascii"))
            zf.setencryption(pyzipper.WZ_AES, nbits=nbits, force_wz_aes_version=ae_version)
        for name, data in files.items():
            info = pyzipper.zipfile_aes.AESZipInfo(name, date_time=FIXED_DATE_TIME)
            info.compress_type = pyzipper.ZIP_DEFLATED
            info.external_attr = mode
            info.create_system = 3
            zf.writestr(info, data)
    return buf.getvalue()


def run_case(case: Case, ctx: Ctx) -> None:
    """Run ``case`` and hold the outcome to its data."""
    observed = case.run(ctx)
    detail = " | ".join(m.strip() for m in ctx.messages if m.strip())
    assert observed == case.exit_code, (
        f"{case.id}: exit {observed}, expected {case.exit_code}: {detail}"
    )
    if case.message is not None:
        assert re.search(case.message, detail), f"{case.id}: caught by another check: {detail}"
    assert not ctx.leaks(), f"{case.id}: the canary leaked into a message: {detail}"
    if case.exit_code != 0 and not ctx.allow_output:
        assert not ctx.leftovers(), f"{case.id}: {ctx.leftovers()}"
    elif not ctx.allow_output:
        # Even on success nothing may sit on disk in the clear outside the asked-for output.
        problems = [p for p in ctx.leftovers() if "output left behind" not in p]
        problems = [p for p in problems if not _inside_any(p, ctx.outputs)]
        assert not problems, f"{case.id}: {problems}"


def _inside_any(problem: str, outputs: list[Path]) -> bool:
    return any(str(out) in problem for out in outputs)


def env_without_terminal(env: Environment, **changes: Any) -> Environment:
    """A copy of ``env`` with some fields changed (passphrase file, keystore...)."""
    import dataclasses

    return dataclasses.replace(env, **changes)


def subprocess_env(ctx: Ctx, role: str, **extra: str) -> dict[str, str]:
    env = {
        k: v for k, v in os.environ.items() if not k.startswith("SECUREXPORT_") or k == SCRYPT_VAR
    }
    env.update(ctx.cli_env(role, **extra))
    env["PYTHONPATH"] = str(REPO)
    return env
