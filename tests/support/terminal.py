"""Run a program with a pseudo-terminal as its terminal, answering its prompts (works headless,
no real TTY needed): for ``age``, which reads a passphrase only from a terminal, and for the
CLI's own prompts (passphrases, y/N confirmations)."""

from __future__ import annotations

import os
import pty
import re
import select
import signal
import time
from collections.abc import Sequence


def run_on_pty(
    argv: list[str],
    answers: Sequence[bytes] | bytes,
    prompt: re.Pattern[bytes],
    *,
    timeout: float = 60.0,
) -> tuple[int, bytes]:
    """``argv`` with a pty as stdin, stdout, stderr and controlling terminal.  Each match of
    ``prompt`` in the transcript is answered with the next of ``answers`` (the same answer
    every time when ``answers`` is one bytes value).  Returns (exit code, the transcript)."""
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
            prompts = len(prompt.findall(bytes(transcript)))
            while answered < prompts and (isinstance(answers, bytes) or answered < len(answers)):
                answer = answers if isinstance(answers, bytes) else answers[answered]
                os.write(master, answer + b"\n")
                answered += 1
    finally:
        os.close(master)
    _, status = os.waitpid(pid, 0)
    return os.waitstatus_to_exitcode(status), bytes(transcript)
