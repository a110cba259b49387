"""Drive the ``age`` CLI from tests.  ``age`` reads a passphrase only from a terminal, so
passphrase prompts are answered through a pseudo-terminal (works headless, no real TTY needed).
"""

from __future__ import annotations

import os
import pty
import select
import signal
import subprocess
import time
from pathlib import Path


def run_with_tty(argv: list[str], answer: bytes, *, timeout: float = 60.0) -> tuple[int, bytes]:
    """Run ``argv`` with a pty as its controlling terminal; answer every passphrase prompt.

    Returns (exit code, everything the program wrote to the terminal).
    """
    pid, master = pty.fork()
    if pid == 0:  # child: the pty is already stdin/stdout/stderr and the controlling tty
        try:
            os.execvp(argv[0], argv)
        finally:
            os._exit(127)
    transcript = bytearray()
    answered = 0
    deadline = time.monotonic() + timeout
    try:
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                os.kill(pid, signal.SIGKILL)
                raise TimeoutError(f"{argv[0]} did not finish: {bytes(transcript)!r}")
            ready, _, _ = select.select([master], [], [], remaining)
            if not ready:
                continue
            try:
                chunk = os.read(master, 4096)
            except OSError:  # EIO: the child closed the terminal
                break
            if not chunk:
                break
            transcript += chunk
            if transcript.lower().count(b"passphrase") > answered:
                answered += 1
                os.write(master, answer + b"\n")
    finally:
        os.close(master)
    _, status = os.waitpid(pid, 0)
    return os.waitstatus_to_exitcode(status), bytes(transcript)


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
