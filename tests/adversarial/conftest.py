"""Fixtures of the adversarial suite and its one-line summary.

The summary (``adversarial: N cases, M external vectors, K fuzz executions, F failures``) is
printed once at the end of the session.  Tests report their counts with ``record_property``
(``adversarial_case``, ``external_vectors``, ``fuzz_executions``); a plugin registered here
adds them up over the adversarial tests and tests/system/test_fuzz_parsers.py.  Under pytest-xdist
the controller never loads this conftest, so each worker writes its totals to a shared file
and the last worker to finish prints the sum.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import sys
import tempfile
from pathlib import Path
from typing import Any

import pytest

from tests.adversarial.harness import Ctx

_SCOPE = (
    "tests/adversarial/",
    "tests/system/test_fuzz_parsers.py",
    # External vectors run elsewhere in the suite count in the summary too.
    "tests/_crypto/test_cctv_age.py",
    "tests/_crypto/test_wycheproof.py",
    "tests/bundle/test_go_zip_vectors.py",
    "tests/_crypto/test_sshsig.py::test_wycheproof",
)
_KEYS = ("cases", "vectors", "fuzz", "failures")


@pytest.fixture
def ctx(world: Any) -> Ctx:
    return Ctx(world)


class _Summary:
    def __init__(self) -> None:
        self.totals = dict.fromkeys(_KEYS, 0)

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        if not report.nodeid.startswith(_SCOPE):
            return
        if report.failed:
            self.totals["failures"] += 1
        if report.when != "call":
            return
        for name, value in report.user_properties:
            if name == "adversarial_case" and report.outcome in ("passed", "failed"):
                self.totals["cases"] += 1
            elif name == "external_vectors":
                self.totals["vectors"] += int(str(value))
            elif name == "fuzz_executions":
                self.totals["fuzz"] += int(str(value))

    @staticmethod
    def line(totals: dict[str, int]) -> str:
        return (
            f"adversarial: {totals['cases']} cases, {totals['vectors']} external vectors, "
            f"{totals['fuzz']} fuzz executions, {totals['failures']} failures"
        )

    @pytest.hookimpl(trylast=True)
    def pytest_sessionfinish(self, session: pytest.Session) -> None:
        workerinput = getattr(session.config, "workerinput", None)
        if workerinput is None or workerinput.get("adversarial_summary_on_controller"):
            return  # printed by pytest_terminal_summary
        shared = Path(tempfile.gettempdir()) / f"securexport-adv-{workerinput['testrunuid']}"
        shared.mkdir(exist_ok=True)
        with open(shared / "lock", "a+") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            (shared / f"{workerinput['workerid']}.json").write_text(json.dumps(self.totals))
            done = sorted(shared.glob("gw*.json"))
            if len(done) < int(workerinput.get("workercount", 1)):
                return
            totals = dict.fromkeys(_KEYS, 0)
            for path in done:
                for key, value in json.loads(path.read_text()).items():
                    totals[key] += value
            print("\n" + self.line(totals), file=sys.__stderr__, flush=True)
            for path in shared.iterdir():
                with contextlib.suppress(OSError):
                    path.unlink()
        with contextlib.suppress(OSError):
            shared.rmdir()

    @pytest.hookimpl(optionalhook=True)
    def pytest_configure_node(self, node: Any) -> None:
        """xdist controller (it loaded this conftest too): it prints, the workers need not."""
        node.workerinput["adversarial_summary_on_controller"] = True

    def pytest_terminal_summary(self, terminalreporter: Any) -> None:
        if not hasattr(terminalreporter.config, "workerinput"):
            terminalreporter.write_line(self.line(self.totals))


def pytest_configure(config: pytest.Config) -> None:
    if not config.pluginmanager.has_plugin("securexport-adversarial-summary"):
        config.pluginmanager.register(_Summary(), "securexport-adversarial-summary")
