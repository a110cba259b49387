"""CLI contract: exit codes, one-line errors, --json shapes, quiet streams, no secrets."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import click
import pytest

from securexport.cli import cli
from securexport.home.keystore import KeyStore
from tests.support.cli import CLI_PROCESS, SCRYPT_VAR, Runner, assert_one_line_error, error_lines
from tests.support.world import TEST_LOG_N, World


def run(world_or_none: World | None, home: Path | None, *args: str, passphrase: Path | None = None):  # type: ignore[no-untyped-def]
    env = {
        "SECUREXPORT_KEYSTORE": "file",
        "SECUREXPORT_PASSPHRASE_FILE": str(passphrase) if passphrase else "",
    }
    argv = (["--home", str(home)] if home else []) + list(args)
    return Runner().invoke(cli, argv, env=env, catch_exceptions=False)


def _walk(group: click.Group, prefix: tuple[str, ...] = ()):  # type: ignore[no-untyped-def]
    for name, command in group.commands.items():
        if isinstance(command, click.Group):
            yield from _walk(command, (*prefix, name))
        else:
            yield (*prefix, name), command


def test_version_and_help() -> None:
    result = Runner().invoke(cli, ["--version"])
    assert result.exit_code == 0 and "0.1.0" in result.stdout


@pytest.mark.parametrize("path", [p for p, _ in _walk(cli)], ids=lambda p: " ".join(p))
def test_every_command_has_help(path: tuple[str, ...]) -> None:
    result = Runner().invoke(cli, [*path, "--help"])
    assert result.exit_code == 0
    assert result.stdout.strip()


def test_usage_error_exit_2() -> None:
    result = Runner().invoke(cli, ["no-such-command"])
    assert_one_line_error(result, 2)


def test_keys_json_shape_and_missing_key(
    tmp_path: Path, passphrase_file: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    home = tmp_path / "home"
    home.mkdir(mode=0o700)
    monkeypatch.setenv(SCRYPT_VAR, str(TEST_LOG_N))
    created = run(None, home, "--json", "keys", "new", "alice", passphrase=passphrase_file)
    assert created.exit_code == 0, created.stderr
    shown = run(None, home, "--json", "keys", "show", "alice", passphrase=passphrase_file)
    doc = json.loads(shown.stdout)
    assert doc["name"] == "alice"
    assert doc["age_recipient"].startswith("age1")
    assert doc["signing_key"].startswith("ssh-ed25519 ")
    secret = passphrase_file.read_text().strip()
    assert secret not in created.stdout + created.stderr + shown.stdout + shown.stderr
    assert "AGE-SECRET-KEY" not in created.stdout + created.stderr
    missing = run(None, home, "--json", "keys", "show", "bob", passphrase=passphrase_file)
    assert_one_line_error(missing, 4)


def test_full_flow_through_the_cli(world: World, passphrase_file: Path) -> None:
    approval = world.write_approval()
    owner, exporter, recipient = (
        world.owner.home.path,
        world.exporter.home.path,
        world.recipient.home.path,
    )
    plan = run(
        world,
        owner,
        "--json",
        "approval",
        "plan",
        str(approval),
        "--source",
        world.source_url,
        passphrase=passphrase_file,
    )
    assert plan.exit_code == 0, plan.stderr
    assert json.loads(plan.stdout)["verdict"] == "ok"

    bundle = world.root / "cli.sxb"
    exported = run(
        world,
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
    assert exported.exit_code == 0, exported.stderr
    doc = json.loads(exported.stdout)
    assert doc["rows_written"] > 0 and bundle.exists()
    assert error_lines(exported.stderr) == []  # no progress bar when stderr is not a terminal

    inspected = run(world, None, "--json", "inspect", str(bundle))
    assert json.loads(inspected.stdout)["export_id"] == doc["export_id"]

    verified = run(world, owner, "--json", "verify", str(bundle))
    assert verified.exit_code == 0, verified.stderr
    assert json.loads(verified.stdout)["ok"] is True

    out = world.root / "cli-out"
    decrypted = run(
        world,
        recipient,
        "--json",
        "decrypt",
        str(bundle),
        "--as",
        "force",
        "-o",
        str(out),
        passphrase=passphrase_file,
    )
    assert decrypted.exit_code == 0, decrypted.stderr
    assert (out / "data" / "offenders.csv").exists()
    identity = KeyStore(world.recipient, scrypt_log_n=TEST_LOG_N).age_identity("force")
    for result in (plan, exported, inspected, verified, decrypted):
        assert identity not in result.stdout + result.stderr

    # Exit codes of refusals.
    assert_one_line_error(
        run(
            world,
            exporter,
            "--json",
            "export",
            str(approval),
            "--source",
            "postgresql+psycopg://u:secret@localhost/db",
            "--as",
            "analyst",
            "-o",
            str(world.root / "x.sxb"),
            passphrase=passphrase_file,
        ),
        2,
    )
    tampered = world.root / "tampered.sxb"
    data = bytearray(bundle.read_bytes())
    data[len(data) // 3] ^= 0xFF
    tampered.write_bytes(bytes(data))
    assert_one_line_error(run(world, owner, "--json", "verify", str(tampered)), 5)
    assert_one_line_error(
        run(
            world,
            world.outsider.home.path,
            "decrypt",
            str(bundle),
            "--as",
            "stranger",
            "-o",
            str(world.root / "o2"),
            passphrase=passphrase_file,
        ),
        4,
    )
    unsigned = world.write_approval(sign=False)
    assert_one_line_error(
        run(
            world,
            exporter,
            "export",
            str(unsigned),
            "--source",
            world.source_url,
            "--as",
            "analyst",
            "-o",
            str(world.root / "y.sxb"),
            passphrase=passphrase_file,
        ),
        3,
    )
    assert_one_line_error(
        run(
            world,
            exporter,
            "export",
            str(approval),
            "--source",
            "sqlite:////nonexistent/db.sqlite",
            "--as",
            "analyst",
            "-o",
            str(world.root / "z.sxb"),
            passphrase=passphrase_file,
        ),
        6,
    )
    assert_one_line_error(run(world, owner, "verify", str(world.root / "missing.sxb")), 7)


def test_refused_plan_keeps_stdout_empty(world: World, passphrase_file: Path) -> None:
    """The owner still sees the plan's figures on a refusal, but on stderr (DESIGN.md §11)."""
    approval = world.write_approval(row_cap=5)
    result = run(
        world,
        world.owner.home.path,
        "approval",
        "plan",
        str(approval),
        "--source",
        world.source_url,
    )
    assert result.exit_code == 3
    assert result.stdout == ""
    assert "matching rows" in result.stderr
    assert "securexport: error: the export would be refused" in result.stderr
    unsigned = world.write_approval(sign=False)
    checked = run(world, world.owner.home.path, "approval", "check", str(unsigned))
    assert checked.exit_code == 3
    assert checked.stdout == ""
    assert "problem: not signed" in checked.stderr


def test_start_up_imports_only_what_the_command_needs() -> None:
    """`--version`, `approval plan` and `keys` start fast (issue 5): the API module does not
    import the bundle, ZIP, witness, ledger or breach code, nor SQLAlchemy, until a command
    uses them; the re-exported recipes still resolve."""
    code = (
        "import sys, securexport.api as api\n"
        "heavy = ['pyzipper', 'sqlalchemy', 'securexport.bundle', 'securexport.ledger',\n"
        "         'securexport.data', 'securexport.home', 'securexport.api.exporting']\n"
        "print([m for m in heavy if m in sys.modules])\n"
        "assert api.ledger_verify.__module__ == 'securexport.api.ledger'\n"
        "assert api.witness.__module__ == 'securexport.api.witnessing'\n"
        "for name in api.__all__: getattr(api, name)  # every public name resolves\n"
        "try:\n"
        "    api.no_such_recipe\n"
        "except AttributeError:\n"
        "    print('ok')\n"
    )
    got = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout.split("\n")
    assert got[:2] == ["[]", "ok"]


def test_progress_bars_on_a_terminal(
    world: World, passphrase_file: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """On a terminal, export shows tqdm bars for reading and writing (cleared at the end, so
    they appear only in the terminal transcript); without one there is none (above)."""
    from tests.support.agetool import run_with_tty

    monkeypatch.setenv("SECUREXPORT_PASSPHRASE_FILE", str(passphrase_file))
    monkeypatch.setenv("SECUREXPORT_KEYSTORE", "file")
    monkeypatch.setenv("COLUMNS", "100")
    out = world.root / "tty.sxb"
    argv = [*CLI_PROCESS, "--home", str(world.exporter.home.path)]
    argv += ["export", str(world.write_approval()), "--source", world.source_url]
    code, transcript = run_with_tty([*argv, "--as", "analyst", "-o", str(out)], b"", timeout=120)
    text = transcript.decode("utf-8", "replace")
    assert code == 0, text
    assert out.exists()
    # Reading counts the matching rows as it goes: no total yet, so no percentage; writing
    # replays exactly the rows read, out of that total (not the row cap).
    assert re.search(r"reading: \d+ ?rows", text), text
    matched = re.search(r"\((\d+) matched", text)
    assert matched, text
    assert re.search(rf"writing: +\d+%.*\d+/{matched[1]} ", text), text
    assert "wrote " in text
