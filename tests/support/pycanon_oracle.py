"""pycanon, the k-anonymity oracle of tests/data/test_privacy.py, in its own environment.

pycanon pins numpy, pandas and scipy, so it lives in .venv-pycanon (``make pycanon-env``,
hash-locked by requirements/pycanon.txt), not in the suite's environment: one process of that
environment's Python runs tests/oracles/pycanon/k_anonymity.py for the session and answers a
table per JSON line.  Without the environment the tests skip, except under ``make test`` or CI,
where ``make test`` makes it and its absence is a failure.
"""

from __future__ import annotations

import json
import os
import subprocess
from collections.abc import Sequence
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PYCANON_PYTHON = ROOT / ".venv-pycanon" / "bin" / "python"
WORKER = ROOT / "tests" / "oracles" / "pycanon" / "k_anonymity.py"


class Pycanon:
    """``anonymity.k_anonymity`` of pycanon, asked over a pipe."""

    def __init__(self, python: Path = PYCANON_PYTHON) -> None:
        self._process = subprocess.Popen(
            [str(python), "-I", str(WORKER)],  # -I: nothing of the suite's environment leaks in
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
            encoding="utf-8",
        )

    def k_anonymity(self, rows: Sequence[Sequence[str | None]], columns: Sequence[str]) -> int:
        """The k that pycanon finds for ``rows`` (None is a missing value) over ``columns``."""
        assert self._process.stdin is not None and self._process.stdout is not None
        request = {"columns": list(columns), "rows": [list(row) for row in rows]}
        self._process.stdin.write(json.dumps(request) + "\n")
        self._process.stdin.flush()
        line = self._process.stdout.readline()
        if not line:
            raise RuntimeError(f"the pycanon worker died (exit {self._process.wait()})")
        answer = json.loads(line)
        if not isinstance(answer, int):
            raise RuntimeError(f"pycanon failed: {answer}")
        return answer

    def close(self) -> None:
        if self._process.stdin is not None:
            self._process.stdin.close()
        self._process.wait(timeout=30)
        if self._process.stdout is not None:
            self._process.stdout.close()


def start_pycanon() -> Pycanon:
    if not PYCANON_PYTHON.exists():
        reason = f"{PYCANON_PYTHON.parent.parent.name} is missing: make pycanon-env makes it"
        if os.environ.get("CI") or os.environ.get("SECUREXPORT_VECTORS"):  # CI, make test
            pytest.fail(reason)
        pytest.skip(reason)
    return Pycanon()
