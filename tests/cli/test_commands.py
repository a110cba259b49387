"""The key, trust, pseudonym-key and approval commands through the command line (issue 2).

Every command runs through click's CliRunner exactly as a user types it (``--home``, the
file key store with a low scrypt cost, a passphrase file).  Each test checks what the command
did to the state (files, trust store, key store), not only its exit code, and parses the
``--json`` document of every command that reports something.  The guard of
``pseudonym-key export`` (DESIGN.md §5: only to an exporter named in a signed approval that
uses the key) is tested on both refusals and on the success path, where the exporter imports
the key and then runs an export with it.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import re
import struct
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pyrage
import pytest
from click.testing import Result

from securexport import api
from securexport.cli import cli
from securexport.environment import Environment, Home
from securexport.home.keystore import KeyStore
from tests.support.cli import SCRYPT_VAR, Runner, assert_one_line_error, error_lines
from tests.support.world import TEST_LOG_N, World

SIG_ARMOR = b"-----BEGIN SSH SIGNATURE-----\n"


# ------------------------------------------------------------------------- helpers


def sx(
    home: Path | None, *args: str, passphrase: Path | None = None, stdin: str | None = None
) -> Result:
    """``securexport [--home HOME] ARGS…`` with the file key store, as tests/cli/test_contract.py runs it."""
    env = {
        "SECUREXPORT_KEYSTORE": "file",
        "SECUREXPORT_PASSPHRASE_FILE": str(passphrase) if passphrase else "",
        "SECUREXPORT_HOME": "",
    }
    argv = (["--home", str(home)] if home else []) + list(args)
    return Runner().invoke(cli, argv, env=env, input=stdin, catch_exceptions=False)


def ok_json(result: Result) -> Any:
    """The one JSON document of a successful ``--json`` run (and nothing else on stdout)."""
    assert result.exit_code == 0, (result.stdout, result.stderr)
    assert "Traceback" not in result.stderr
    return json.loads(result.stdout)


def ssh_blob(line: str) -> bytes:
    """The key blob of an ``ssh-ed25519 AAAA… [comment]`` line, checked by hand (RFC 4253)."""
    kind, b64, *_ = line.split()
    assert kind == "ssh-ed25519"
    blob = base64.b64decode(b64, validate=True)
    (n,) = struct.unpack(">I", blob[:4])
    assert blob[4 : 4 + n] == b"ssh-ed25519"
    (m,) = struct.unpack(">I", blob[4 + n : 8 + n])
    assert m == 32 and len(blob) == 8 + n + m
    return blob


def key_check_of(key: bytes) -> str:
    """DESIGN.md §5: the first 16 hex digits of HMAC-SHA-256(key, securexport/key-check/v1)."""
    return hmac.new(key, b"securexport/key-check/v1", hashlib.sha256).hexdigest()[:16]


@pytest.fixture
def cli_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A fresh home; new key files use the tests' low scrypt cost (a test-only hook)."""
    home = tmp_path / "cli-home"
    home.mkdir(mode=0o700)
    monkeypatch.setenv(SCRYPT_VAR, str(TEST_LOG_N))
    (home / "config.toml").write_text("# nothing to set\n")
    return home


def new_identity(home: Path, name: str, passphrase: Path) -> dict[str, str]:
    doc = ok_json(sx(home, "--json", "keys", "new", name, passphrase=passphrase))
    assert isinstance(doc, dict)
    return doc


# ------------------------------------------------------------------------- keys


def test_keys_list(cli_home: Path, passphrase_file: Path) -> None:
    assert ok_json(sx(cli_home, "--json", "keys", "list")) == []
    assert sx(cli_home, "keys", "list").stdout.strip() == ""
    bob = new_identity(cli_home, "bob", passphrase_file)
    alice = new_identity(cli_home, "alice", passphrase_file)

    listed = ok_json(sx(cli_home, "--json", "keys", "list"))
    assert isinstance(listed, list)
    assert [d["name"] for d in listed] == ["alice", "bob"]  # sorted by name
    for doc, made in zip(listed, (alice, bob), strict=True):
        shown = ok_json(sx(cli_home, "--json", "keys", "show", doc["name"]))
        assert doc == shown == made
        assert doc["age_recipient"].startswith("age1")
        assert doc["fingerprint"].startswith("SHA256:")
        assert doc["store"] == "file"
        ssh_blob(doc["signing_key"])
    assert listed[0]["age_recipient"] != listed[1]["age_recipient"]
    assert listed[0]["signing_key"] != listed[1]["signing_key"]

    human = sx(cli_home, "keys", "list")
    assert human.exit_code == 0
    lines = human.stdout.splitlines()
    assert [line.split("\t")[0] for line in lines] == ["alice", "bob"]
    assert lines[0].split("\t")[1:] == [alice["fingerprint"], alice["age_recipient"], "file"]
    # Listing needs no passphrase and shows no secret.
    assert "AGE-SECRET-KEY" not in human.stdout + human.stderr


def test_keys_export_ssh_and_age(cli_home: Path, passphrase_file: Path, tmp_path: Path) -> None:
    alice = new_identity(cli_home, "alice", passphrase_file)

    ssh = sx(cli_home, "keys", "export", "alice")
    assert ssh.exit_code == 0, ssh.stderr
    (line,) = ssh.stdout.splitlines()
    assert line.split()[2:] == ["alice"]  # the comment names the identity
    assert ssh_blob(line) == ssh_blob(alice["signing_key"])
    pub = (cli_home / "keys" / "alice.pub").read_text().splitlines()
    assert ssh_blob(pub[1]) == ssh_blob(line)

    age = sx(cli_home, "keys", "export", "alice", "--age")
    assert age.exit_code == 0, age.stderr
    assert age.stdout == alice["age_recipient"] + "\n"
    # The exported recipient really is this identity's: what is encrypted to it, it can open.
    recipient = pyrage.x25519.Recipient.from_str(age.stdout.strip())
    env = Environment(
        home=Home(cli_home),
        stdin_isatty=False,
        interactive=False,
        passphrase_file=str(passphrase_file),
        keystore="file",
    )
    identity = pyrage.x25519.Identity.from_str(
        KeyStore(env, scrypt_log_n=TEST_LOG_N).age_identity("alice")
    )
    assert pyrage.decrypt(pyrage.encrypt(b"ping", [recipient]), [identity]) == b"ping"

    # --json gives the identity's public document, the same with or without --age.
    for extra in ([], ["--age"]):
        doc = ok_json(sx(cli_home, "--json", "keys", "export", "alice", *extra))
        assert doc == alice
    for result in (ssh, age):
        assert "AGE-SECRET-KEY" not in result.stdout + result.stderr
        assert "PRIVATE KEY" not in result.stdout + result.stderr

    # The exported line is what `trust add` takes from a file; an approval signed by alice is
    # then trusted (so the exported key is alice's signing key, not just any key).
    pubfile = tmp_path / "alice.pub"
    pubfile.write_text(ssh.stdout)
    ok_json(sx(cli_home, "--json", "trust", "add", "alice", str(pubfile), "--role", "approver"))
    approval = tmp_path / "a.toml"
    approval.write_text(
        sx(cli_home, "approval", "init").stdout.replace(
            "2026-03-31T23:59:59Z", "2099-12-31T23:59:59Z"
        )
    )
    signed = sx(
        cli_home, "approval", "sign", str(approval), "--as", "alice", passphrase=passphrase_file
    )
    assert signed.exit_code == 0, signed.stderr
    checked = ok_json(sx(cli_home, "--json", "approval", "check", str(approval)))
    assert checked["signer"] == "alice" and checked["problems"] == []

    assert_one_line_error(sx(cli_home, "keys", "export", "nobody"), 4)
    assert_one_line_error(sx(cli_home, "--json", "keys", "export", "nobody", "--age"), 4)


def test_keys_delete(cli_home: Path, passphrase_file: Path, tmp_path: Path) -> None:
    new_identity(cli_home, "alice", passphrase_file)
    bob = new_identity(cli_home, "bob", passphrase_file)
    alice_files = sorted(p.name for p in (cli_home / "keys").glob("alice.*"))
    assert "alice.pub" in alice_files and len(alice_files) >= 3  # public + two private files

    # Prompts disabled and no --yes: a usage error, nothing deleted.
    assert_one_line_error(sx(cli_home, "--no-input", "keys", "delete", "alice"), 2)
    # No terminal to ask (stdin is a pipe): a usage error naming --yes, not "interrupted"
    # (130); declining on a terminal is tests/cli/test_habits.py's.
    declined = sx(cli_home, "keys", "delete", "alice", stdin="n\n")
    assert "needs a terminal, or pass --yes" in assert_one_line_error(declined, 2)
    assert sorted(p.name for p in (cli_home / "keys").glob("alice.*")) == alice_files

    deleted = ok_json(sx(cli_home, "--json", "keys", "delete", "alice", "--yes"))
    assert deleted == {"deleted": "alice"}
    assert list((cli_home / "keys").glob("alice*")) == []
    assert_one_line_error(sx(cli_home, "--json", "keys", "show", "alice"), 4)
    assert [d["name"] for d in ok_json(sx(cli_home, "--json", "keys", "list"))] == ["bob"]
    # The other identity is untouched and still unlocks.
    assert ok_json(sx(cli_home, "--json", "keys", "show", "bob")) == bob
    approval = tmp_path / "a.toml"
    approval.write_text(
        sx(cli_home, "approval", "init").stdout.replace(
            "2026-03-31T23:59:59Z", "2099-12-31T23:59:59Z"
        )
    )
    assert (
        sx(
            cli_home, "approval", "sign", str(approval), "--as", "bob", passphrase=passphrase_file
        ).exit_code
        == 0
    )
    # The deleted one cannot sign any more.
    line = assert_one_line_error(
        sx(
            cli_home, "approval", "sign", str(approval), "--as", "alice", passphrase=passphrase_file
        ),
        4,
    )
    assert "alice" in line

    # Deleting it again, or a name that never existed: a missing key (exit 4), nothing touched.
    before = sorted(p.name for p in (cli_home / "keys").iterdir())
    assert "alice" in assert_one_line_error(sx(cli_home, "keys", "delete", "alice", "--yes"), 4)
    assert_one_line_error(sx(cli_home, "--json", "keys", "delete", "nobody", "--yes"), 4)
    assert sorted(p.name for p in (cli_home / "keys").iterdir()) == before
    # A name that cannot be an identity is a usage error, not a path.
    assert_one_line_error(sx(cli_home, "keys", "delete", "../config.toml", "--yes"), 2)
    assert (cli_home / "config.toml").exists()

    # With --yes it deletes (a confirmation typed on a terminal: tests/cli/test_habits.py).
    confirmed = sx(cli_home, "keys", "delete", "bob", "--yes")
    assert confirmed.exit_code == 0, confirmed.stderr
    assert "deleted identity bob" in confirmed.stdout
    assert list((cli_home / "keys").glob("bob*")) == []


# ------------------------------------------------------------------------- trust


def test_trust_add_list_remove(
    cli_home: Path, passphrase_file: Path, tmp_path: Path, world: World
) -> None:
    owner = world.ids["owner"].signing_key.to_line("owner")
    other = world.ids["outsider"].signing_key.to_line("stranger")
    assert ok_json(sx(cli_home, "--json", "trust", "list")) == []

    # From a line, and from a file holding one.
    added = ok_json(sx(cli_home, "--json", "trust", "add", "owner", owner, "--role", "approver"))
    assert isinstance(added, dict)
    assert added["name"] == "owner"
    assert added["role"] == "approver"
    assert ssh_blob(added["key"]) == ssh_blob(owner)
    assert added["fingerprint"] == world.ids["owner"].signing_key.fingerprint()
    keyfile = tmp_path / "stranger.pub"
    keyfile.write_text(other + "\n")
    ok_json(sx(cli_home, "--json", "trust", "add", "deputy", str(keyfile), "--role", "approver"))
    ledger = ok_json(
        sx(cli_home, "--json", "trust", "add", "exp-log", world.ledger_vkey, "--role", "ledger")
    )
    assert isinstance(ledger, dict)
    assert set(ledger) == {"name", "role", "key", "fingerprint"}
    assert (ledger["name"], ledger["role"], ledger["key"]) == (
        "exp-log",
        "ledger",
        world.ledger_vkey,
    )
    assert ledger["fingerprint"] and ledger["fingerprint"] != added["fingerprint"]

    listed = ok_json(sx(cli_home, "--json", "trust", "list"))
    assert isinstance(listed, list)
    assert [(t["name"], t["role"]) for t in listed] == [
        ("owner", "approver"),
        ("deputy", "approver"),
        ("exp-log", "ledger"),
    ]
    assert listed[0] == added
    assert ssh_blob(listed[1]["key"]) == ssh_blob(other)
    human = sx(cli_home, "trust", "list").stdout.splitlines()
    assert human[0] == f"owner\tapprover\t{added['fingerprint']}"
    assert [h.split("\t")[0] for h in human] == ["owner", "deputy", "exp-log"]
    # The store is the OpenSSH allowed_signers file (ledger keys are kept apart).
    signers = (cli_home / "allowed_signers").read_text()
    assert owner.split()[1] in signers and other.split()[1] in signers
    assert world.ledger_vkey not in signers

    # An approval signed by the owner is trusted here; once removed, it is not.
    approval = world.write_approval()
    ok_json(sx(cli_home, "--json", "approval", "check", str(approval)))
    removed = ok_json(sx(cli_home, "--json", "trust", "remove", "owner"))
    assert removed == {"removed": "owner", "role": "approver"}
    assert [t["name"] for t in ok_json(sx(cli_home, "--json", "trust", "list"))] == [
        "deputy",
        "exp-log",
    ]
    assert owner.split()[1] not in (cli_home / "allowed_signers").read_text()
    refused = assert_one_line_error(sx(cli_home, "--json", "approval", "check", str(approval)), 3)
    assert "not a trusted approver" in refused

    assert ok_json(sx(cli_home, "--json", "trust", "remove", "exp-log")) == {
        "removed": "exp-log",
        "role": "ledger",
    }
    # Removing what is not trusted fails cleanly (usage, exit 2) and changes nothing.
    files = {p.name: p.read_bytes() for p in cli_home.iterdir() if p.is_file()}
    for name in ("owner", "nobody", "exp-log"):
        assert name in assert_one_line_error(sx(cli_home, "--json", "trust", "remove", name), 2)
    assert {p.name: p.read_bytes() for p in cli_home.iterdir() if p.is_file()} == files
    assert [t["name"] for t in ok_json(sx(cli_home, "--json", "trust", "list"))] == ["deputy"]

    # Keys that must not enter the trust store: the all-zero Ed25519 key, a ledger key as an
    # approver, garbage.
    zero = (
        "ssh-ed25519 "
        + base64.b64encode(
            struct.pack(">I", 11) + b"ssh-ed25519" + struct.pack(">I", 32) + bytes(32)
        ).decode()
    )
    for name, key, role in (
        ("zero", zero, "approver"),
        ("log", world.ledger_vkey, "approver"),
        ("junk", "ssh-ed25519 AAAA", "approver"),
        ("junk", "not-a-key", "ledger"),
    ):
        assert_one_line_error(sx(cli_home, "trust", "add", name, key, "--role", role), 2)
    assert [t["name"] for t in ok_json(sx(cli_home, "--json", "trust", "list"))] == ["deputy"]


# ------------------------------------------------------------------------- approvals

TEMPLATE_RECIPIENT = re.compile(r'^(age  = )"age1[0-9a-z]+"', re.M)
TEMPLATE_EXPORTER = re.compile(r'^(ssh  = )"ssh-ed25519 [A-Za-z0-9+/=]+"', re.M)


def fill_template(template: str, world: World, now: datetime) -> str:
    """Edit the REPLACE lines of `approval init`'s template as a data owner would."""
    stamp = "%Y-%m-%dT%H:%M:%SZ"
    text = template
    for old, new in (
        ('"APR-2026-0001"', '"APR-2026-0100"'),
        ("not_before  = 2026-01-01T00:00:00Z", f"not_before  = {now - timedelta(days=1):{stamp}}"),
        ("expires     = 2026-03-31T23:59:59Z", f"expires     = {now + timedelta(days=30):{stamp}}"),
        ('"replace-me-key-id"', '"test-key"'),
        ('"0000000000000000"', f'"{world.key_check}"'),
        ('"replace-me-recipient"', '"force"'),
        ('"replace-me-exporter"', '"analyst"'),
    ):
        assert text.count(old) == 1, old
        text = text.replace(old, new)
    text, n = TEMPLATE_RECIPIENT.subn(rf'\1"{world.ids["recipient"].age_recipient}"', text)
    assert n == 1
    exporter = world.ids["exporter"].signing_key.to_line()
    text, n = TEMPLATE_EXPORTER.subn(rf'\1"{exporter}"', text)
    assert n == 1
    return text


def test_approval_init_to_stdout_and_file_then_fill_sign_check(
    world: World, passphrase_file: Path
) -> None:
    owner = world.owner.home.path
    printed = sx(owner, "approval", "init")
    assert printed.exit_code == 0, printed.stderr
    template = printed.stdout
    assert template.startswith("# securexport approval")
    assert 'schema = "securexport.approval/1"' in template
    assert ok_json(sx(owner, "--json", "approval", "init")) == {"template": template}

    path = world.root / "init.toml"
    written = ok_json(sx(owner, "--json", "approval", "init", "-o", str(path)))
    assert written == {"written": str(path)}
    assert path.read_text(encoding="utf-8") == template
    # Never over an existing file.
    path.write_text("mine")
    assert_one_line_error(sx(owner, "approval", "init", "-o", str(path)), 7)
    assert path.read_text() == "mine"
    human = world.root / "human.toml"
    assert sx(owner, "approval", "init", "-o", str(human)).stdout == f"wrote {human}\n"
    assert human.read_text(encoding="utf-8") == template

    # The template parses as it stands: only the missing signature and the window refuse it.
    unfilled = sx(owner, "approval", "check", str(human))
    assert unfilled.exit_code == 3
    assert "syntax and schema OK" in unfilled.stderr
    assert "problem: not signed" in unfilled.stderr

    # Filled in, signed by the owner, it checks on the owner's and on the exporter's machine.
    filled = world.root / "filled.toml"
    filled.write_text(fill_template(template, world, datetime.now(UTC)), encoding="utf-8")
    signed = ok_json(
        sx(
            owner,
            "--json",
            "approval",
            "sign",
            str(filled),
            "--as",
            "owner",
            passphrase=passphrase_file,
        )
    )
    sig = Path(f"{filled}.sig")
    assert signed == {"signature": str(sig)}
    assert sig.read_bytes().startswith(SIG_ARMOR)
    for home in (owner, world.exporter.home.path):
        doc = ok_json(sx(home, "--json", "approval", "check", str(filled)))
        assert isinstance(doc, dict)
        assert doc["id"] == "APR-2026-0100"
        assert doc["signed"] is True and doc["signer"] == "owner"
        assert doc["window"] == "valid" and doc["problems"] == []
        assert doc["sha256"] == hashlib.sha256(filled.read_bytes()).hexdigest()
        assert doc["dataset"] == "offenders"
        assert doc["columns"] == ["offender", "birth_year", "district", "convictions"]
        assert doc["recipients"] == ["force"]
        assert doc["exporters"] == ["analyst"]


def test_approval_sign_then_check(world: World, passphrase_file: Path) -> None:
    owner = world.owner.home.path
    approval = world.write_approval(sign=False, approval_id="APR-2026-0777")
    assert_one_line_error(sx(owner, "--json", "approval", "check", str(approval)), 3)

    sign = sx(owner, "approval", "sign", str(approval), "--as", "owner", passphrase=passphrase_file)
    assert sign.exit_code == 0, sign.stderr
    assert sign.stdout == f"wrote {approval}.sig\n"
    assert error_lines(sign.stderr) == []  # no warning: the window is not over
    sig = Path(f"{approval}.sig")
    assert sig.read_bytes().startswith(SIG_ARMOR)

    doc = ok_json(sx(owner, "--json", "approval", "check", str(approval)))
    assert isinstance(doc, dict)
    assert doc["id"] == "APR-2026-0777"
    assert doc["signed"] is True
    assert doc["signer"] == "owner"
    assert doc["window"] == "valid"
    assert doc["problems"] == []
    assert doc["sha256"] == hashlib.sha256(approval.read_bytes()).hexdigest()
    assert datetime.fromisoformat(doc["not_before"]) == datetime(2026, 1, 1, tzinfo=UTC)
    assert datetime.fromisoformat(doc["expires"]) == datetime(2027, 1, 31, 23, 59, 59, tzinfo=UTC)
    assert doc["columns"] == [
        "offender",
        "birth_year",
        "district",
        "convictions",
        "release_quarter",
    ]
    assert (doc["recipients"], doc["exporters"]) == (["force"], ["analyst"])
    human = sx(owner, "approval", "check", str(approval))
    assert human.exit_code == 0
    assert "signed by: owner; window: valid" in human.stdout

    # Signed by a key nobody trusts as an approver (the exporter's own): refused.
    sx(
        world.exporter.home.path,
        "approval",
        "sign",
        str(approval),
        "--as",
        "analyst",
        passphrase=passphrase_file,
    )
    assert "not a trusted approver" in assert_one_line_error(
        sx(owner, "--json", "approval", "check", str(approval)), 3
    )
    # Re-signed by the owner, then one byte of the approval changed: the signature fails.
    sx(owner, "approval", "sign", str(approval), "--as", "owner", passphrase=passphrase_file)
    ok_json(sx(owner, "--json", "approval", "check", str(approval)))
    approval.write_bytes(approval.read_bytes().replace(b"row_cap  = 100000", b"row_cap  = 900000"))
    assert "signature is invalid" in assert_one_line_error(
        sx(owner, "--json", "approval", "check", str(approval)), 3
    )

    # An expired approval is signed with a warning on stderr, and check refuses its window.
    expired = world.write_approval(sign=False, expires="2026-02-01T00:00:00Z")
    late = sx(
        owner,
        "--json",
        "approval",
        "sign",
        str(expired),
        "--as",
        "owner",
        passphrase=passphrase_file,
    )
    assert ok_json(late) == {"signature": f"{expired}.sig"}
    assert "securexport: warning:" in late.stderr and "expired" in late.stderr
    assert "validity window: expired" in assert_one_line_error(
        sx(owner, "--json", "approval", "check", str(expired)), 3
    )
    # Without --json the owner sees the report, on stderr: stdout stays empty (DESIGN.md §11).
    report = sx(owner, "approval", "check", str(expired))
    assert (report.exit_code, report.stdout) == (3, "")
    assert "signed by: owner; window: expired" in report.stderr
    assert report.stderr.splitlines()[-1].startswith("securexport: error: ")

    # A strict parse error is refused before anything is signed.
    broken = world.root / "broken.toml"
    broken.write_text(world.approval_text().replace("[limits]", "[limits]\nbogus = 1"))
    assert_one_line_error(
        sx(owner, "approval", "sign", str(broken), "--as", "owner", passphrase=passphrase_file), 3
    )
    assert not Path(f"{broken}.sig").exists()
    # Signing as an identity that does not exist here: a missing key.
    assert_one_line_error(
        sx(owner, "approval", "sign", str(approval), "--as", "nobody", passphrase=passphrase_file),
        4,
    )
    # … one error line alone, even for an expired approval (no warning before it).
    assert_one_line_error(
        sx(owner, "approval", "sign", str(expired), "--as", "nobody", passphrase=passphrase_file),
        4,
    )


# ------------------------------------------------------------------------- pseudonym keys


def _approval_for_key(world: World, key_id: str, key_check: str, **kwargs: object) -> str:
    text = world.approval_text(**kwargs)  # type: ignore[arg-type]
    old = f'key_id = "test-key"\nkey_check = "{world.key_check}"\n'
    assert text.count(old) == 1
    return text.replace(old, f'key_id = "{key_id}"\nkey_check = "{key_check}"\n')


def test_pseudonym_key_new_export_import_round_trip(world: World, passphrase_file: Path) -> None:
    owner, exporter = world.owner.home.path, world.exporter.home.path
    created = ok_json(
        sx(owner, "--json", "pseudonym-key", "new", "wmp-2026", passphrase=passphrase_file)
    )
    assert isinstance(created, dict)
    assert set(created) == {"key_id", "key_check"}
    assert created["key_id"] == "wmp-2026"
    owner_key = KeyStore(world.owner, scrypt_log_n=TEST_LOG_N).pseudonym_key("wmp-2026")
    assert len(owner_key) == 32
    assert created["key_check"] == key_check_of(owner_key)
    # A second key of the same id is refused, and the first is kept.
    assert_one_line_error(
        sx(owner, "pseudonym-key", "new", "wmp-2026", passphrase=passphrase_file), 2
    )
    assert KeyStore(world.owner, scrypt_log_n=TEST_LOG_N).pseudonym_key("wmp-2026") == owner_key
    human = sx(owner, "pseudonym-key", "new", "other-2026", passphrase=passphrase_file)
    assert human.exit_code == 0
    assert re.search(r'^key_check = "[0-9a-f]{16}"', human.stdout, re.M)

    approval = world.write_approval(
        _approval_for_key(world, "wmp-2026", created["key_check"], approval_id="APR-2026-0200")
    )
    keyfile = world.root / "wmp-2026.key.age"
    exporter_age = world.ids["exporter"].age_recipient
    exported = ok_json(
        sx(
            owner,
            "--json",
            "pseudonym-key",
            "export",
            "wmp-2026",
            "--to",
            exporter_age,
            "--approval",
            str(approval),
            "-o",
            str(keyfile),
            passphrase=passphrase_file,
        )
    )
    assert exported == {"key_id": "wmp-2026", "to": exporter_age, "file": str(keyfile)}
    assert keyfile.stat().st_mode & 0o077 == 0
    blob = keyfile.read_bytes()
    assert blob.startswith(b"age-encryption.org/v1\n")
    assert base64.b64encode(owner_key) not in blob and owner_key not in blob
    # Encrypted to the exporter only: the approval's recipient cannot open it.
    store = {
        role: KeyStore(getattr(world, role), scrypt_log_n=TEST_LOG_N)
        for role in ("exporter", "recipient")
    }
    opened = json.loads(
        pyrage.decrypt(
            blob, [pyrage.x25519.Identity.from_str(store["exporter"].age_identity("analyst"))]
        )
    )
    assert opened["key_id"] == "wmp-2026" and opened["key_check"] == created["key_check"]
    with pytest.raises(pyrage.DecryptError):
        pyrage.decrypt(
            blob, [pyrage.x25519.Identity.from_str(store["recipient"].age_identity("force"))]
        )

    imported = ok_json(
        sx(exporter, "--json", "pseudonym-key", "import", str(keyfile), passphrase=passphrase_file)
    )
    assert imported == {"key_id": "wmp-2026", "key_check": created["key_check"]}
    assert store["exporter"].pseudonym_key("wmp-2026") == owner_key
    # Importing the same key again is harmless.
    again = sx(exporter, "pseudonym-key", "import", str(keyfile), passphrase=passphrase_file)
    assert again.exit_code == 0 and "imported pseudonym key wmp-2026" in again.stdout
    # Someone who is not the addressee cannot import it.
    assert_one_line_error(
        sx(
            world.recipient.home.path,
            "pseudonym-key",
            "import",
            str(keyfile),
            passphrase=passphrase_file,
        ),
        4,
    )
    assert not store["recipient"].has_pseudonym_key("wmp-2026")

    # The exporter can now run the approval that uses the key.
    bundle = world.root / "with-imported-key.sxb"
    ran = ok_json(
        sx(
            exporter,
            "--json",
            "export",
            str(approval),
            "--source",
            world.source_url,
            "--as",
            "analyst",
            "-o",
            str(bundle),
            passphrase=passphrase_file,
        )
    )
    assert ran["rows_written"] > 0


def _pk_export(
    world: World, approval: Path, to: str, out: Path, key_id: str = "test-key"
) -> Result:
    return sx(
        world.owner.home.path,
        "--json",
        "pseudonym-key",
        "export",
        key_id,
        "--to",
        to,
        "--approval",
        str(approval),
        "-o",
        str(out),
        passphrase=Path(str(world.owner.passphrase_file)),
    )


def _nothing_written(out: Path) -> None:
    assert not out.exists()
    assert not list(out.parent.glob(out.name + "*"))


def test_pseudonym_key_export_refuses_a_recipient_that_is_not_the_exporter(world: World) -> None:
    approval = world.write_approval()
    out = world.root / "leak.key.age"
    for role in ("recipient", "auditor", "outsider"):
        # The recipient and auditor are named in the approval, but not as exporters.
        line = assert_one_line_error(
            _pk_export(world, approval, world.ids[role].age_recipient, out), 3
        )
        assert "is not the age key of an exporter named in approval" in line
        _nothing_written(out)
    # The exporter itself is accepted by the same approval (the refusal is about the key).
    ok_json(_pk_export(world, approval, world.ids["exporter"].age_recipient, out))
    assert out.exists()


def test_pseudonym_key_export_refuses_an_approval_that_does_not_use_the_key(
    world: World,
) -> None:
    owner_store = KeyStore(world.owner, scrypt_log_n=TEST_LOG_N)
    other_check = owner_store.create_pseudonym_key("other-key")
    to = world.ids["exporter"].age_recipient
    out = world.root / "other.key.age"

    # The approval uses test-key; the owner asks for other-key.
    uses_test_key = world.write_approval()
    line = assert_one_line_error(_pk_export(world, uses_test_key, to, out, key_id="other-key"), 3)
    assert "does not use pseudonym key 'other-key'" in line
    _nothing_written(out)
    # An approval with no pseudonymisation at all.
    no_pseudonyms = world.write_approval(
        pseudonym=False,
        columns='[[column]]\nname = "force"\nsource = "force_code"\ntransform = "keep"\n',
        privacy="",
    )
    for key_id in ("other-key", "test-key"):
        assert "does not use pseudonym key" in assert_one_line_error(
            _pk_export(world, no_pseudonyms, to, out, key_id=key_id), 3
        )
        _nothing_written(out)
    # Not signed, signed by an untrusted key, or changed after signing: refused too.
    uses_other = world.write_approval(
        _approval_for_key(world, "other-key", other_check), sign=False
    )
    assert_one_line_error(_pk_export(world, uses_other, to, out, key_id="other-key"), 3)
    _nothing_written(out)
    api.sign_approval(world.exporter, uses_other, "analyst")  # the exporter signs for itself
    assert "not a trusted approver" in assert_one_line_error(
        _pk_export(world, uses_other, to, out, key_id="other-key"), 3
    )
    _nothing_written(out)
    api.sign_approval(world.owner, uses_other, "owner")
    uses_other.write_text(uses_other.read_text().replace("row_cap  = 100000", "row_cap  = 100001"))
    assert_one_line_error(_pk_export(world, uses_other, to, out, key_id="other-key"), 3)
    _nothing_written(out)
    # A signed approval for a key the owner does not hold: a missing key (exit 4).
    absent = world.write_approval(_approval_for_key(world, "absent-key", "0123456789abcdef"))
    assert "no pseudonym key 'absent-key'" in assert_one_line_error(
        _pk_export(world, absent, to, out, key_id="absent-key"), 4
    )
    _nothing_written(out)
    # A properly signed approval that uses other-key: exported.
    good = world.write_approval(_approval_for_key(world, "other-key", other_check))
    ok_json(_pk_export(world, good, to, out, key_id="other-key"))
    assert out.exists()


def test_pseudonym_key_export_refuses_an_approval_whose_key_check_is_another_key(
    world: World,
) -> None:
    stale = world.write_approval(_approval_for_key(world, "test-key", "0123456789abcdef"))
    out = world.root / "stale.key.age"
    assert_one_line_error(_pk_export(world, stale, world.ids["exporter"].age_recipient, out), 3)
    _nothing_written(out)


def test_pseudonym_key_export_refuses_a_malformed_recipient_as_usage(world: World) -> None:
    approval = world.write_approval()
    out = world.root / "bad.key.age"
    assert_one_line_error(_pk_export(world, approval, "age1notarecipient", out), 2)
    _nothing_written(out)


def test_pseudonym_key_export_never_overwrites_a_file(world: World) -> None:
    approval = world.write_approval()
    out = world.root / "existing.key.age"
    out.write_bytes(b"someone's file")
    assert_one_line_error(_pk_export(world, approval, world.ids["exporter"].age_recipient, out), 7)
    assert out.read_bytes() == b"someone's file"
