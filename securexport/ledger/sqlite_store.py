"""The ledger's tables in SQLite (``$SECUREXPORT_HOME/ledger.db``): every query the ledger makes.

The SQL lives in the store classes only.  :class:`SqliteStore` holds the portable queries (``?``
placeholders); :class:`~securexport.ledger.postgres_store.PostgresStore` reuses them and
overrides only what differs.

Triggers refuse UPDATE and DELETE on entries, nodes, checkpoints, attachments and metadata
(:data:`APPEND_ONLY`; only the tree state is rewritten, once per append); they stop accidents,
not an owner of the file, which is what :meth:`~securexport.ledger.log.Ledger.verify_all` is for.
"""

from __future__ import annotations

import contextlib
import os
import sqlite3
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

from securexport._crypto import merkle
from securexport.errors import FileError
from securexport.ledger.store import (
    BUNDLE_OUTCOME,
    BUSY_TIMEOUT_SECONDS,
    KIND_EXPORT,
    WRITER,
    Connection,
    Entry,
    LedgerVerificationError,
    first_line,
)

SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (
    key   TEXT PRIMARY KEY,
    value TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS entries (
    idx             INTEGER PRIMARY KEY CHECK (idx >= 0),
    kind            TEXT    NOT NULL,
    export_id       TEXT    NOT NULL UNIQUE,
    approval_id     TEXT    NOT NULL,
    approval_sha256 TEXT    NOT NULL,
    run             INTEGER NOT NULL CHECK (run >= 1),
    created_at      TEXT    NOT NULL,
    leaf            BLOB    NOT NULL,
    signature       BLOB    NOT NULL,
    leaf_hash       BLOB    NOT NULL
);
CREATE UNIQUE INDEX IF NOT EXISTS entries_approval_run ON entries (approval_sha256, run);
CREATE TABLE IF NOT EXISTS nodes (
    level INTEGER NOT NULL,
    idx   INTEGER NOT NULL,
    hash  BLOB    NOT NULL,
    PRIMARY KEY (level, idx)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS tree_state (
    id      INTEGER PRIMARY KEY CHECK (id = 1),
    size    INTEGER NOT NULL,
    compact BLOB    NOT NULL
);
CREATE TABLE IF NOT EXISTS checkpoints (
    size       INTEGER PRIMARY KEY,
    root_hash  BLOB NOT NULL,
    note       TEXT NOT NULL,
    created_at TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS attachments (
    export_id TEXT NOT NULL REFERENCES entries (export_id),
    name      TEXT NOT NULL,
    data      BLOB NOT NULL,
    PRIMARY KEY (export_id, name)
);
"""
APPEND_ONLY = ("meta", "entries", "nodes", "checkpoints", "attachments")
APPEND_ONLY_MESSAGE = "the securexport ledger is append-only"


class SqliteStore:
    """The ledger's tables on one SQLite connection (autocommit; explicit transactions).

    The queries are portable SQL with ``?`` placeholders: :class:`PostgresStore` reuses them.
    """

    conn: Connection
    #: The driver's exceptions, which the ledger reports as :class:`FileError`.
    errors: tuple[type[Exception], ...] = (sqlite3.Error,)

    def __init__(self, path: Path) -> None:
        self.display = str(path)
        try:
            if not path.exists():
                fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_NOFOLLOW, 0o600)
                os.close(fd)
            self.conn = sqlite3.connect(
                str(path), timeout=BUSY_TIMEOUT_SECONDS, isolation_level=None
            )
            self.conn.execute(f"PRAGMA busy_timeout = {int(BUSY_TIMEOUT_SECONDS * 1000)}")
            self.conn.execute("PRAGMA journal_mode = WAL")
            self.conn.execute("PRAGMA synchronous = FULL")
            self.conn.execute("PRAGMA foreign_keys = ON")
        except (OSError, sqlite3.Error) as exc:
            # A full disk shows up here as "disk I/O error" from the WAL switch.
            raise FileError(f"cannot open the ledger {path}: {first_line(exc)}") from exc

    def close(self) -> None:
        self.conn.close()

    @contextlib.contextmanager
    def write_transaction(self) -> Iterator[None]:
        """``BEGIN IMMEDIATE``: take the write lock first, so concurrent appends serialise."""
        self.conn.execute("BEGIN IMMEDIATE")
        try:
            yield
        except BaseException:
            self.conn.execute("ROLLBACK")
            raise
        self.conn.execute("COMMIT")

    @contextlib.contextmanager
    def read_transaction(self) -> Iterator[None]:
        """One consistent snapshot for several reads."""
        self.conn.execute("BEGIN")
        try:
            yield
        finally:
            self.conn.execute("COMMIT")

    def create_schema(self) -> None:
        for statement in SCHEMA.split(";"):
            if statement.strip():
                self.conn.execute(statement)
        for table in APPEND_ONLY:
            for action in ("UPDATE", "DELETE"):
                self.conn.execute(
                    f"CREATE TRIGGER IF NOT EXISTS {table}_no_{action.lower()} "
                    f"BEFORE {action} ON {table} "
                    f"BEGIN SELECT RAISE(ABORT, '{APPEND_ONLY_MESSAGE}'); END"
                )

    def get_meta(self, key: str) -> str | None:
        row = self.conn.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
        return None if row is None else str(row[0])

    def put_meta(self, key: str, value: str) -> None:
        self.conn.execute("INSERT INTO meta (key, value) VALUES (?, ?)", (key, value))

    def tree_state(self) -> merkle.CompactRange:
        row = self.conn.execute("SELECT size, compact FROM tree_state WHERE id = 1").fetchone()
        if row is None:
            return merkle.CompactRange()
        try:
            compact = merkle.CompactRange.from_bytes(bytes(row[1]))
        except ValueError as exc:
            raise LedgerVerificationError("the ledger's tree state is damaged") from exc
        if compact.size != row[0]:
            raise LedgerVerificationError("the ledger's tree state is damaged")
        return compact

    def put_tree_state(self, compact: merkle.CompactRange) -> None:
        self.conn.execute(
            "INSERT INTO tree_state (id, size, compact) VALUES (1, ?, ?) "
            "ON CONFLICT (id) DO UPDATE SET size = excluded.size, compact = excluded.compact",
            (compact.size, compact.to_bytes()),
        )

    def runs_used(self, approval_sha256: str) -> int:
        # Runs are numbered 1, 2, … without gaps (each append checks run == used + 1, and the
        # unique index on (approval_sha256, run) forbids repeats), so the highest run is the
        # count: one index seek, where COUNT(*) walked every run of the approval.
        row = self.conn.execute(
            "SELECT run FROM entries WHERE approval_sha256 = ? AND kind = ? "
            "ORDER BY run DESC LIMIT 1",
            (approval_sha256, KIND_EXPORT),
        ).fetchone()
        return 0 if row is None else int(row[0])

    def has_export_id(self, export_id: str) -> bool:
        row = self.conn.execute(
            "SELECT 1 FROM entries WHERE export_id = ?", (export_id,)
        ).fetchone()
        return row is not None

    def insert_entry(self, entry: Entry) -> None:
        self.conn.execute(
            "INSERT INTO entries (idx, kind, export_id, approval_id, approval_sha256, run, "
            "created_at, leaf, signature, leaf_hash) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (
                entry.index,
                entry.kind,
                entry.export_id,
                entry.approval_id,
                entry.approval_sha256,
                entry.run,
                entry.created_at,
                entry.leaf,
                entry.signature,
                entry.leaf_hash,
            ),
        )

    def insert_nodes(self, nodes: Sequence[tuple[int, int, bytes]]) -> None:
        self.conn.executemany("INSERT INTO nodes (level, idx, hash) VALUES (?, ?, ?)", nodes)

    def node(self, level: int, index: int) -> bytes | None:
        row = self.conn.execute(
            "SELECT hash FROM nodes WHERE level = ? AND idx = ?", (level, index)
        ).fetchone()
        return None if row is None else bytes(row[0])

    def count_nodes(self) -> int:
        return int(self.conn.execute("SELECT COUNT(*) FROM nodes").fetchone()[0])

    def insert_checkpoint(self, size: int, root_hash: bytes, note: str, created_at: str) -> None:
        self.conn.execute(
            "INSERT INTO checkpoints (size, root_hash, note, created_at) VALUES (?, ?, ?, ?)",
            (size, root_hash, note, created_at),
        )

    def insert_attachment(self, export_id: str, name: str, data: bytes) -> None:
        self.conn.execute(
            "INSERT INTO attachments (export_id, name, data) VALUES (?, ?, ?)",
            (export_id, name, data),
        )

    def attachment(self, export_id: str, name: str) -> bytes | None:
        row = self.conn.execute(
            "SELECT data FROM attachments WHERE export_id = ? AND name = ?", (export_id, name)
        ).fetchone()
        return None if row is None else bytes(row[0])

    def bundle_records(
        self, approval_sha256: str | None, start: int, stop: int
    ) -> list[tuple[int, int, str, Any, Any]]:
        """(index, run, export id, writer record, bundle outcome) per entry in [start, stop)."""
        # ``? IS NULL OR …``: one fixed statement for "all" and "one approval".
        rows = self.conn.execute(
            "SELECT e.idx, e.run, e.export_id, w.data, b.data FROM entries e "
            "LEFT JOIN attachments w ON w.export_id = e.export_id AND w.name = ? "
            "LEFT JOIN attachments b ON b.export_id = e.export_id AND b.name = ? "
            "WHERE (CAST(? AS TEXT) IS NULL OR e.approval_sha256 = ?) AND e.idx >= ? AND e.idx < ? "
            "ORDER BY e.idx",
            (WRITER, BUNDLE_OUTCOME, approval_sha256, approval_sha256, start, stop),
        ).fetchall()
        return [(int(r[0]), int(r[1]), str(r[2]), r[3], r[4]) for r in rows]

    def checkpoint_at(self, size: int) -> tuple[bytes, str] | None:
        row = self.conn.execute(
            "SELECT root_hash, note FROM checkpoints WHERE size = ?", (size,)
        ).fetchone()
        return None if row is None else (bytes(row[0]), str(row[1]))

    def latest_checkpoint(self) -> tuple[int, str] | None:
        row = self.conn.execute(
            "SELECT size, note FROM checkpoints ORDER BY size DESC LIMIT 1"
        ).fetchone()
        return None if row is None else (int(row[0]), str(row[1]))

    def checkpoints(self) -> Iterator[tuple[int, bytes, str]]:
        """All checkpoints in size order, streamed."""
        cursor = self.conn.execute("SELECT size, root_hash, note FROM checkpoints ORDER BY size")
        while rows := cursor.fetchmany(256):
            for row in rows:
                yield int(row[0]), bytes(row[1]), str(row[2])

    _ENTRY_COLUMNS = (
        "idx, kind, export_id, approval_id, approval_sha256, run, created_at, leaf, signature, "
        "leaf_hash"
    )

    @staticmethod
    def _entry(row: Any) -> Entry:
        return Entry(
            index=int(row[0]),
            kind=str(row[1]),
            export_id=str(row[2]),
            approval_id=str(row[3]),
            approval_sha256=str(row[4]),
            run=int(row[5]),
            created_at=str(row[6]),
            leaf=bytes(row[7]),
            signature=bytes(row[8]),
            leaf_hash=bytes(row[9]),
        )

    def entries(self, start: int, limit: int | None) -> Iterator[Entry]:
        cursor = self.conn.execute(
            f"SELECT {self._ENTRY_COLUMNS} FROM entries WHERE idx >= ? ORDER BY idx LIMIT ?",  # noqa: S608
            (start, -1 if limit is None else limit),
        )
        while rows := cursor.fetchmany(256):
            for row in rows:
                yield self._entry(row)

    def entry_by_index(self, index: int) -> Entry | None:
        row = self.conn.execute(
            f"SELECT {self._ENTRY_COLUMNS} FROM entries WHERE idx = ?",  # noqa: S608
            (index,),
        ).fetchone()
        return None if row is None else self._entry(row)

    def entry_by_export_id(self, export_id: str) -> Entry | None:
        row = self.conn.execute(
            f"SELECT {self._ENTRY_COLUMNS} FROM entries WHERE export_id = ?",  # noqa: S608
            (export_id,),
        ).fetchone()
        return None if row is None else self._entry(row)
