"""The suite's last line, ``adversarial: N cases, M external vectors, K fuzz executions, F
failures`` (the ``_Summary`` plugin in conftest.py), is printed once and counts right.

Each test runs a small pytest in a subprocess: two real cases from this repository, and a
handful of stand-in tests whose counts are known (with and without pytest-xdist, which takes
another path through the plugin).
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from tests.adversarial.harness import REPO

LINE = re.compile(
    r"^adversarial: (\d+) cases, (\d+) external vectors, (\d+) fuzz executions, (\d+) failures$",
    re.MULTILINE,
)

# Stand-ins with known counts: 3 cases (a failed case still counts; a skipped one does not),
# 7 external vectors, 4 + 11 fuzz executions, 2 failures (one in a test, one in a fixture).
FAKE_CASES = """
import pytest


def test_case_one(record_property):
    record_property("adversarial_case", "X-one")


def test_case_with_vectors(record_property):
    record_property("adversarial_case", "X-two")
    record_property("external_vectors", 7)


def test_fuzz(record_property):
    record_property("fuzz_executions", 4)
    record_property("fuzz_executions", 11)


def test_case_failing(record_property):
    record_property("adversarial_case", "X-three")
    assert False, "fails on purpose"


def test_case_skipped(record_property):
    record_property("adversarial_case", "X-four")
    pytest.skip("vectors absent")


@pytest.fixture
def broken():
    raise RuntimeError("setup fails on purpose")


def test_setup_error(broken):
    pass
"""

# Outside the summary's scope (not under tests/adversarial/): counted nowhere.
ELSEWHERE = """
def test_not_counted(record_property):
    record_property("adversarial_case", "X-elsewhere")
    record_property("external_vectors", 100)
    record_property("fuzz_executions", 100)
"""


def _pytest(args: list[str], cwd: Path) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTEST_", "SECUREXPORT_"))}
    env["PYTHONPATH"] = str(REPO)
    return subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )


def _summaries(proc: subprocess.CompletedProcess[str]) -> list[tuple[int, ...]]:
    found = LINE.findall(proc.stdout) + LINE.findall(proc.stderr)
    return [tuple(int(n) for n in groups) for groups in found]


def test_summary_line_of_two_real_cases() -> None:
    ids = ["A-bundle-missing", "A-bundle-is-directory"]
    args = [f"tests/adversarial/test_a_archive.py::test_case[{i}]" for i in ids]
    proc = _pytest(args, REPO)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "2 passed" in proc.stdout
    assert _summaries(proc) == [(2, 0, 0, 0)], proc.stdout + proc.stderr


@pytest.fixture
def stand_ins(tmp_path: Path) -> Path:
    (tmp_path / "tests" / "adversarial").mkdir(parents=True)
    (tmp_path / "tests" / "adversarial" / "test_fake_cases.py").write_text(
        textwrap.dedent(FAKE_CASES)
    )
    (tmp_path / "tests" / "other").mkdir()
    (tmp_path / "tests" / "other" / "test_elsewhere.py").write_text(textwrap.dedent(ELSEWHERE))
    return tmp_path


@pytest.mark.parametrize("workers", [None, "2"], ids=["in-process", "xdist"])
def test_summary_line_counts_cases_vectors_fuzz_and_failures(
    stand_ins: Path, workers: str | None
) -> None:
    args = ["-p", "tests.adversarial.conftest", "--rootdir", str(stand_ins), "tests"]
    if workers:
        args = ["-n", workers, *args]
    proc = _pytest(args, stand_ins)
    output = proc.stdout + proc.stderr
    assert proc.returncode == 1, output  # the two failures on purpose
    assert re.search(r"1 failed, 4 passed, 1 skipped, 1 error", proc.stdout), output
    assert _summaries(proc) == [(3, 7, 15, 2)], output
