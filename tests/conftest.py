"""Shared fixtures.  Topic-specific helpers live in tests/support/<topic>.py."""

from __future__ import annotations

import io
import os
from datetime import UTC, datetime
from pathlib import Path

import pytest

from securexport.environment import Environment, Home
from tests.support.pg import postgres_server  # noqa: F401  (session fixture)

# Fast key-file KDF for tests only; production files use the fixed, documented log_n = 18.
# The suite passes it to every Environment it builds (tests/support/cli.py for the CLI).
TEST_SCRYPT_LOG_N = 10


@pytest.fixture
def vectors_dir() -> Path:
    """External vectors fetched by scripts/fetch-vectors.sh (make vectors); never committed."""
    root = os.environ.get("SECUREXPORT_VECTORS") or str(
        Path(__file__).resolve().parent.parent / ".cache" / "vectors"
    )
    return Path(root)


@pytest.fixture
def passphrase_file(tmp_path: Path) -> Path:
    path = tmp_path / "passphrase.txt"
    path.write_bytes(b"correct horse battery staple\n")
    path.chmod(0o600)
    return path


@pytest.fixture
def home(tmp_path: Path) -> Home:
    return Home(tmp_path / "home").ensure()


@pytest.fixture
def env(home: Home, passphrase_file: Path) -> Environment:
    """A non-interactive environment with a passphrase file and a fixed clock."""
    return Environment(
        home=home,
        now=lambda: datetime(2026, 6, 1, 12, 0, 0, tzinfo=UTC),
        stdin_isatty=False,
        stderr=io.StringIO(),
        interactive=False,
        passphrase_file=str(passphrase_file),
        keystore="file",
        scrypt_log_n=TEST_SCRYPT_LOG_N,
    )


@pytest.fixture(scope="session")
def offenders_db_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A small synthetic offender database, made once per test session (never modified)."""
    from securexport.synthetic import make_offenders_db

    path = tmp_path_factory.mktemp("db") / "offenders.db"
    make_offenders_db(path, people=3000, seed=7)
    return path


@pytest.fixture
def world(tmp_path: Path, offenders_db_template: Path, passphrase_file: Path):  # type: ignore[no-untyped-def]
    """Owner, exporter, recipient, auditor and outsider, each with a home; a pseudonym key."""
    from tests.support.world import build_world

    return build_world(tmp_path, offenders_db_template, passphrase_file)


@pytest.fixture
def forks(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """The pids of the processes forked from this (the test's) process (securexport.parallel)."""
    made: list[int] = []
    real = os.fork

    def counting_fork() -> int:
        pid = real()
        if pid:
            made.append(pid)
        return pid

    monkeypatch.setattr(os, "fork", counting_fork)
    return made
