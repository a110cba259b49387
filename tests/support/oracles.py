"""Independent checkers built for the test session: Go's ``golang.org/x/mod/sumdb/note`` and
``sumdb/tlog`` as tests/oracles/go/sxoracle.go (issue 13).

The program is built once per session (by the xdist worker that runs its tests) in GOPATH mode
from Debian's ``golang-golang-x-mod-dev`` (/usr/share/gocode), with no module proxy and a
throwaway build cache: no network, and nothing written outside the session's temporary directory.
Without ``go`` the tests skip, except under ``make test`` or CI, where
scripts/install-system-deps.sh installs it and a missing Go is a failure.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

import pytest

GO_ORACLE_SOURCE = Path(__file__).resolve().parent.parent / "oracles" / "go"
GOCODE = Path("/usr/share/gocode")  # golang-golang-x-mod-dev's GOPATH
_INSTALL = "scripts/install-system-deps.sh installs golang-go and golang-golang-x-mod-dev"


@dataclass(frozen=True)
class GoOracle:
    """The built ``sxoracle`` program: ``check`` for what must verify, ``refuse`` for what must
    not (see the program's comment for the commands)."""

    binary: Path

    def run(self, *args: str | Path) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [str(self.binary), *map(str, args)], capture_output=True, text=True, timeout=60
        )

    def check(self, *args: str | Path) -> str:
        """The one-line summary of a valid artefact; fails the test if Go refuses it."""
        done = self.run(*args)
        assert done.returncode == 0, f"Go refused {args[0]}: {done.stderr.strip()}"
        return done.stdout.strip()

    def refuse(self, *args: str | Path) -> str:
        """Go's reason for refusing an invalid artefact; fails the test if Go accepts it."""
        done = self.run(*args)
        assert done.returncode == 1, f"Go accepted {args[0]} (exit {done.returncode}): {done}"
        return done.stderr.strip()


def _go_missing() -> None:
    if os.environ.get("CI") or os.environ.get("SECUREXPORT_VECTORS"):  # CI, make test
        pytest.fail(f"go is missing: {_INSTALL}")
    pytest.skip(f"go is not installed ({_INSTALL})")


def build_go_oracle(out_dir: Path) -> GoOracle:
    go = shutil.which("go")
    if go is None:
        _go_missing()
    env = {k: v for k, v in os.environ.items() if not k.startswith("GO")}
    env.update(
        GO111MODULE="off",  # GOPATH mode: imports come from Debian's source tree
        GOPATH=str(GOCODE),
        GOPROXY="off",
        GOTOOLCHAIN="local",
        GOCACHE=str(out_dir / "go-cache"),
        CGO_ENABLED="0",
    )
    binary = out_dir / "sxoracle"
    done = subprocess.run(
        [str(go), "build", "-o", str(binary), "."],
        cwd=GO_ORACLE_SOURCE,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    if done.returncode != 0:
        pytest.fail(f"building the Go oracle failed ({_INSTALL}):\n{done.stderr}")
    return GoOracle(binary)
