"""The command-line error contract (DESIGN.md §7, §11), asserted the same way everywhere."""

from __future__ import annotations

from typing import Any


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
