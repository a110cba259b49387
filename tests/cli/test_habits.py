"""The command-line habits users of age, OpenSSH and git expect (issue 13 §2), one contract each.

Global options before or after the command; ``-`` for standard input and output (never for
plaintext); a closed pipe exits 141 quietly; passphrases get three tries on a terminal and a
new one has a minimum strength; a confirmation prompt without a terminal is a usage error;
the progress bar hides with ``-q`` and has no colour; ``--help`` names the environment
variables and files.  stdout, stderr and the exit code are checked separately.  Where a real
pipe or terminal matters the CLI runs in a fresh process (CLI_PROCESS), on a pty if need be.
"""

from __future__ import annotations

import io
import json
import re
import subprocess
import tempfile
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from click.testing import Result

from securexport import api
from securexport.cli import cli
from securexport.environment import Environment
from securexport.errors import VerificationError
from securexport.limits import DEFAULT_LIMITS
from tests.support import terminal
from tests.support.cli import (
    CLI_PROCESS,
    SCRYPT_VAR,
    Runner,
    assert_one_line_error,
    suite_environment,
)
from tests.support.world import TEST_LOG_N, World

# ------------------------------------------------------------------------- helpers


def sx(
    home: Path | None,
    *args: str,
    passphrase: Path | None = None,
    stdin: bytes | str | None = None,
    answers: list[str] | None = None,
) -> Result:
    """``securexport ARGS…`` (``--home HOME`` last, to show it works there) in-process.

    With ``answers`` the Environment has a terminal whose prompts return them in turn.
    """
    env = {
        "SECUREXPORT_KEYSTORE": "file",
        "SECUREXPORT_PASSPHRASE_FILE": str(passphrase) if passphrase else "",
        "SECUREXPORT_HOME": "",
    }
    argv = list(args) + (["--home", str(home)] if home else [])
    make_env: Any = suite_environment
    if answers is not None:
        queue = list(answers)

        def make_env(**options: Any) -> Environment:
            base = suite_environment(**options)
            return replace(base, stdin_isatty=True, prompt=lambda text: queue.pop(0))

    return Runner().invoke(cli, argv, env=env, input=stdin, obj=make_env, catch_exceptions=False)


def ok(result: Result) -> str:
    assert result.exit_code == 0, (result.stdout, result.stderr)
    assert "Traceback" not in result.stderr
    return result.stdout


@pytest.fixture
def cli_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    home = tmp_path / "cli-home"
    home.mkdir(mode=0o700)
    monkeypatch.setenv(SCRYPT_VAR, str(TEST_LOG_N))
    return home


_PROMPT = re.compile(rb"[Pp]assphrase to [^:\n]*: |\[y/N\]: ")


def run_on_pty(argv: list[str], answers: list[bytes], *, timeout: float = 120.0) -> tuple[int, str]:
    """``argv`` on a pty, answering each passphrase prompt and y/N confirmation with the next of
    ``answers``.  Returns (exit code, the terminal transcript)."""
    code, transcript = terminal.run_on_pty(argv, answers, _PROMPT, timeout=timeout)
    return code, transcript.decode("utf-8", "replace")


def _file_env(monkeypatch: pytest.MonkeyPatch, passphrase: Path | None) -> None:
    """The process environment a CLI subprocess inherits: file key store, maybe a file."""
    monkeypatch.setenv("SECUREXPORT_KEYSTORE", "file")
    monkeypatch.setenv(SCRYPT_VAR, str(TEST_LOG_N))
    monkeypatch.delenv("SECUREXPORT_HOME", raising=False)
    if passphrase is None:
        monkeypatch.delenv("SECUREXPORT_PASSPHRASE_FILE", raising=False)
    else:
        monkeypatch.setenv("SECUREXPORT_PASSPHRASE_FILE", str(passphrase))


# ------------------------------------------------------------- 1. global options anywhere


def test_global_options_work_before_and_after_the_command(
    cli_home: Path, passphrase_file: Path
) -> None:
    created = json.loads(
        ok(sx(cli_home, "keys", "new", "pa-analyst", "--json", passphrase=passphrase_file))
    )
    # The example of `keys show --help` and docs/cli.md, as written.
    after = sx(cli_home, "keys", "show", "pa-analyst", "--json")
    assert json.loads(ok(after)) == created and after.stderr == ""
    before = sx(None, "--home", str(cli_home), "--json", "keys", "show", "pa-analyst")
    assert before.stdout == after.stdout
    between = sx(cli_home, "keys", "--json", "show", "pa-analyst")
    assert between.stdout == after.stdout
    # -q after the command: nothing on stdout or stderr.
    quiet = sx(cli_home, "keys", "new", "bob", "-q", passphrase=passphrase_file)
    assert ok(quiet) == "" and quiet.stderr == ""
    # --no-input after the command: the prompt is not even considered.
    refused = sx(cli_home, "keys", "delete", "bob", "--no-input")
    assert "prompts are disabled" in assert_one_line_error(refused, 2)
    # --ledger after the command reaches the ledger (its URL is checked, not "no such option").
    bad_ledger = sx(cli_home, "ledger", "list", "--ledger", "mysql://db/x")
    line = assert_one_line_error(bad_ledger, 2)
    assert "No such option" not in line


def test_global_options_stop_at_double_dash_and_never_take_a_value(
    cli_home: Path, passphrase_file: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    ok(sx(cli_home, "keys", "new", "alice", passphrase=passphrase_file))
    # After --, "--json" is the NAME argument, not the option.
    after_dashes = sx(None, "--home", str(cli_home), "keys", "show", "--", "--json")
    assert "--json" in assert_one_line_error(after_dashes, 2)
    # An option's value stays its value: -o takes "--json" as the file name.
    monkeypatch.chdir(tmp_path)
    written = sx(None, "approval", "init", "-o", "--json")
    assert ok(written) == "wrote --json\n"
    assert (tmp_path / "--json").read_text().startswith("# securexport approval")


def test_verbose_after_the_command_shows_the_traceback(
    cli_home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def boom(env: Environment) -> None:
        raise RuntimeError("a planted bug")

    monkeypatch.setattr(api, "list_identities", boom)
    quiet = sx(cli_home, "keys", "list")
    assert assert_one_line_error(quiet, 1) == (
        "securexport: error: unexpected RuntimeError; run with -v for details"
    )
    loud = sx(cli_home, "keys", "list", "-v")
    assert loud.exit_code == 1 and loud.stdout == ""
    assert "Traceback" in loud.stderr and "a planted bug" in loud.stderr


def test_help_stays_right() -> None:
    """A subcommand's help lists its own options only; the group's lists the global ones."""
    show = sx(None, "keys", "show", "--help")
    assert "securexport keys show pa-analyst --json" in ok(show)
    assert "--no-input" not in show.stdout and "--ledger" not in show.stdout
    top = ok(sx(None, "--help"))
    for option in ("--home", "--json", "-q, --quiet", "-v, --verbose", "--no-input", "--ledger"):
        assert option in top
    assert "Global options may also follow the command" in top


# -------------------------------------------------------------------- 2. - for stdin/stdout


@pytest.fixture
def bundle_world(world: World) -> tuple[World, Path]:
    return world, world.export().bundle


def test_verify_and_inspect_read_a_bundle_from_stdin(
    bundle_world: tuple[World, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    world, bundle = bundle_world
    spool_root = tmp_path / "tmp"
    spool_root.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(spool_root))
    owner = world.owner.home.path
    from_file = sx(owner, "--json", "verify", str(bundle))
    from_stdin = sx(owner, "--json", "verify", "-", stdin=bundle.read_bytes())
    assert json.loads(ok(from_stdin)) == json.loads(ok(from_file))
    assert from_stdin.stderr == ""
    inspected = sx(None, "--json", "inspect", "-", stdin=bundle.read_bytes())
    assert json.loads(ok(inspected)) == json.loads(ok(sx(None, "--json", "inspect", str(bundle))))
    assert list(spool_root.iterdir()) == []  # the private spool is gone
    # A flipped byte on stdin fails verification like the same file would.
    data = bytearray(bundle.read_bytes())
    data[len(data) // 2] ^= 1
    assert_one_line_error(sx(owner, "verify", "-", stdin=bytes(data)), 5)
    assert_one_line_error(sx(owner, "verify", "-", stdin=b"not a bundle"), 5)
    assert list(spool_root.iterdir()) == []


def test_a_bundle_on_stdin_is_spooled_only_up_to_the_size_limit(
    bundle_world: tuple[World, Path],
) -> None:
    _world, bundle = bundle_world
    data = bundle.read_bytes()
    small = replace(DEFAULT_LIMITS, max_bundle_bytes=len(data) - 1)
    with pytest.raises(VerificationError, match="standard input is larger than the bundle size"):
        api.inspect(io.BytesIO(data), limits=small)

    class Endless(io.RawIOBase):
        def readable(self) -> bool:
            return True

        def readinto(self, buffer: Any) -> int:
            buffer[:] = b"\0" * len(buffer)
            return len(buffer)

    # An endless stream is cut off at the limit while it is spooled, not after.
    with pytest.raises(VerificationError, match="standard input is larger"):
        api.inspect(io.BufferedReader(Endless()), limits=small)
    exact = replace(DEFAULT_LIMITS, max_bundle_bytes=len(data))
    assert api.inspect(io.BytesIO(data), limits=exact).manifest.export_id


def test_approval_check_reads_stdin(world: World) -> None:
    approval = world.write_approval()
    owner = world.owner.home.path
    raw = approval.read_bytes()
    from_stdin = sx(owner, "approval", "check", "-", stdin=raw)
    # Parsed (the report is on stderr), but from stdin there is no FILE.sig: not signed, exit 3.
    assert from_stdin.exit_code == 3 and from_stdin.stdout == ""
    report = from_stdin.stderr.splitlines()
    assert "syntax and schema OK" in report[0]
    assert report[-1] == (
        f"securexport: error: approval {world_approval_id(raw)} cannot authorise a run now: "
        "not signed (read from standard input: no FILE.sig beside it)"
    )
    broken = sx(owner, "approval", "check", "-", stdin=raw.replace(b"[[column]]", b"[[colum]]", 1))
    assert "<stdin>" in assert_one_line_error(broken, 3)


def world_approval_id(raw: bytes) -> str:
    found = re.search(rb'^id\s*=\s*"([^"]+)"', raw, re.MULTILINE)
    assert found
    return found[1].decode()


def test_approval_init_and_ledger_prove_write_stdout_with_dash(
    bundle_world: tuple[World, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    world, bundle = bundle_world
    monkeypatch.chdir(tmp_path)
    template = sx(None, "approval", "init", "-o", "-")
    assert ok(template) == ok(sx(None, "approval", "init")) and template.stderr == ""
    exporter = world.exporter.home.path
    export_id = json.loads(ok(sx(None, "--json", "inspect", str(bundle))))["export_id"]
    receipt = sx(exporter, "ledger", "prove", export_id, "-o", "-")
    assert ok(receipt) == ok(sx(exporter, "ledger", "prove", export_id)) != ""
    assert receipt.stderr == ""
    # The receipt embeds the newest checkpoint, which `ledger checkpoint` prints on stdout.
    assert ok(sx(exporter, "ledger", "checkpoint")) in receipt.stdout
    assert not (tmp_path / "-").exists()


def test_decrypt_never_writes_plaintext_to_stdout(
    bundle_world: tuple[World, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    world, bundle = bundle_world
    monkeypatch.chdir(tmp_path)
    refused = sx(
        world.recipient.home.path,
        "decrypt",
        str(bundle),
        "--as",
        "force",
        "-o",
        "-",
        passphrase=Path(world.recipient.passphrase_file or ""),
    )
    assert "never written to standard output" in assert_one_line_error(refused, 2)
    assert not (tmp_path / "-").exists() and not (tmp_path / "-.partial").exists()


def test_export_to_dash_is_refused_not_a_file_named_dash(
    bundle_world: tuple[World, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A bundle is sealed in place, so `-o -` cannot stream it: refused before any row is read,
    and no file named `-` (nor its partials) appears."""
    world, _bundle = bundle_world
    monkeypatch.chdir(tmp_path)
    approval = world.write_approval()
    refused = sx(
        world.exporter.home.path,
        "export",
        str(approval),
        "--source",
        world.source_url,
        "--as",
        "analyst",
        "-o",
        "-",
        passphrase=Path(world.exporter.passphrase_file or ""),
    )
    assert "not to standard output" in assert_one_line_error(refused, 2)
    assert sorted(p.name for p in tmp_path.iterdir() if p.name.startswith("-")) == []


# ------------------------------------------------------------------------ 3. closed pipe


@pytest.mark.parametrize(
    "args",
    [("ledger", "list"), ("approval", "init"), ("--help",), ("ledger", "list", "--json")],
    ids=" ".join,
)
def test_a_closed_pipe_exits_141_quietly(cli_home: Path, args: tuple[str, ...]) -> None:
    proc = subprocess.Popen(
        [*CLI_PROCESS, "--home", str(cli_home), *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        stdin=subprocess.DEVNULL,
    )
    assert proc.stdout is not None and proc.stderr is not None
    proc.stdout.close()  # the reader is gone before the first byte is written: `| head -0`
    stderr = proc.stderr.read()
    assert proc.wait(timeout=60) == 141, stderr
    assert stderr == b""


def test_a_closed_pipe_in_a_shell(cli_home: Path) -> None:
    cmd = " ".join([*CLI_PROCESS, "--home", str(cli_home), "approval", "init"])
    shell = subprocess.run(
        ["bash", "-c", f"set -o pipefail; {cmd} | head -c 10 >/dev/null; echo $?"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert shell.stdout.strip() in ("0", "141")  # 0 if head read all before it went
    assert shell.stderr == ""


# ------------------------------------------------------------------------- 4. passphrases

_GOOD = "a long enough passphrase"


def test_three_passphrase_tries_on_a_terminal(
    cli_home: Path, passphrase_file: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    ok(sx(cli_home, "keys", "new", "alice", passphrase=passphrase_file))
    approval = tmp_path / "a.toml"
    approval.write_text(ok(sx(None, "approval", "init")))
    right = passphrase_file.read_bytes().strip()
    _file_env(monkeypatch, None)
    sign = [*CLI_PROCESS, "--home", str(cli_home), "approval", "sign", str(approval)]
    sign += ["--as", "alice"]
    code, text = run_on_pty(sign, [b"wrong one", b"wrong two", right])
    assert code == 0, text
    assert text.count("wrong passphrase; try again") == 2
    assert (tmp_path / "a.toml.sig").exists()
    (tmp_path / "a.toml.sig").unlink()
    code, text = run_on_pty(sign, [b"wrong"] * 4)
    assert code == 4, text
    assert len(_PROMPT.findall(text.encode())) == 3  # asked three times, not four
    assert "securexport: error: wrong passphrase or damaged key file (3 tries)" in text
    assert not (tmp_path / "a.toml.sig").exists()


def test_a_passphrase_file_gets_one_try(
    cli_home: Path, passphrase_file: Path, tmp_path: Path
) -> None:
    ok(sx(cli_home, "keys", "new", "alice", passphrase=passphrase_file))
    approval = tmp_path / "a.toml"
    approval.write_text(ok(sx(None, "approval", "init")))
    wrong = tmp_path / "wrong"
    wrong.write_bytes(b"not the passphrase\n")
    wrong.chmod(0o600)
    result = sx(cli_home, "approval", "sign", str(approval), "--as", "alice", passphrase=wrong)
    assert assert_one_line_error(result, 4) == (
        "securexport: error: wrong passphrase or damaged key file"
    )
    assert "try again" not in result.stderr


@pytest.mark.parametrize(
    ("answers", "message"),
    [
        (["short"], "at least 12 characters"),
        (["x" * 20], "must not repeat one or two characters"),
        (["ab" * 8], "must not repeat one or two characters"),
        (["abcdefghijklmn"], "run of consecutive characters"),
        (["zyxwvutsrqpo"], "run of consecutive characters"),
        (["Password1234!"], "common password"),
        (["123456789012"], "common password"),
        ([""], "an empty passphrase is not accepted"),
        ([_GOOD, _GOOD + "!"], "the passphrases do not match"),
    ],
    ids=[
        "short",
        "one-char",
        "two-chars",
        "run",
        "run-down",
        "common",
        "digits",
        "empty",
        "mismatch",
    ],
)
def test_a_new_passphrase_is_refused_with_exit_2(
    cli_home: Path, answers: list[str], message: str
) -> None:
    """Too weak, empty and mismatched all give the same usage error; nothing is written."""
    result = sx(cli_home, "keys", "new", "alice", answers=answers)
    assert message in assert_one_line_error(result, 2)
    assert not (cli_home / "keys").exists() or list((cli_home / "keys").iterdir()) == []


def test_a_strong_new_passphrase_is_accepted_and_unlocks(cli_home: Path, tmp_path: Path) -> None:
    ok(sx(cli_home, "keys", "new", "alice", answers=[_GOOD, _GOOD]))
    approval = tmp_path / "a.toml"
    approval.write_text(ok(sx(None, "approval", "init")))
    ok(sx(cli_home, "approval", "sign", str(approval), "--as", "alice", answers=[_GOOD]))


def test_the_strength_rule_is_the_terminals(cli_home: Path, tmp_path: Path) -> None:
    """A passphrase file is chosen by whoever set up the automation; it is not judged."""
    short = tmp_path / "short"
    short.write_bytes(b"fuzz\n")
    short.chmod(0o600)
    ok(sx(cli_home, "keys", "new", "alice", passphrase=short))


# --------------------------------------------------------------- 5. prompts with no terminal


def test_a_confirmation_with_no_terminal_is_exit_2(
    cli_home: Path, passphrase_file: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    ok(sx(cli_home, "keys", "new", "alice", passphrase=passphrase_file))
    _file_env(monkeypatch, None)
    result = subprocess.run(
        [*CLI_PROCESS, "--home", str(cli_home), "keys", "delete", "alice"],
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 2, result.stderr
    assert result.stdout == ""
    assert result.stderr == (
        "securexport: error: deleting identity alice asks for confirmation: "
        "that needs a terminal, or pass --yes\n"
    )
    assert (cli_home / "keys" / "alice.pub").exists()


def test_a_confirmation_on_a_terminal(
    cli_home: Path, passphrase_file: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    ok(sx(cli_home, "keys", "new", "alice", passphrase=passphrase_file))
    _file_env(monkeypatch, None)
    delete = [*CLI_PROCESS, "--home", str(cli_home), "keys", "delete", "alice"]
    code, text = run_on_pty(delete, [b"n"])
    assert code == 2, text
    assert "identity alice was not deleted: not confirmed" in text
    assert (cli_home / "keys" / "alice.pub").exists()
    code, text = run_on_pty(delete, [b"y"])
    assert code == 0, text
    assert "deleted identity alice" in text
    assert not (cli_home / "keys" / "alice.pub").exists()


# ------------------------------------------------------------------------- 6. progress

_SGR = re.compile(r"\x1b\[[0-9;]*m")  # Select Graphic Rendition: colour, bold, …


def _export_on_pty(
    world: World, passphrase_file: Path, name: str, *options: str
) -> tuple[int, str, Path]:
    out = world.root / name
    argv = [*CLI_PROCESS, "--home", str(world.exporter.home.path), *options]
    argv += ["export", str(world.write_approval()), "--source", world.source_url]
    code, text = run_on_pty([*argv, "--as", "analyst", "-o", str(out)], [], timeout=120)
    return code, text, out


def test_quiet_hides_the_progress_bar(
    world: World, passphrase_file: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _file_env(monkeypatch, passphrase_file)
    monkeypatch.setenv("COLUMNS", "100")
    code, text, out = _export_on_pty(world, passphrase_file, "quiet.sxb", "-q")
    assert code == 0, text
    assert out.exists()
    assert text == ""  # no bar, no summary: -q prints nothing on success


def test_the_progress_bar_has_no_colour(
    world: World, passphrase_file: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _file_env(monkeypatch, passphrase_file)
    monkeypatch.setenv("COLUMNS", "100")
    monkeypatch.setenv("NO_COLOR", "1")
    code, text, _out = _export_on_pty(world, passphrase_file, "plain.sxb")
    assert code == 0, text
    assert "rows/s" in text  # the bar was drawn…
    assert _SGR.findall(text) == []  # …without colour or other graphic rendition


# ----------------------------------------------------------- 7. environment and files in help


def test_help_lists_the_environment_and_the_files() -> None:
    result = sx(None, "--help")
    text = ok(result)
    assert result.stderr == ""
    for name in (
        "SECUREXPORT_HOME",
        "SECUREXPORT_PASSPHRASE_FILE",
        "SECUREXPORT_KEYSTORE",
        "auto (default), keyring (the OS keyring only) or file",
        "NO_COLOR",
        "config.toml",
        "[ledger] url",
        "allowed_signers",
        "trusted_logs",
        "keys/",
        "ledger.db",
        "revocations/",
        "witness/",
    ):
        assert name in text, name
