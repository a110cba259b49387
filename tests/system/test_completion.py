"""Shell completion: ``securexport completion SHELL`` prints click's script, and the bash one,
sourced in a real bash, completes commands and choices through the real program."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from securexport.cli import cli
from tests.support.cli import Runner, assert_one_line_error


def _complete_in_bash(tmp_path: Path, words: list[str], cword: int) -> list[str]:
    """What Tab offers after ``words`` (COMP_WORDS, COMP_CWORD), with the script loaded the
    way the README says: ``eval "$(securexport completion bash)"``."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir(exist_ok=True)
    shim = bin_dir / "securexport"  # the command on PATH, as an installed console script
    shim.write_text(f'#!/bin/sh\nexec "{sys.executable}" -m securexport "$@"\n')
    shim.chmod(0o755)
    script = (
        'eval "$(securexport completion bash)"\n'
        "declare -F _securexport_completion >/dev/null || exit 10\n"
        "complete -p securexport >/dev/null || exit 11\n"
        f"COMP_WORDS=({' '.join(repr(w) for w in words)})\n"
        f"COMP_CWORD={cword}\n"
        "_securexport_completion securexport\n"
        'printf "%s\\n" "${COMPREPLY[@]}"\n'
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith("_SECUREXPORT")}
    env.update(PATH=f"{bin_dir}:{env.get('PATH', '/usr/bin:/bin')}", HOME=str(tmp_path))
    done = subprocess.run(
        ["bash", "--norc", "--noprofile", "-c", script],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, (done.returncode, done.stderr)
    return [line for line in done.stdout.splitlines() if line]


def test_bash_completes_a_command_name(tmp_path: Path) -> None:
    assert _complete_in_bash(tmp_path, ["securexport", "ke"], 1) == ["keys"]


def test_bash_completes_options_and_choices(tmp_path: Path) -> None:
    assert _complete_in_bash(tmp_path, ["securexport", "--js"], 1) == ["--json"]
    role = _complete_in_bash(tmp_path, ["securexport", "trust", "add", "a", "b", "--role", ""], 6)
    assert role == ["approver", "ledger"]
    subs = _complete_in_bash(tmp_path, ["securexport", "keys", ""], 2)
    assert {"new", "show", "export", "list", "delete"} <= set(subs)


@pytest.mark.parametrize(
    ("shell", "marks"),
    [
        ("bash", ["_securexport_completion()", "_SECUREXPORT_COMPLETE=bash_complete"]),
        ("zsh", ["#compdef securexport", "_SECUREXPORT_COMPLETE=zsh_complete"]),
        ("fish", ["complete --no-files --command securexport", "fish_complete"]),
    ],
)
def test_completion_prints_the_script(shell: str, marks: list[str]) -> None:
    result = Runner().invoke(cli, ["completion", shell])
    assert result.exit_code == 0, result.stderr
    assert result.stderr == ""
    for mark in marks:
        assert mark in result.stdout, mark
    as_json = Runner().invoke(cli, ["--json", "completion", shell])
    assert as_json.exit_code == 0
    assert json.loads(as_json.stdout) == {"shell": shell, "script": result.stdout}


def test_completion_refuses_an_unknown_shell() -> None:
    result = Runner().invoke(cli, ["completion", "tcsh"])
    line = assert_one_line_error(result, 2)
    assert "'tcsh' is not one of 'bash', 'zsh', 'fish'" in line
