"""securexport.keys: identities, pseudonym keys and the ledger key, in key files or a keyring."""

from __future__ import annotations

import io
import json
import os
import shutil
import subprocess
import sys
import textwrap
from collections.abc import Callable
from pathlib import Path
from typing import Any

import keyring.backends.fail
import keyring.backends.null
import keyring.backends.SecretService
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from securexport._crypto import agefile
from securexport._crypto.sshkey import SshPublicKey
from securexport.environment import Environment, Home
from securexport.errors import FileError, KeyUnavailableError, UsageError
from securexport.home.keystore import KeyStore, key_check, secure_backend
from tests.conftest import TEST_SCRYPT_LOG_N
from tests.support.agetool import age_decrypt_with_identity, age_decrypt_with_passphrase

PASSPHRASE = b"correct horse battery staple"  # as written by the passphrase_file fixture
REPO = Path(__file__).resolve().parents[2]


def _store(env: Environment) -> KeyStore:
    return KeyStore(env, scrypt_log_n=TEST_SCRYPT_LOG_N)


def _env(home: Home, *, passphrase_file: Path | None, keystore: str = "file") -> Environment:
    return Environment(
        home=home,
        stderr=io.StringIO(),
        interactive=False,
        passphrase_file=str(passphrase_file) if passphrase_file else None,
        keystore=keystore,
    )


# --------------------------------------------------------------------------- file store


def test_file_store_round_trip(env: Environment) -> None:
    store = _store(env)
    assert store.backend_name() == "file"
    alice = store.create_identity("alice@example.org")
    assert alice.store == "file"
    assert alice.age_recipient.startswith("age1")
    keys = env.home.keys_dir
    assert sorted(p.name for p in keys.iterdir()) == [
        "alice@example.org.age-key.age",
        "alice@example.org.pub",
        "alice@example.org.ssh-key.age",
    ]
    for secret in ("alice@example.org.age-key.age", "alice@example.org.ssh-key.age"):
        assert (keys / secret).stat().st_mode & 0o777 == 0o600
        assert b"AGE-SECRET-KEY" not in (keys / secret).read_bytes()
        assert b"PRIVATE KEY" not in (keys / secret).read_bytes()
    assert keys.stat().st_mode & 0o777 == 0o700
    pub_lines = (keys / "alice@example.org.pub").read_text().splitlines()
    assert pub_lines == [alice.age_recipient, alice.signing_key.to_line("alice@example.org")]

    # A fresh store (a new command) unlocks with the passphrase and gets the same keys.
    again = _store(env)
    assert again.public_identity("alice@example.org") == alice
    secret = again.age_identity("alice@example.org")
    assert agefile.recipient_of(secret) == alice.age_recipient
    signer = again.signing_key("alice@example.org")
    assert SshPublicKey.from_cryptography(signer.public_key()) == alice.signing_key
    signer.public_key().verify(signer.sign(b"m"), b"m")

    bob = again.create_identity("bob")
    assert [p.name for p in again.list_identities()] == ["alice@example.org", "bob"]
    again.delete_identity("alice@example.org")
    assert [p.name for p in _store(env).list_identities()] == ["bob"]
    assert sorted(p.name for p in keys.iterdir()) == [
        "bob.age-key.age",
        "bob.pub",
        "bob.ssh-key.age",
    ]
    with pytest.raises(KeyUnavailableError) as missing:
        again.public_identity("alice@example.org")
    assert missing.value.hint == "securexport keys new alice@example.org"
    assert _store(env).age_identity("bob") == again.age_identity("bob")
    assert bob.store == "file"


def test_names_are_checked(env: Environment) -> None:
    store = _store(env)
    store.create_identity("x")
    with pytest.raises(UsageError, match="exists"):
        store.create_identity("x")
    for bad in ("", ".hidden", "-x", "a/b", "../x", "a b", "x" * 65, "é", "ledger"):
        with pytest.raises(UsageError):
            store.create_identity(bad)
    for bad_id in ("", "a@b", "../k", "k" * 65):
        with pytest.raises(UsageError):
            store.create_pseudonym_key(bad_id)


def test_each_secret_unlocked_once_and_one_passphrase(env: Environment, tmp_path: Path) -> None:
    _store(env).create_identity("alice")
    prompts: list[str] = []

    def prompt(text: str) -> str:
        prompts.append(text)
        return PASSPHRASE.decode()

    tty_env = Environment(
        home=env.home, stdin_isatty=True, interactive=True, prompt=prompt, keystore="file"
    )
    store = _store(tty_env)
    first = store.age_identity("alice")
    store.signing_key("alice")
    assert store.age_identity("alice") == first
    store.signing_key("alice")
    assert len(prompts) == 1  # one prompt per command, for both key files
    # The cached secret is really used: removing the file after unlocking changes nothing.
    (env.home.keys_dir / "alice.age-key.age").unlink()
    assert store.age_identity("alice") == first


def test_wrong_passphrase(env: Environment, tmp_path: Path) -> None:
    _store(env).create_identity("alice")
    wrong = tmp_path / "wrong.txt"
    wrong.write_bytes(b"not the passphrase\n")
    with pytest.raises(KeyUnavailableError, match="wrong passphrase or damaged key file"):
        _store(_env(env.home, passphrase_file=wrong)).signing_key("alice")


def test_no_passphrase_and_no_tty(env: Environment, home: Home) -> None:
    no_input = _env(home, passphrase_file=None)
    with pytest.raises(KeyUnavailableError, match="no terminal"):
        _store(no_input).create_identity("alice")
    assert list(home.keys_dir.iterdir()) == []  # nothing half-made is left behind
    _store(env).create_identity("alice")
    with pytest.raises(KeyUnavailableError, match="no terminal"):
        _store(no_input).age_identity("alice")


@pytest.mark.parametrize("mode", [0o640, 0o604, 0o660])
def test_group_or_world_readable_key_file_refused(env: Environment, mode: int) -> None:
    _store(env).create_identity("alice")
    path = env.home.keys_dir / "alice.ssh-key.age"
    path.chmod(mode)
    with pytest.raises(FileError, match="accessible by other users"):
        _store(env).signing_key("alice")
    path.chmod(0o600)
    _store(env).signing_key("alice")


def test_damaged_or_mismatched_key_files(env: Environment) -> None:
    store = _store(env)
    store.create_identity("alice")
    store.create_identity("bob")
    keys = env.home.keys_dir
    # Swap alice's age key for bob's: it no longer matches alice.pub.
    shutil.copy(keys / "bob.age-key.age", keys / "alice.age-key.age")
    with pytest.raises(KeyUnavailableError, match=r"does not match alice\.pub"):
        _store(env).age_identity("alice")
    blob = bytearray((keys / "bob.ssh-key.age").read_bytes())
    blob[-5] ^= 1
    (keys / "bob.ssh-key.age").write_bytes(bytes(blob))
    with pytest.raises(KeyUnavailableError, match="damaged"):
        _store(env).signing_key("bob")


def test_key_file_with_a_hostile_work_factor_is_refused_fast(env: Environment) -> None:
    _store(env).create_identity("alice")
    path = env.home.keys_dir / "alice.age-key.age"
    path.write_bytes(path.read_bytes().replace(b" 10\n", b" 30\n", 1))
    with pytest.raises(KeyUnavailableError, match="above the limit"):
        _store(env).age_identity("alice")


@pytest.mark.tools
def test_age_and_ssh_keygen_open_our_key_files(env: Environment, tmp_path: Path) -> None:
    alice = _store(env).create_identity("alice")
    keys = env.home.keys_dir

    identity_file = tmp_path / "alice.key"
    code, transcript = age_decrypt_with_passphrase(
        keys / "alice.age-key.age", PASSPHRASE, identity_file
    )
    assert code == 0, transcript
    identity_file.chmod(0o600)
    message = agefile.encrypt(b"for alice", [alice.age_recipient])
    (tmp_path / "m.age").write_bytes(message)
    assert age_decrypt_with_identity(tmp_path / "m.age", identity_file) == b"for alice"

    ssh_key = tmp_path / "alice_ed25519"
    code, transcript = age_decrypt_with_passphrase(keys / "alice.ssh-key.age", PASSPHRASE, ssh_key)
    assert code == 0, transcript
    ssh_key.chmod(0o600)
    data = tmp_path / "data.txt"
    data.write_bytes(b"signed by alice\n")
    subprocess.run(
        ["ssh-keygen", "-Y", "sign", "-f", str(ssh_key), "-n", "securexport-test", str(data)],
        check=True,
        capture_output=True,
    )
    signers = tmp_path / "allowed_signers"
    signers.write_text(f"alice {alice.signing_key.to_line()}\n")
    with data.open("rb") as fh:
        verified = subprocess.run(
            [
                *("ssh-keygen", "-Y", "verify", "-f", str(signers), "-I", "alice"),
                *("-n", "securexport-test", "-s", f"{data}.sig"),
            ],
            stdin=fh,
            capture_output=True,
        )
    assert verified.returncode == 0, verified.stderr


# --------------------------------------------------------------------------- pseudonym keys


def test_pseudonym_key_create_and_read(env: Environment) -> None:
    store = _store(env)
    assert not store.has_pseudonym_key("wmp-iom-2026")
    with pytest.raises(KeyUnavailableError, match="no pseudonym key"):
        store.pseudonym_key("wmp-iom-2026")
    check = store.create_pseudonym_key("wmp-iom-2026")
    path = env.home.keys_dir / "pseudonym" / "wmp-iom-2026.key.age"
    assert path.stat().st_mode & 0o777 == 0o600
    assert path.parent.stat().st_mode & 0o777 == 0o700
    key = _store(env).pseudonym_key("wmp-iom-2026")
    assert len(key) == 32
    assert check == key_check(key)
    assert len(check) == 16
    assert int(check, 16) >= 0
    assert _store(env).has_pseudonym_key("wmp-iom-2026")
    with pytest.raises(UsageError, match="exists"):
        store.create_pseudonym_key("wmp-iom-2026")


def test_key_check_definition() -> None:
    import hashlib
    import hmac

    key = bytes(range(32))
    expected = hmac.new(key, b"securexport/key-check/v1", hashlib.sha256).hexdigest()[:16]
    assert key_check(key) == expected


def test_pseudonym_key_export_import_between_homes(
    env: Environment, tmp_path: Path, passphrase_file: Path
) -> None:
    owner = _store(env)
    check = owner.create_pseudonym_key("wmp-iom-2026")
    exporter_home = Home(tmp_path / "exporter").ensure()
    exporter_env = _env(exporter_home, passphrase_file=passphrase_file)
    exporter = _store(exporter_env)
    exporter.create_identity("other")
    analyst = exporter.create_identity("pa-analyst")

    sealed = owner.export_pseudonym_key("wmp-iom-2026", analyst.age_recipient)
    assert agefile.x25519_stanza_count(sealed) == 1
    assert b"wmp-iom" not in sealed

    fresh = _store(exporter_env)
    assert fresh.import_pseudonym_key(sealed) == ("wmp-iom-2026", check)
    assert _store(exporter_env).pseudonym_key("wmp-iom-2026") == owner.pseudonym_key("wmp-iom-2026")
    # Importing the same key again is harmless; a different key under the same id is refused.
    assert _store(exporter_env).import_pseudonym_key(sealed) == ("wmp-iom-2026", check)
    owner2 = _store(_env(Home(tmp_path / "owner2").ensure(), passphrase_file=passphrase_file))
    owner2.create_pseudonym_key("wmp-iom-2026")
    with pytest.raises(UsageError, match="different"):
        _store(exporter_env).import_pseudonym_key(
            owner2.export_pseudonym_key("wmp-iom-2026", analyst.age_recipient)
        )
    # A key sealed to someone else is not ours.
    stranger = agefile.generate_identity()[1]
    with pytest.raises(KeyUnavailableError, match="none of your keys"):
        _store(exporter_env).import_pseudonym_key(
            owner.export_pseudonym_key("wmp-iom-2026", stranger)
        )
    with pytest.raises(UsageError):
        owner.export_pseudonym_key("wmp-iom-2026", "age1notakey")


def test_import_checks_key_check(env: Environment) -> None:
    store = _store(env)
    me = store.create_identity("me")
    doc = json.dumps(
        {
            "key": "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=",
            "key_check": "0000000000000000",
            "key_id": "k",
            "schema": "securexport.pseudonym-key/1",
        },
        separators=(",", ":"),
        sort_keys=True,
    ).encode()
    with pytest.raises(KeyUnavailableError, match="key_check"):
        store.import_pseudonym_key(agefile.encrypt(doc, [me.age_recipient]))
    assert not store.has_pseudonym_key("k")


def test_ledger_key(env: Environment) -> None:
    store = _store(env)
    with pytest.raises(KeyUnavailableError):
        store.ledger_signing_key(create=False)
    key = store.ledger_signing_key()
    assert isinstance(key, Ed25519PrivateKey)
    assert (env.home.keys_dir / "ledger.ssh-key.age").stat().st_mode & 0o777 == 0o600
    again = _store(env).ledger_signing_key(create=False)
    assert again.public_key() == key.public_key()


def _not_ed25519_pem() -> bytes:
    return ec.generate_private_key(ec.SECP256R1()).private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.OpenSSH,
        serialization.NoEncryption(),
    )


@pytest.mark.parametrize(
    ("secret", "message"),
    [
        (lambda: b"not a key\n", "^the ledger signing key is damaged$"),
        (_not_ed25519_pem, "^the ledger signing key is not an Ed25519 key$"),
    ],
)
def test_a_stored_ssh_key_that_does_not_load(
    env: Environment, secret: Callable[[], bytes], message: str
) -> None:
    """The key file opens (right passphrase), but what is inside is no Ed25519 OpenSSH key."""
    _store(env).ledger_signing_key()
    path = env.home.keys_dir / "ledger.ssh-key.age"
    path.write_bytes(agefile.passphrase_encrypt(secret(), PASSPHRASE, log_n=TEST_SCRYPT_LOG_N))
    with pytest.raises(KeyUnavailableError, match=message):
        _store(env).ledger_signing_key(create=False)


# --------------------------------------------------------------------------- keyring choice


def _new(cls: Any) -> Any:
    """An instance of a keyring backend class (keyring's constructors are untyped)."""
    return cls()


def _insecure_backends() -> list[object]:
    backends: list[object] = [
        _new(keyring.backends.fail.Keyring),
        _new(keyring.backends.null.Keyring),
    ]
    try:
        from keyrings.alt.file import PlaintextKeyring  # type: ignore[import-not-found]
    except ImportError:
        pass
    else:
        backends.append(_new(PlaintextKeyring))
    return backends


def test_insecure_keyring_backends_refused(
    home: Home, passphrase_file: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    class LookAlike(keyring.backends.SecretService.Keyring):  # a subclass from elsewhere
        pass

    for backend in [*_insecure_backends(), _new(LookAlike), None]:
        assert secure_backend(backend) is None
        forced = _env(home, passphrase_file=passphrase_file, keystore="keyring")
        with pytest.raises(KeyUnavailableError, match="no secure OS keyring"):
            KeyStore(forced, keyring_backend=backend).create_identity("alice")
    real = _new(keyring.backends.SecretService.Keyring)
    assert secure_backend(real) is real
    # keyring's chainer is unwrapped to the first real backend it holds, never used as a whole.
    from keyring.backends.chainer import ChainerBackend

    insecure = _insecure_backends()
    monkeypatch.setattr(ChainerBackend, "backends", property(lambda self: insecure))
    assert secure_backend(_new(ChainerBackend)) is None
    monkeypatch.setattr(ChainerBackend, "backends", property(lambda self: [*insecure, real]))
    assert secure_backend(_new(ChainerBackend)) is real


def test_auto_without_a_secure_keyring_uses_files_and_says_so_once(
    home: Home, passphrase_file: Path
) -> None:
    auto = _env(home, passphrase_file=passphrase_file, keystore="auto")
    for backend in _insecure_backends():
        store = KeyStore(auto, scrypt_log_n=TEST_SCRYPT_LOG_N, keyring_backend=backend)
        assert store.backend_name() == "file"
    a = KeyStore(
        auto, scrypt_log_n=TEST_SCRYPT_LOG_N, keyring_backend=_new(keyring.backends.null.Keyring)
    )
    assert a.create_identity("alice").store == "file"
    a.create_pseudonym_key("k1")
    stderr = auto.stderr.getvalue()  # type: ignore[attr-defined]
    assert stderr.count("no secure OS keyring was found") == 1
    assert stderr.startswith("securexport: notice: ")
    assert (home.keys_dir / "alice.age-key.age").exists()


# --------------------------------------------------------------------------- a real keyring

_KEYRING_CHILD = textwrap.dedent(
    """
    import io, json, sys
    from pathlib import Path
    import keyring
    from securexport.environment import Environment, Home
    from securexport.home.keystore import KeyStore
    from securexport._crypto import agefile

    home = Home(Path(sys.argv[1])).ensure()
    env = Environment(home=home, stderr=io.StringIO(), interactive=False, keystore="keyring")
    store = KeyStore(env)  # no passphrase anywhere: the keyring must hold everything
    out = {"backend": store.backend_name(), "service": store.service}
    alice = store.create_identity("alice")
    out["store"] = alice.store
    out["files"] = sorted(p.name for p in home.keys_dir.rglob("*"))
    check = store.create_pseudonym_key("wmp-iom-2026")
    ledger = store.ledger_signing_key()

    fresh = KeyStore(env)  # a new command: reads back from the keyring
    secret = fresh.age_identity("alice")
    out["age_ok"] = agefile.recipient_of(secret) == alice.age_recipient
    sig = fresh.signing_key("alice").sign(b"m")
    alice.signing_key.cryptography_key().verify(sig, b"m")
    out["pseudonym_ok"] = fresh.pseudonym_key("wmp-iom-2026") == store.pseudonym_key("wmp-iom-2026")
    out["check"] = check
    out["ledger_ok"] = fresh.ledger_signing_key(create=False).public_key() == ledger.public_key()
    raw = keyring.get_keyring().get_password(store.service, "identity/alice/age")
    out["raw_has_secret"] = secret in raw

    sealed = fresh.export_pseudonym_key("wmp-iom-2026", alice.age_recipient)
    other = Home(Path(sys.argv[1] + "-other")).ensure()
    other_env = Environment(home=other, stderr=io.StringIO(), interactive=False, keystore="keyring")
    other_store = KeyStore(other_env)
    out["other_service_differs"] = other_store.service != store.service
    other_store.create_identity("bob")

    fresh.delete_identity("alice")
    out["after_delete"] = [
        keyring.get_keyring().get_password(store.service, u)
        for u in ("identity/alice/age", "identity/alice/ssh")
    ]
    out["listed"] = [p.name for p in KeyStore(env).list_identities()]
    print(json.dumps(out))
    """
)


@pytest.mark.keyring
def test_real_secret_service_keyring(tmp_path: Path) -> None:
    """A real gnome-keyring SecretService on a private D-Bus session.

    As root in CI, gnome-keyring-daemon works when it gets a private ``HOME``,
    ``XDG_RUNTIME_DIR`` (0700) and ``XDG_DATA_HOME`` in a temp dir; the login keyring is created
    and unlocked by piping a password into ``--unlock``.  (dbus-daemon's warning that it cannot
    raise its fd limit is harmless.)
    """
    for tool in ("dbus-run-session", "gnome-keyring-daemon"):
        if shutil.which(tool) is None:
            pytest.skip(f"{tool} is not installed")
    child = tmp_path / "child.py"
    child.write_text(_KEYRING_CHILD)
    private = tmp_path / "session"
    runtime = private / "run"
    runtime.mkdir(parents=True, mode=0o700)
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "HOME": str(private),
        "XDG_RUNTIME_DIR": str(runtime),
        "XDG_DATA_HOME": str(private / "data"),
        "XDG_CONFIG_HOME": str(private / "config"),
        "PYTHONPATH": str(REPO),
    }
    script = (
        "echo -n test-keyring-pw | gnome-keyring-daemon --unlock --components=secrets >/dev/null"
        ' && exec "$0" "$1" "$2"'
    )
    result = subprocess.run(
        [
            *("dbus-run-session", "--", "bash", "-c", script),
            *(sys.executable, str(child), str(tmp_path / "home")),
        ],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    out = json.loads(result.stdout.strip().splitlines()[-1])
    assert out["backend"] == "keyring:SecretService Keyring"
    assert out["store"] == "keyring"
    assert out["files"] == ["alice.pub"]  # no secret touched the disk
    assert out["age_ok"]
    assert out["pseudonym_ok"]
    assert out["ledger_ok"]
    assert out["raw_has_secret"]
    assert len(out["check"]) == 16
    assert out["other_service_differs"]
    assert out["after_delete"] == [None, None]
    assert out["listed"] == []


# --------------------------------------------------------------------------- background unlock


def test_background_unlock_gives_the_same_keys(env: Environment) -> None:
    store = _store(env)
    store.create_identity("alice")
    expected = store.signing_key("alice").public_key().public_bytes_raw()
    fresh = _store(env)
    with fresh.unlock_in_background(lambda: fresh.signing_key("alice")) as job:
        got = job.result()
    assert got.public_key().public_bytes_raw() == expected


def test_background_unlock_never_prompts_from_its_thread(tmp_path: Path) -> None:
    """A key under another passphrase: the thread does not prompt; result() asks on the
    caller's thread, once, and the unlock succeeds there."""
    import threading

    prompts: list[str] = []
    answers = iter(
        ["first passphrase", "first passphrase", "second passphrase", "second passphrase"]
    )

    def prompt(text: str) -> str:
        prompts.append(f"{threading.current_thread().name}: {text}")
        return next(answers)

    def env_with(home: Home) -> Environment:
        return Environment(
            home=home,
            stderr=io.StringIO(),
            interactive=True,
            stdin_isatty=True,
            prompt=prompt,
            keystore="file",
        )

    home = Home(tmp_path / "home").ensure()
    _store(env_with(home)).create_identity("alice")  # first passphrase (asked twice)
    _store(env_with(home)).create_pseudonym_key("k1")  # second one (asked twice)
    prompts.clear()
    answers = iter(["second passphrase", "first passphrase"])
    store = _store(env_with(home))
    store.pseudonym_key("k1")  # main thread: "second passphrase" is now the known passphrase
    job = store.unlock_in_background(lambda: store.signing_key("alice"))
    key = job.result()
    assert isinstance(key, Ed25519PrivateKey)
    main = threading.main_thread().name
    assert [p.split(":")[0] for p in prompts] == [main, main]


def test_background_unlock_reraises_a_wrong_passphrase(env: Environment, tmp_path: Path) -> None:
    _store(env).create_identity("alice")
    wrong = tmp_path / "wrong"
    wrong.write_bytes(b"not the passphrase\n")
    wrong.chmod(0o600)
    other = _store(_env(env.home, passphrase_file=wrong))
    with pytest.raises(KeyUnavailableError):
        other.unlock_in_background(lambda: other.signing_key("alice")).result()


def test_key_files_made_by_the_product_cost_scrypt_2_to_18(
    env: Environment, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The documented, fixed cost: what `keys new` writes (through api) with the Environment's
    default, as the installed CLI builds it."""
    from securexport import api

    file_env = Environment(
        home=env.home, passphrase_file=env.passphrase_file, keystore="file", stderr=io.StringIO()
    )
    api.create_identity(file_env, "alice")
    for path in (env.home.path / "keys").glob("alice.*.age"):
        assert agefile.scrypt_log_n(path.read_bytes()) == 18, path
    assert len(list((env.home.path / "keys").glob("alice.*.age"))) == 2


def test_config_cannot_lower_the_key_file_cost(env: Environment) -> None:
    env.home.config_path.write_text("[keys]\nscrypt_log_n = 10\n")
    with pytest.raises(UsageError, match=r"\[keys\] scrypt_log_n is not a setting") as info:
        from securexport.home.keystore import open_keystore

        open_keystore(env)
    assert info.value.exit_code == 2
