"""The command-line error contract (DESIGN.md §7, §11), asserted the same way everywhere."""

from __future__ import annotations

import os
import signal
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from click.testing import CliRunner, Result

from securexport.environment import Environment


def error_lines(stderr: str) -> list[str]:
    """stderr without notices (a notice may precede an error: the keyring fallback)."""
    return [
        line for line in stderr.splitlines() if line and not line.startswith("securexport: notice:")
    ]


def assert_one_line_error(result: Any, code: int | tuple[int, ...]) -> str:
    """Exit ``code``, empty stdout, one error line (and at most a hint), no traceback.

    ``result`` is a click ``Result`` (or anything with ``exit_code``, ``stdout``, ``stderr``).
    Returns the error line.
    """
    codes = (code,) if isinstance(code, int) else code
    assert result.exit_code in codes, (result.exit_code, result.stdout, result.stderr)
    assert result.stdout == ""
    lines = error_lines(result.stderr)
    assert lines, result.stderr
    assert lines[0].startswith("securexport: error: ")
    assert all(line.startswith(("securexport: error: ", "securexport: hint: ")) for line in lines)
    assert len(lines) <= 2
    assert "Traceback" not in result.stderr
    return str(lines[0])


# ---------------------------------------------------------------------------------------------
# Running the CLI cheaply.  The product reads no test-only switch: the suite builds the
# Environment itself (securexport.cli.main's ``environment``, click's ``obj``), with key files
# at a low scrypt cost and, for the crash tests, a stage hook that kills the process.

REPO = Path(__file__).resolve().parents[2]
TEST_SCRYPT_LOG_N = 10
# Read by tests/support/cli_process.py (a CLI subprocess) and nowhere in securexport.
SCRYPT_VAR = "SECUREXPORT_TEST_SCRYPT_LOG_N"
CRASH_VAR = "SECUREXPORT_TEST_CRASH_AT"
CRASH_SIGNAL_VAR = "SECUREXPORT_TEST_CRASH_SIGNAL"
# argv prefix of the CLI in a fresh process, as the suite runs it (see cli_process.py).
CLI_PROCESS = [sys.executable, str(REPO / "tests" / "support" / "cli_process.py")]


def _die_at(stage: str, signame: str) -> Callable[[str], None]:
    sig = getattr(signal, signame)

    def on_stage(name: str) -> None:
        if name == stage:
            os.kill(os.getpid(), sig)

    return on_stage


def suite_environment(**options: Any) -> Environment:
    """``Environment.from_os`` with the suite's key cost and, when the process environment asks
    (CRASH_VAR, CRASH_SIGNAL_VAR), death by a signal at an export stage."""
    env = Environment.from_os(**options)
    env.scrypt_log_n = int(os.environ.get(SCRYPT_VAR, TEST_SCRYPT_LOG_N))
    stage = os.environ.get(CRASH_VAR)
    if stage:
        env.on_stage = _die_at(stage, os.environ.get(CRASH_SIGNAL_VAR, "SIGKILL"))
    return env


class Runner(CliRunner):
    """click's CliRunner, building the Environment with :func:`suite_environment`."""

    def invoke(self, cli: Any, args: Any = None, **kwargs: Any) -> Result:  # type: ignore[override]
        kwargs.setdefault("obj", suite_environment)
        return super().invoke(cli, args, **kwargs)
