"""H. Keys: keyring backends, passphrases, hostile key files, bad public keys."""

from __future__ import annotations

import base64
import dataclasses
import re
import time
from typing import Any

import pytest

from securexport.home.keystore import KeyStore
from tests.adversarial.harness import Ctx, run_case
from tests.adversarial.registry import Case, RecordProperty, case, params
from tests.support.world import TEST_LOG_N


class _FakeBackend:
    def __init__(self) -> None:
        self.stored: dict[tuple[str, str], str] = {}

    def get_password(self, service: str, user: str) -> str | None:
        return self.stored.get((service, user))

    def set_password(self, service: str, user: str, value: str) -> None:
        self.stored[(service, user)] = value


def _fake(module: str, name: str) -> Any:
    cls = type(name, (_FakeBackend,), {"__module__": module})
    cls.__qualname__ = name
    return cls()


def _key_file(ctx: Ctx) -> Any:
    return ctx.world.recipient.home.keys_dir / "force.age-key.age"


@case(
    "H",
    "no-secure-keyring",
    4,
    "SECUREXPORT_KEYSTORE=keyring with only keyring's fail backend",
    via="cli",
    message=r"no secure OS keyring is available \(found keyring\.backends\.fail\.Keyring\)",
)
def _no_keyring(ctx: Ctx) -> int:
    return ctx.cli(
        ["keys", "new", "someone"],
        SECUREXPORT_KEYSTORE="keyring",
        PYTHON_KEYRING_BACKEND="keyring.backends.fail.Keyring",
    )


@case(
    "H",
    "plaintext-keyring-refused",
    4,
    "keyrings.alt's PlaintextKeyring offered as the keyring: refused",
    message=r"no secure OS keyring is available \(found keyrings\.alt\.file\.PlaintextKeyring\)",
)
def _plaintext(ctx: Ctx) -> int:
    backend = _fake("keyrings.alt.file", "PlaintextKeyring")
    env = dataclasses.replace(ctx.world.recipient, keystore="keyring")
    code = ctx.api(
        KeyStore(env, scrypt_log_n=TEST_LOG_N, keyring_backend=backend).create_identity, "x"
    )
    assert backend.stored == {}
    return code


@case(
    "H",
    "plaintext-keyring-auto-falls-back",
    0,
    "with auto, a plaintext keyring is skipped: key files are used, one notice on stderr",
)
def _fallback(ctx: Ctx) -> int:
    backend = _fake("keyring.backends.chainer", "ChainerBackend")
    backend.backends = [_fake("keyrings.alt.file", "PlaintextKeyring")]
    env = dataclasses.replace(ctx.world.recipient, keystore="auto")
    store = KeyStore(env, scrypt_log_n=TEST_LOG_N, keyring_backend=backend)
    code = ctx.api(store.create_identity, "fallback")
    assert (
        backend.backends[0].stored == {} and (env.home.keys_dir / "fallback.age-key.age").exists()
    )
    assert env.stderr.getvalue().count("no secure OS keyring") == 1  # type: ignore[attr-defined]
    return code


@case(
    "H",
    "no-tty-for-prompt",
    4,
    "no passphrase file and no terminal to ask",
    message="a passphrase is needed to unlock the age key of force, and there is no terminal to ask",
)
def _no_tty(ctx: Ctx) -> int:
    env = dataclasses.replace(
        ctx.world.recipient, passphrase_file=None, interactive=True, stdin_isatty=False
    )
    return ctx.api(KeyStore(env, scrypt_log_n=TEST_LOG_N).age_identity, "force")


@case(
    "H",
    "no-input-flag",
    4,
    "`--no-input` and no passphrase file",
    via="cli",
    message="a passphrase is needed to unlock the age key of force, and there is no terminal to ask",
)
def _no_input(ctx: Ctx) -> int:
    from securexport.cli import cli
    from tests.support.cli import Runner

    env = ctx.cli_env("recipient")
    env.pop("SECUREXPORT_PASSPHRASE_FILE")
    result = Runner().invoke(
        cli,
        [
            "--no-input",
            "--home",
            env["SECUREXPORT_HOME"],
            "decrypt",
            str(ctx.bundle),
            "--as",
            "force",
            "-o",
            str(ctx.out),
        ],
        env={**env, "SECUREXPORT_PASSPHRASE_FILE": ""},
    )
    ctx.messages.append(result.stderr)
    return result.exit_code


@case(
    "H",
    "wrong-passphrase",
    4,
    "the passphrase file holds the wrong passphrase",
    message="wrong passphrase or damaged key file",
)
def _wrong(ctx: Ctx) -> int:
    wrong = ctx.root / "wrong.txt"
    wrong.write_text("not it\n")
    env = dataclasses.replace(ctx.world.recipient, passphrase_file=str(wrong))
    ctx.bundle  # noqa: B018
    from securexport import api

    return ctx.api(api.decrypt, env, ctx.bundle, "force", ctx.out)


@case(
    "H",
    "empty-passphrase-file",
    4,
    "the passphrase file is empty",
    message="the passphrase file named by SECUREXPORT_PASSPHRASE_FILE is empty",
)
def _empty(ctx: Ctx) -> int:
    empty = ctx.root / "empty.txt"
    empty.write_text("")
    env = dataclasses.replace(ctx.world.recipient, passphrase_file=str(empty))
    return ctx.api(KeyStore(env, scrypt_log_n=TEST_LOG_N).age_identity, "force")


@case(
    "H",
    "huge-scrypt-work-factor",
    4,
    "a key file claiming scrypt 2^40: refused in under a second",
    message=r"force\.age-key\.age is damaged or not a securexport key file "
    r"\(the scrypt work factor 2\^40 is above the limit 2\^18\)",
)
def _scrypt(ctx: Ctx) -> int:
    path = _key_file(ctx)
    data = path.read_bytes()
    forged = re.sub(rb"(-> scrypt \S+) \d+\n", rb"\1 40\n", data, count=1)
    assert forged != data
    path.write_bytes(forged)
    started = time.monotonic()
    code = ctx.decrypt(ctx.bundle)
    assert time.monotonic() - started < 1.0
    return code


@case(
    "H",
    "key-file-world-readable",
    7,
    "the age key file is mode 0644",
    message=r"force\.age-key\.age is accessible by other users \(mode 644\)",
)
def _mode(ctx: Ctx) -> int:
    ctx.bundle  # noqa: B018
    _key_file(ctx).chmod(0o644)
    return ctx.decrypt(ctx.bundle)


@case(
    "H",
    "key-file-symlink",
    7,
    "the age key file replaced by a symlink",
    message=r"cannot read \S+/force\.age-key\.age: Too many levels of symbolic links",
)
def _symlink(ctx: Ctx) -> int:
    ctx.bundle  # noqa: B018
    path = _key_file(ctx)
    real = path.with_name("real.age")
    path.rename(real)
    path.symlink_to(real)
    return ctx.decrypt(ctx.bundle)


@case(
    "H",
    "key-file-truncated",
    4,
    "the age key file cut in half",
    message=r"force\.age-key\.age is damaged or not a securexport key file "
    r"\(malformed age header \(truncated\)\)",
)
def _truncated(ctx: Ctx) -> int:
    ctx.bundle  # noqa: B018
    path = _key_file(ctx)
    path.write_bytes(path.read_bytes()[:60])
    return ctx.decrypt(ctx.bundle)


@case(
    "H",
    "not-a-recipient",
    4,
    "the outsider tries to decrypt",
    message="identity 'stranger' is not a recipient of this bundle",
)
def _outsider(ctx: Ctx) -> int:
    return ctx.decrypt(ctx.bundle, "stranger", "outsider")


@case(
    "H",
    "unknown-identity",
    4,
    "`--as` names an identity that does not exist",
    via="cli",
    message="there is no identity named 'nobody'",
)
def _unknown(ctx: Ctx) -> int:
    return ctx.cli(["decrypt", str(ctx.bundle), "--as", "nobody", "-o", str(ctx.out)])


def _ssh_line(blob_key: bytes) -> str:
    def s(b: bytes) -> bytes:
        return len(b).to_bytes(4, "big") + b

    return "ssh-ed25519 " + base64.b64encode(s(b"ssh-ed25519") + s(blob_key)).decode()


_SMALL_ORDER = r"small-order Ed25519 public key \(forgeable\)"
_TRUST = [
    ("all-zero", "the all-zero Ed25519 key", _ssh_line(bytes(32)), _SMALL_ORDER),
    (
        "identity-point",
        "the identity point 01 00…00",
        _ssh_line(b"\x01" + bytes(31)),
        _SMALL_ORDER,
    ),
    (
        "short-key",
        "a 31-byte Ed25519 key",
        _ssh_line(bytes(range(1, 32))),
        "an Ed25519 public key is 32 bytes",
    ),
    ("garbage", "base64 garbage", "ssh-ed25519 AAAA!!!notbase64", "the key is not valid base64"),
    (
        "rsa",
        "an RSA key",
        "ssh-rsa AAAAB3NzaC1yc2EAAAADAQABAAABAQC7",
        "only ssh-ed25519 keys are accepted",
    ),
]


def _register_trust(slug: str, title: str, line: str, message: str) -> None:
    @case(
        "H",
        f"trust-add-{slug}",
        2,
        f"`trust add --role approver` with {title}",
        via="cli",
        message=f"error: not a usable approver key: {message}",
    )
    def run(ctx: Ctx) -> int:
        before = ctx.world.owner.home.allowed_signers.read_bytes()
        code = ctx.cli(["trust", "add", "evil", line, "--role", "approver"], role="owner")
        assert ctx.world.owner.home.allowed_signers.read_bytes() == before
        return code


for _args in _TRUST:
    _register_trust(*_args)


@pytest.mark.parametrize("case", params("H"))
def test_case(case: Case, ctx: Ctx, record_property: RecordProperty) -> None:
    record_property("adversarial_case", case.id)
    run_case(case, ctx)
