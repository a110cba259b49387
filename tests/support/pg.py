"""A throwaway PostgreSQL server for tests (DESIGN.md §9, §10).

PostgreSQL refuses to run as root and CI runs as root, so when we are root the server is
initialised and started as the ``postgres`` user (``runuser -u postgres --``) in a temporary
directory that user owns.  It listens only on a unix socket in that directory (no TCP), on a
port number chosen free, so parallel pytest-xdist workers each get their own server.

Use it from a test module or ``tests/conftest.py``::

    from tests.support.pg import postgres_server  # noqa: F401  (registers the fixture)

    @pytest.mark.postgres
    def test_something(postgres_server: PgServer) -> None:
        url = postgres_server.create_database("mydb")   # postgresql+psycopg://postgres@/mydb?...

Outside pytest: ``with running_postgres() as server: ...``.
"""

from __future__ import annotations

import contextlib
import glob
import os
import shutil
import socket
import subprocess
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

PG_USER = "postgres"


def find_pg_bindir() -> Path:
    """The newest Debian PostgreSQL bin directory (``/usr/lib/postgresql/<ver>/bin``)."""
    override = os.environ.get("SECUREXPORT_PG_BINDIR")
    if override:
        return Path(override)
    candidates = [
        Path(p) for p in glob.glob("/usr/lib/postgresql/*/bin") if Path(p, "initdb").exists()
    ]
    if not candidates:
        on_path = shutil.which("initdb")
        if on_path:
            return Path(on_path).parent
        raise RuntimeError("PostgreSQL server binaries not found (apt-get install postgresql)")
    return max(candidates, key=lambda p: int(p.parent.name) if p.parent.name.isdigit() else 0)


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _as_pg_user(argv: list[str]) -> list[str]:
    if os.geteuid() == 0:
        return ["runuser", "-u", PG_USER, "--", *argv]
    return argv


@dataclass
class PgServer:
    """A running throwaway server.  ``url()`` has no password: trust authentication."""

    root: Path
    bindir: Path
    port: int

    @property
    def data_dir(self) -> Path:
        return self.root / "data"

    @property
    def socket_dir(self) -> Path:
        return self.root

    def url(self, dbname: str = "postgres", user: str = PG_USER) -> str:
        return f"postgresql+psycopg://{user}@/{dbname}?host={self.socket_dir}&port={self.port}"

    def conninfo(self, dbname: str = "postgres") -> str:
        """A libpq conninfo string for psycopg.connect()."""
        return f"host={self.socket_dir} port={self.port} user={PG_USER} dbname={dbname}"

    def psql(self, sql: str, dbname: str = "postgres") -> str:
        out = subprocess.run(
            [
                str(self.bindir / "psql"),
                "-X",
                "-q",
                "-At",
                "-v",
                "ON_ERROR_STOP=1",
                "-h",
                str(self.socket_dir),
                "-p",
                str(self.port),
                "-U",
                PG_USER,
                "-d",
                dbname,
                "-c",
                sql,
            ],
            check=True,
            capture_output=True,
            text=True,
        )
        return out.stdout

    def create_database(self, name: str) -> str:
        """Create an empty database (name: letters, digits, underscores) and return its URL."""
        if not name.replace("_", "").isalnum():
            raise ValueError(f"bad database name {name!r}")
        self.psql(f'CREATE DATABASE "{name}"')
        return self.url(name)

    def stop(self) -> None:
        subprocess.run(
            _as_pg_user(
                [
                    str(self.bindir / "pg_ctl"),
                    "-D",
                    str(self.data_dir),
                    "-m",
                    "immediate",
                    "-w",
                    "stop",
                ]
            ),
            check=False,
            capture_output=True,
        )
        shutil.rmtree(self.root, ignore_errors=True)


def start_postgres() -> PgServer:
    """initdb + ``pg_ctl -w start`` in a fresh temp dir; the caller must ``stop()`` it."""
    bindir = find_pg_bindir()
    root = Path(tempfile.mkdtemp(prefix="securexport-pg-"))
    if os.geteuid() == 0:
        shutil.chown(root, user=PG_USER, group=None)
    root.chmod(0o700)
    server = PgServer(root=root, bindir=bindir, port=_free_port())
    try:
        subprocess.run(
            _as_pg_user(
                [
                    str(bindir / "initdb"),
                    "-D",
                    str(server.data_dir),
                    "-A",
                    "trust",
                    "-U",
                    PG_USER,
                    "-E",
                    "UTF8",
                    "--locale=C",
                    "--no-sync",
                ]
            ),
            check=True,
            capture_output=True,
        )
        options = (
            f"-p {server.port} -k {server.socket_dir} -c listen_addresses='' "
            "-c fsync=off -c synchronous_commit=off -c full_page_writes=off"
        )
        subprocess.run(
            _as_pg_user(
                [
                    str(bindir / "pg_ctl"),
                    "-D",
                    str(server.data_dir),
                    "-w",
                    "-t",
                    "60",
                    "-o",
                    options,
                    "-l",
                    str(root / "server.log"),
                    "start",
                ]
            ),
            check=True,
            capture_output=True,
        )
    except subprocess.CalledProcessError as exc:
        log = root / "server.log"
        detail = log.read_text(errors="replace")[-2000:] if log.exists() else ""
        server.stop()
        raise RuntimeError(f"could not start PostgreSQL: {exc.stderr!r}\n{detail}") from exc
    return server


@contextlib.contextmanager
def running_postgres() -> Iterator[PgServer]:
    server = start_postgres()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[PgServer]:
    """Session-scoped throwaway server (one per xdist worker)."""
    with running_postgres() as server:
        yield server
