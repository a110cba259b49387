"""Test-only hooks: die with SIGKILL at a named stage of an export; a cheaper key-file KDF.

``SECUREXPORT_TEST_CRASH_AT=<stage>`` makes :func:`crash_point` kill the process, with no
cleanup, no ``finally`` and no rollback, exactly as ``kill -9`` or a power cut would.  It is
read here and nowhere else; without the variable every call is a dictionary lookup.  The crash
tests (tests/test_ledger_crash.py) run the CLI with it and check what is left on disk.

Stages, in the order an export reaches them (DESIGN.md §8.3):

``after-count``           the source is read and counted (rows wait in the encrypted
                          spool); nothing written yet
``after-payload``         payload.zip is written and fsynced (as ``<out>.payload.partial``)
``after-manifest-sign``   the manifest is built and signed
``ledger-before-commit``  inside the ledger's append transaction, before COMMIT
``after-ledger-commit``   the entry is committed; the bundle is not written yet
``before-rename``         the bundle is complete as ``<out>.partial``, not yet renamed
"""

from __future__ import annotations

import os
import signal

CRASH_VAR = "SECUREXPORT_TEST_CRASH_AT"
STAGES = (
    "after-count",
    "after-payload",
    "after-manifest-sign",
    "ledger-before-commit",
    "after-ledger-commit",
    "before-rename",
)


def crash_point(stage: str) -> None:
    """SIGKILL this process if ``$SECUREXPORT_TEST_CRASH_AT`` names ``stage`` (tests only)."""
    if os.environ.get(CRASH_VAR) == stage:
        os.kill(os.getpid(), signal.SIGKILL)


SCRYPT_VAR = "SECUREXPORT_TEST_SCRYPT_LOG_N"


def scrypt_log_n(default: int) -> int:
    """The scrypt work factor for new key files: ``default`` (2^18, fixed and documented),
    unless the test suite lowers it with ``$SECUREXPORT_TEST_SCRYPT_LOG_N`` (10 … 18) to run
    thousands of key operations quickly.  Not a setting: nothing documents it to users."""
    raw = os.environ.get(SCRYPT_VAR)
    if raw is not None and raw.isascii() and raw.isdigit() and 10 <= int(raw) <= default:
        return int(raw)
    return default
