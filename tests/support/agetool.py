"""Drive the ``age`` CLI from tests.  ``age`` reads a passphrase only from a terminal, so
passphrase prompts are answered through a pseudo-terminal (works headless, no real TTY needed).
"""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

from tests.support.terminal import run_on_pty

# Each mention of "passphrase" is one prompt (age says "Enter passphrase:" and so on).
_PASSPHRASE = re.compile(rb"(?i)passphrase")


def run_with_tty(argv: list[str], answer: bytes, *, timeout: float = 60.0) -> tuple[int, bytes]:
    """Run ``argv`` on a pty, answering every passphrase prompt with ``answer``.

    Returns (exit code, everything the program wrote to the terminal).
    """
    return run_on_pty(argv, answer, _PASSPHRASE, timeout=timeout)


def age_decrypt_with_passphrase(path: Path, passphrase: bytes, out: Path) -> tuple[int, bytes]:
    """``age -d -o out path``, typing ``passphrase`` at its prompt."""
    return run_with_tty(["age", "-d", "-o", str(out), str(path)], passphrase)


def age_decrypt_with_identity(path: Path, identity_file: Path) -> bytes:
    result = subprocess.run(
        ["age", "-d", "-i", str(identity_file), str(path)],
        capture_output=True,
        check=True,
        timeout=60,
    )
    return result.stdout
