"""The export register: an append-only RFC 6962 Merkle log of signed manifests (SQLite or PG).

Each export appends one entry whose Merkle leaf is the exact signed manifest bytes.  Every append
runs in one ``BEGIN IMMEDIATE`` transaction that re-checks the approval's run count, inserts the
entry, extends the compact range and the node table (O(log n) hashes), and stores a new
checkpoint signed with the ledger's own Ed25519 key as a C2SP signed note.  The bundle's
``receipt.tlog`` is a ``c2sp.org/tlog-proof@v1`` proof against that checkpoint, checked offline by
:func:`verify_receipt`.

Triggers refuse UPDATE and DELETE on entries, nodes, checkpoints and metadata; they stop
accidents, not an owner of the file, which is what :meth:`Ledger.verify_all` is for: it recomputes
the whole tree from the leaves and checks every signed checkpoint against it.

The SQL lives in the store classes only.  :class:`_SqliteStore` (``$SECUREXPORT_HOME/ledger.db``)
holds the portable queries; :class:`_PostgresStore` (a team ledger, opened from a
``postgresql+psycopg://`` URL) reuses them and overrides only what differs: the connection, the
write lock (a transaction-scoped advisory lock in place of ``BEGIN IMMEDIATE``), the column
types, the triggers, and streaming.  :func:`open_ledger` chooses between them.

Crash safety (tests/system/test_ledger_crash.py kills an export at each stage): an append either
commits whole or leaves no trace, and a bundle is renamed into place only after its entry is
committed, so no bundle exists without its entry.  The converse can happen: an entry whose
bundle was never written (``ledger list`` shows it; ``ledger verify`` accepts it) means the run
died after logging, leaving ``<out>.partial`` files that the next export to that name reports.
Such a run used one run of its approval.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import hashlib
import json
import os
import re
import secrets
import socket
import sqlite3
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any, Protocol

from securexport._crypto import merkle
from securexport._crypto.ed25519 import SigningKey, public_key_bytes
from securexport._crypto.note import Checkpoint, make_verifier_key, open_note, sign_note
from securexport.errors import (
    FileError,
    KeyUnavailableError,
    PolicyError,
    SecurexportError,
    UsageError,
    VerificationError,
)
from securexport.limits import DEFAULT_LIMITS
from securexport.policy.times import rfc3339

SCHEMA_VERSION = "securexport.ledger/1"
KIND_EXPORT = "export"
TLOG_PROOF_HEADER = "c2sp.org/tlog-proof@v1"
BUSY_TIMEOUT_SECONDS = 60.0
MAX_PROOF_HASHES = 64
_ORIGIN_RE = re.compile(r"[\x21-\x2a\x2c-\x7e]{1,200}")  # printable ASCII, no space, no '+'
_INDEX_RE = re.compile(r"0|[1-9][0-9]{0,19}")


class LedgerVerificationError(VerificationError):
    """The ledger failed verification; ``index`` names the first bad entry when there is one."""

    def __init__(self, message: str, *, index: int | None = None, hint: str | None = None) -> None:
        super().__init__(message, hint=hint)
        self.index = index


def new_origin() -> str:
    """A fresh, unique log origin: ``securexport.local/<16 hex>``."""
    return f"securexport.local/{secrets.token_hex(8)}"


def ledger_verifier_key(name: str, private_key: SigningKey) -> str:
    """The signed-note verifier key (``name+keyid+base64``) of a ledger signing key."""
    return make_verifier_key(name, public_key_bytes(private_key))


# --------------------------------------------------------------------------------------------
# Receipts: c2sp.org/tlog-proof@v1
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Receipt:
    """An offline proof that one leaf is in the log: index, inclusion proof, signed checkpoint."""

    index: int
    proof: tuple[bytes, ...]
    checkpoint: str  # the signed checkpoint note, verbatim
    extra: bytes | None = None  # opaque and unauthenticated (tlog-proof "extra" line)

    def to_bytes(self) -> bytes:
        lines = [TLOG_PROOF_HEADER]
        if self.extra is not None:
            lines.append("extra " + base64.b64encode(self.extra).decode())
        lines.append(f"index {self.index}")
        lines.extend(base64.b64encode(h).decode() for h in self.proof)
        return ("\n".join(lines) + "\n\n" + self.checkpoint).encode()


def _strict_b64(text: str) -> bytes:
    raw = base64.b64decode(text, validate=True)
    if base64.b64encode(raw).decode() != text:
        raise ValueError("non-canonical base64")
    return raw


def parse_receipt(data: bytes, *, max_bytes: int = DEFAULT_LIMITS.max_receipt_bytes) -> Receipt:
    """Parse a ``c2sp.org/tlog-proof@v1`` receipt strictly (no signature checks here)."""
    bad = VerificationError("malformed ledger receipt", hint="the receipt.tlog file is damaged")
    if len(data) > max_bytes:
        raise VerificationError(f"ledger receipt larger than {max_bytes} bytes")
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise bad from exc
    head, sep, checkpoint = text.partition("\n\n")
    if not sep or not checkpoint:
        raise bad
    lines = head.split("\n")
    if lines[0] != TLOG_PROOF_HEADER or len(lines) < 2:
        raise bad
    rest = lines[1:]
    extra: bytes | None = None
    try:
        if rest[0].startswith("extra "):
            extra = _strict_b64(rest[0][len("extra ") :])
            rest = rest[1:]
        if not rest or not rest[0].startswith("index "):
            raise bad
        index_text = rest[0][len("index ") :]
        if not _INDEX_RE.fullmatch(index_text):
            raise bad
        hashes = [_strict_b64(line) for line in rest[1:]]
    except (binascii.Error, ValueError) as exc:
        raise bad from exc
    if len(hashes) > MAX_PROOF_HASHES or any(len(h) != merkle.HASH_SIZE for h in hashes):
        raise bad
    return Receipt(int(index_text), tuple(hashes), checkpoint, extra)


@dataclass(frozen=True)
class ReceiptVerdict:
    """What a verified receipt proves: the leaf is entry ``index`` under ``checkpoint``."""

    index: int
    checkpoint: Checkpoint
    checkpoint_note: str = field(repr=False)

    @property
    def origin(self) -> str:
        return self.checkpoint.origin

    @property
    def size(self) -> int:
        return self.checkpoint.size

    @property
    def root_hash(self) -> bytes:
        return self.checkpoint.root_hash


def verify_receipt(
    receipt_bytes: bytes,
    leaf: bytes,
    verifier_keys: Sequence[str],
    *,
    origin: str | None = None,
    max_bytes: int = DEFAULT_LIMITS.max_receipt_bytes,
) -> ReceiptVerdict:
    """Check that ``leaf`` (the signed manifest bytes) is logged; return index and checkpoint.

    The checkpoint must be signed by a trusted key whose name is the checkpoint's origin (and the
    origin must be ``origin`` when given), and the inclusion proof must lead from
    ``leaf_hash(leaf)`` at the receipt's index to the checkpoint's root.  Pure: bytes in, verdict
    out; any failure is a :class:`VerificationError`.
    """
    receipt = parse_receipt(receipt_bytes, max_bytes=max_bytes)
    opened = open_note(receipt.checkpoint, verifier_keys)
    checkpoint = Checkpoint.parse(opened.text)
    if checkpoint.origin not in opened.verified_by:
        raise VerificationError(
            "the receipt's checkpoint is not signed by the log it names",
            hint="trust the ledger key of the exporter's installation (trust add --role ledger)",
        )
    if origin is not None and checkpoint.origin != origin:
        raise VerificationError("the receipt comes from another ledger")
    if not merkle.verify_inclusion(
        merkle.leaf_hash(leaf), receipt.index, checkpoint.size, receipt.proof, checkpoint.root_hash
    ):
        raise VerificationError("the receipt does not prove that this manifest is in the ledger")
    return ReceiptVerdict(receipt.index, checkpoint, receipt.checkpoint)


# --------------------------------------------------------------------------------------------
# Entries and reports
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Entry:
    """One logged export.  ``leaf`` is the exact signed manifest bytes (the Merkle leaf data).

    Only ``leaf`` is covered by the tree; the other columns are an index over it, so a
    ``check_entry`` callback must cross-check them against the manifest.
    """

    index: int
    kind: str
    export_id: str
    approval_id: str
    approval_sha256: str
    run: int
    created_at: str
    leaf: bytes
    signature: bytes
    leaf_hash: bytes


@dataclass(frozen=True)
class VerifyReport:
    size: int
    root_hash: bytes
    origin: str
    entries_checked: int
    checkpoints_checked: int
    latest_checkpoint: str | None = field(repr=False)


# --------------------------------------------------------------------------------------------
# The SQL layer (SQLite).  Everything dialect-specific is in this class.
# --------------------------------------------------------------------------------------------

_SCHEMA = """
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
_APPEND_ONLY = ("meta", "entries", "nodes", "checkpoints", "attachments")

# Bundle status (attachments, outside the tree): who committed an entry, and whether its
# bundle was then written.  An entry whose writer is gone and whose bundle was never recorded
# is an orphan: the export was interrupted between the commit and the rename (DESIGN.md §8.3).
WRITER = "writer.json"
BUNDLE_OUTCOME = "bundle.json"  # {"status": "written" | "failed", "at": …}, once per export
BUNDLE_STATES = ("written", "missing", "in-progress", "unconfirmed")
APPEND_ONLY_MESSAGE = "the securexport ledger is append-only"


class _Cursor(Protocol):
    def fetchone(self) -> Any: ...
    def fetchall(self) -> list[Any]: ...
    def fetchmany(self, size: int = ...) -> list[Any]: ...


class _Connection(Protocol):
    """What the stores use of a DB-API connection: ``sqlite3.Connection`` or :class:`_PgConn`."""

    def execute(self, sql: str, parameters: Any = ..., /) -> _Cursor: ...
    def executemany(self, sql: str, parameters: Any, /) -> Any: ...
    def close(self) -> None: ...


class _SqliteStore:
    """The ledger's tables on one SQLite connection (autocommit; explicit transactions).

    The queries are portable SQL with ``?`` placeholders: :class:`_PostgresStore` reuses them.
    """

    conn: _Connection
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
            raise FileError(f"cannot open the ledger {path}: {_first_line(exc)}") from exc

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
        for statement in _SCHEMA.split(";"):
            if statement.strip():
                self.conn.execute(statement)
        for table in _APPEND_ONLY:
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


# --------------------------------------------------------------------------------------------
# The SQL layer (PostgreSQL): a team ledger that several installations append to.
# --------------------------------------------------------------------------------------------

#: The transaction-scoped advisory lock every PostgreSQL write takes first: the first 8 bytes of
#: sha256(SCHEMA_VERSION) as a signed bigint (a constant, so it never collides by accident).
_PG_LOCK_KEY = int.from_bytes(
    hashlib.sha256(SCHEMA_VERSION.encode()).digest()[:8], "big", signed=True
)
_PG_PAGE_ROWS = 256
_PG_APPEND_ONLY_FUNCTION = "securexport_ledger_append_only"
_PG_CREDENTIALS_HINT = (
    "put the password in PGPASSFILE (~/.pgpass) or a PostgreSQL service file (PGSERVICEFILE)"
)
_PASSWORD_IN_TEXT = re.compile(r"password\s*=", re.IGNORECASE)


def _pg_schema() -> list[str]:
    """:data:`_SCHEMA` in PostgreSQL's types: the same tables, columns and constraints."""
    text = re.sub(r"\)\s*WITHOUT ROWID", ")", _SCHEMA)
    text = re.sub(r"\bBLOB\b", "BYTEA", text)
    text = re.sub(r"\bINTEGER\b", "BIGINT", text)
    return [statement for statement in text.split(";") if statement.strip()]


def _first_line(exc: BaseException) -> str:
    lines = str(exc).strip().splitlines()
    first = lines[0] if lines else type(exc).__name__
    # SQLite reports a full disk (or a file size limit) as one of these two.
    if first in ("disk I/O error", "database or disk is full"):
        return f"{first} (is the disk full or failing?)"
    return first


class _PgConn:
    """A psycopg (3) connection in autocommit mode that takes the SQLite store's ``?`` SQL."""

    def __init__(self, raw: Any) -> None:
        self.raw = raw
        self._translated: dict[str, str] = {}

    def _sql(self, sql: str) -> str:
        found = self._translated.get(sql)
        if found is None:
            found = self._translated[sql] = sql.replace("%", "%%").replace("?", "%s")
        return found

    def execute(self, sql: str, parameters: Any = None, /) -> Any:
        if not parameters:
            return self.raw.execute(sql)
        return self.raw.execute(self._sql(sql), parameters)

    def executemany(self, sql: str, parameters: Any, /) -> Any:
        with self.raw.cursor() as cursor:
            cursor.executemany(self._sql(sql), parameters)

    def close(self) -> None:
        self.raw.close()


class _PostgresStore(_SqliteStore):
    """The ledger's tables in a PostgreSQL database, with the guarantees of the SQLite store.

    - Every write transaction first takes one transaction-scoped advisory lock
      (``pg_advisory_xact_lock``) and runs at READ COMMITTED: writers queue on it as they do on
      SQLite's ``BEGIN IMMEDIATE``, and every statement after it sees all earlier appends, so
      the run-count re-check and the tree state are current.  The lock exists before the tables
      do, so concurrent first opens create the schema once.  Waits are bounded by
      ``lock_timeout`` (the SQLite busy timeout), commits by ``synchronous_commit = on``.
    - Reads that must agree (prove, verify) share one ``REPEATABLE READ, READ ONLY`` snapshot.
    - Triggers refuse UPDATE, DELETE and TRUNCATE on the append-only tables.  As on SQLite they
      stop accidents, not the database's owner or a superuser: :meth:`Ledger.verify_all` does.
    - Entries and checkpoints are read in key order, a page of rows per query: flat memory.

    Roles: whoever opens an empty database creates the schema; after that, the exporters' roles
    need only SELECT and INSERT on the tables and UPDATE on ``tree_state``.
    """

    def __init__(self, params: dict[str, str], display: str) -> None:
        import psycopg
        from psycopg.conninfo import make_conninfo

        self.display = display
        self.errors = (psycopg.Error,)
        ours = (
            f"-c lock_timeout={int(BUSY_TIMEOUT_SECONDS * 1000)} -c synchronous_commit=on "
            "-c TimeZone=UTC"
        )
        theirs = params.pop("options", "")
        params.setdefault("application_name", "securexport-ledger")
        try:
            conninfo = make_conninfo(options=f"{theirs} {ours}".strip(), **params)
            raw = psycopg.connect(conninfo, autocommit=True)
        except psycopg.Error as exc:
            raise FileError(
                f"cannot open the ledger {display}: {_first_line(exc)}",
                hint="check host, port and database; " + _PG_CREDENTIALS_HINT,
            ) from exc
        self.conn = _PgConn(raw)

    def _rollback(self) -> None:
        with contextlib.suppress(*self.errors):  # a lost connection must not hide the cause
            self.conn.execute("ROLLBACK")

    @contextlib.contextmanager
    def write_transaction(self) -> Iterator[None]:
        """READ COMMITTED plus the ledger's advisory lock, taken before anything is read."""
        self.conn.execute("BEGIN ISOLATION LEVEL READ COMMITTED")
        try:
            self.conn.execute(f"SELECT pg_advisory_xact_lock({_PG_LOCK_KEY})")
            yield
        except BaseException:
            self._rollback()
            raise
        self.conn.execute("COMMIT")

    @contextlib.contextmanager
    def read_transaction(self) -> Iterator[None]:
        self.conn.execute("BEGIN ISOLATION LEVEL REPEATABLE READ, READ ONLY")
        try:
            yield
        finally:
            self._rollback()

    def _has_table(self, name: str) -> bool:
        row = self.conn.execute("SELECT to_regclass(?::text) IS NOT NULL", (name,)).fetchone()
        return bool(row[0])

    def _has_trigger(self, table: str, name: str) -> bool:
        row = self.conn.execute(
            "SELECT count(*) FROM pg_trigger WHERE tgrelid = to_regclass(?::text) AND tgname = ?",
            (table, name),
        ).fetchone()
        return bool(row[0])

    def create_schema(self) -> None:
        tables = re.findall(r"CREATE TABLE IF NOT EXISTS (\w+)", _SCHEMA)
        if all(self._has_table(table) for table in tables):
            return  # so that roles without CREATE can open an existing ledger
        for statement in _pg_schema():
            self.conn.execute(statement)
        self.conn.execute(
            f"CREATE OR REPLACE FUNCTION {_PG_APPEND_ONLY_FUNCTION}() RETURNS trigger "
            f"LANGUAGE plpgsql AS $$ BEGIN RAISE EXCEPTION '{APPEND_ONLY_MESSAGE}'; END $$"
        )
        for table in _APPEND_ONLY:
            for action, each in (("UPDATE", "ROW"), ("DELETE", "ROW"), ("TRUNCATE", "STATEMENT")):
                name = f"{table}_no_{action.lower()}"
                if not self._has_trigger(table, name):
                    self.conn.execute(
                        f"CREATE TRIGGER {name} BEFORE {action} ON {table} FOR EACH {each} "
                        f"EXECUTE FUNCTION {_PG_APPEND_ONLY_FUNCTION}()"
                    )

    def checkpoints(self) -> Iterator[tuple[int, bytes, str]]:
        after = -1
        while True:
            rows = self.conn.execute(
                "SELECT size, root_hash, note FROM checkpoints WHERE size > ? ORDER BY size "
                "LIMIT ?",
                (after, _PG_PAGE_ROWS),
            ).fetchall()
            for row in rows:
                yield int(row[0]), bytes(row[1]), str(row[2])
            if len(rows) < _PG_PAGE_ROWS:
                return
            after = int(rows[-1][0])

    def entries(self, start: int, limit: int | None) -> Iterator[Entry]:
        remaining = limit
        while remaining is None or remaining > 0:
            page = _PG_PAGE_ROWS if remaining is None else min(_PG_PAGE_ROWS, remaining)
            rows = self.conn.execute(
                f"SELECT {self._ENTRY_COLUMNS} FROM entries WHERE idx >= ? ORDER BY idx LIMIT ?",  # noqa: S608
                (start, page),
            ).fetchall()
            for row in rows:
                yield self._entry(row)
            if len(rows) < page:
                return
            start = int(rows[-1][0]) + 1
            if remaining is not None:
                remaining -= len(rows)


def _refuse_password(url: Any) -> None:
    texts = [url.database or "", url.host or ""]
    for key, value in url.query.items():
        if key.lower() in ("password", "sslpassword"):
            raise UsageError(
                "a password inside the ledger URL is refused", hint=_PG_CREDENTIALS_HINT
            )
        texts.extend([value] if isinstance(value, str) else list(value))
    if url.password is not None or any(_PASSWORD_IN_TEXT.search(t) for t in texts):
        raise UsageError("a password inside the ledger URL is refused", hint=_PG_CREDENTIALS_HINT)


def _store_for_url(url: str) -> _SqliteStore:
    """The store a ledger URL names: ``postgresql+psycopg://user@host/db`` or ``sqlite:///path``."""
    import sqlalchemy as sa

    usage = "use postgresql+psycopg://USER@HOST/DATABASE (or sqlite:///path/to/ledger.db)"
    try:
        parsed = sa.engine.make_url(url)
    except Exception:  # noqa: BLE001 - the parser's message would echo the URL
        raise UsageError("the ledger URL is not a valid database URL", hint=usage) from None
    _refuse_password(parsed)
    if parsed.drivername in ("sqlite", "sqlite+pysqlite"):
        database = parsed.database or ""
        if parsed.query or not database or database == ":memory:" or database.startswith("file:"):
            raise UsageError("a sqlite ledger URL needs a file path and no options", hint=usage)
        return _SqliteStore(Path(database).expanduser())
    if parsed.drivername not in ("postgresql", "postgresql+psycopg"):
        raise UsageError(f"unsupported ledger URL scheme {parsed.drivername!r}", hint=usage)
    params: dict[str, str] = {}
    for key, value in parsed.query.items():
        if not isinstance(value, str):
            raise UsageError(f"the ledger URL gives the option {key!r} twice")
        params[key] = value
    for key, given in (
        ("host", parsed.host),
        ("port", parsed.port),
        ("user", parsed.username),
        ("dbname", parsed.database),
    ):
        if given:
            params[key] = str(given)
    where = params.get("host", "")
    if "port" in params:
        where += ":" + params["port"]
    user = params["user"] + "@" if "user" in params else ""
    display = f"postgresql://{user}{where}/{params.get('dbname', '')}"
    return _PostgresStore(params, display)


class _StoreNodes:
    """A :class:`merkle.NodeSource` over the node table."""

    def __init__(self, store: _SqliteStore) -> None:
        self._store = store

    def node(self, level: int, index: int) -> bytes:
        found = self._store.node(level, index)
        if found is None:
            raise LedgerVerificationError(
                f"the ledger's node table lacks node {level}/{index}",
                hint="run 'securexport ledger verify'",
            )
        return found


# --------------------------------------------------------------------------------------------
# The ledger
# --------------------------------------------------------------------------------------------


class Ledger:
    """The export register.  Open with :meth:`open`; one instance per process/thread."""

    def __init__(self, store: _SqliteStore, origin: str) -> None:
        self._store = store
        self.origin = origin
        self.location = store.display  # a path or a URL without credentials

    @classmethod
    def open(cls, target: Path | str, *, origin: str | None = None) -> Ledger:
        """Open (creating if needed) the ledger at ``target``: a :class:`Path` (SQLite) or a URL,
        ``postgresql+psycopg://USER@HOST/DB`` (a team ledger; a password in it is refused) or
        ``sqlite:///path``.  A new ledger gets ``origin`` or a fresh
        ``securexport.local/<16 hex>``; an existing ledger keeps its origin."""
        if origin is not None and not _ORIGIN_RE.fullmatch(origin):
            raise ValueError(f"invalid ledger origin {origin!r}")
        store = _SqliteStore(target) if isinstance(target, Path) else _store_for_url(target)
        path = store.display
        try:
            with store.write_transaction():
                store.create_schema()
                version = store.get_meta("schema")
                if version is None:
                    store.put_meta("schema", SCHEMA_VERSION)
                elif version != SCHEMA_VERSION:
                    raise FileError(f"{path} is not a {SCHEMA_VERSION} ledger ({version})")
                stored = store.get_meta("origin")
                if stored is None:
                    stored = origin or new_origin()
                    store.put_meta("origin", stored)
                elif origin is not None and origin != stored:
                    raise VerificationError(
                        f"the ledger at {path} has origin {stored}, not {origin}"
                    )
        except store.errors as exc:
            store.close()
            raise FileError(f"cannot open the ledger {path}: {_first_line(exc)}") from exc
        except BaseException:
            store.close()
            raise
        return cls(store, stored)

    def close(self) -> None:
        self._store.close()

    def __enter__(self) -> Ledger:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- writing -----------------------------------------------------------------------------

    def append_export(
        self,
        manifest: bytes,
        signature: bytes,
        *,
        export_id: str,
        approval_id: str,
        approval_sha256: str,
        run: int,
        max_runs: int | None,
        signer: SigningKey,
        now: datetime,
        signer_name: str | None = None,
        attachments: Mapping[str, bytes] | None = None,
        renumber: Callable[[int], tuple[bytes, bytes]] | None = None,
        before_commit: Callable[[], None] | None = None,
    ) -> Receipt:
        """Log one export and return its receipt, in one ``BEGIN IMMEDIATE`` transaction.

        ``before_commit`` is called inside the transaction, just before COMMIT (the crash tests
        stop the process there).

        ``attachments`` (name → bytes: the approval and its signature, the entity list for
        breach response) are stored beside the entry in the same transaction; they are not
        part of the tree.

        ``signer`` is the ledger's Ed25519 key; checkpoints are signed under ``signer_name``,
        which defaults to (and, for receipts to verify, must be) the ledger's origin.

        ``run`` is the run number the caller checked before exporting (``runs_used + 1``).  If
        another export of the same approval was logged meanwhile, ``renumber(new_run)`` gives
        the manifest and signature re-made for the next free run, inside the transaction (still
        within ``max_runs``); without it this refuses (PolicyError) and nothing is written.
        Costs O(log n) hashes and node reads.
        """
        created_at = rfc3339(now)
        signer_name = self.origin if signer_name is None else signer_name
        verifier_key = make_verifier_key(signer_name, public_key_bytes(signer))
        try:
            with self._store.write_transaction():
                receipt = self._append_locked(
                    manifest,
                    signature,
                    export_id=export_id,
                    approval_id=approval_id,
                    approval_sha256=approval_sha256,
                    run=run,
                    max_runs=max_runs,
                    signer=signer,
                    signer_name=signer_name,
                    verifier_key=verifier_key,
                    created_at=created_at,
                    renumber=renumber,
                )
                for name, data in (attachments or {}).items():
                    self._store.insert_attachment(export_id, name, data)
                if before_commit is not None:
                    before_commit()
        except self._store.errors as exc:
            raise FileError(f"cannot write to the ledger: {_first_line(exc)}") from exc
        return receipt

    def _append_locked(
        self,
        manifest: bytes,
        signature: bytes,
        *,
        export_id: str,
        approval_id: str,
        approval_sha256: str,
        run: int,
        max_runs: int | None,
        signer: SigningKey,
        signer_name: str,
        verifier_key: str,
        created_at: str,
        renumber: Callable[[int], tuple[bytes, bytes]] | None = None,
    ) -> Receipt:
        store = self._store
        stored_key = store.get_meta("verifier_key")
        if stored_key is None:
            store.put_meta("verifier_key", verifier_key)
        elif stored_key != verifier_key:
            raise KeyUnavailableError(
                "this is not the ledger's signing key",
                hint=f"the ledger's checkpoints are signed by {stored_key}",
            )
        used = store.runs_used(approval_sha256)
        if max_runs is not None and used >= max_runs:
            raise PolicyError(f"approval {approval_id} has used all {max_runs} of its runs")
        if run != used + 1 and renumber is not None:
            run = used + 1
            manifest, signature = renumber(run)
        if run != used + 1:
            raise PolicyError(
                f"run number {run} of approval {approval_id} is stale "
                f"({used} runs are logged), retry",
                hint="another export of this approval was logged meanwhile; run the export again",
            )
        if store.has_export_id(export_id):
            raise PolicyError(f"export {export_id} is already in the ledger")

        compact = store.tree_state()
        index = compact.size
        leaf = merkle.leaf_hash(manifest)
        new_nodes: list[tuple[int, int, bytes]] = []
        compact.append(leaf, on_node=lambda lvl, idx, h: new_nodes.append((lvl, idx, h)))
        store.insert_entry(
            Entry(
                index=index,
                kind=KIND_EXPORT,
                export_id=export_id,
                approval_id=approval_id,
                approval_sha256=approval_sha256,
                run=run,
                created_at=created_at,
                leaf=manifest,
                signature=signature,
                leaf_hash=leaf,
            )
        )
        store.insert_nodes(new_nodes)
        store.put_tree_state(compact)
        root_hash = compact.root()
        checkpoint = Checkpoint(self.origin, compact.size, root_hash)
        note = sign_note(checkpoint.to_text(), signer_name, signer)
        store.insert_checkpoint(compact.size, root_hash, note, created_at)
        proof = merkle.inclusion_proof(_StoreNodes(store), index, compact.size)
        if not merkle.verify_inclusion(leaf, index, compact.size, proof, root_hash):
            raise LedgerVerificationError("the ledger's node table is inconsistent", index=index)
        return Receipt(index, tuple(proof), note)

    # -- reading -----------------------------------------------------------------------------

    def verifier_key(self, private_key: SigningKey) -> str:
        """The note verifier key for this ledger's checkpoints, signed with ``private_key``."""
        return ledger_verifier_key(self.origin, private_key)

    def pinned_verifier_key(self) -> str | None:
        """The verifier key recorded by the first append (None for an empty ledger)."""
        return self._store.get_meta("verifier_key")

    def runs_used(self, approval_sha256: str) -> int:
        """How many exports of the approval with this SHA-256 are logged."""
        return self._store.runs_used(approval_sha256)

    def size(self) -> int:
        return self._store.tree_state().size

    def entries(self, *, start: int = 0, limit: int | None = None) -> Iterator[Entry]:
        """Entries in log order, streamed."""
        return self._store.entries(start, limit)

    def entry(self, key: int | str) -> Entry:
        """One entry by index or export id."""
        found = (
            self._store.entry_by_index(key)
            if isinstance(key, int)
            else self._store.entry_by_export_id(key)
        )
        if found is None:
            raise VerificationError(f"{key} is not in the ledger")
        return found

    def latest_checkpoint(self) -> str | None:
        """The newest signed checkpoint note, or None for an empty ledger."""
        latest = self._store.latest_checkpoint()
        return None if latest is None else latest[1]

    def attachment(self, export_id: str, name: str) -> bytes | None:
        """An attachment stored beside an entry (None if there is none by that name)."""
        return self._store.attachment(export_id, name)

    # -- bundle status: was the bundle of each logged export written? -----------------------

    def record_bundle_outcome(self, export_id: str, written: bool, now: datetime) -> None:
        """Record (not in the tree) whether the bundle of a committed export was written."""
        record = {"status": "written" if written else "failed", "at": rfc3339(now)}
        try:
            with self._store.write_transaction():
                self._store.insert_attachment(
                    export_id, BUNDLE_OUTCOME, json.dumps(record, sort_keys=True).encode()
                )
        except self._store.errors as exc:
            raise FileError(f"cannot write to the ledger: {_first_line(exc)}") from exc

    def bundle_states(
        self, approval_sha256: str | None = None, *, start: int = 0, limit: int | None = None
    ) -> list[BundleState]:
        """Whether each logged export's bundle was written (all, one approval's, or a range)."""
        stop = 2**62 if limit is None else start + limit
        with self._store.read_transaction():
            records = self._store.bundle_records(approval_sha256, start, stop)
        return [
            BundleState(index, run, export_id, _bundle_state(outcome, writer))
            for index, run, export_id, writer, outcome in records
        ]

    def checkpoint_at(self, size: int) -> str:
        """The signed checkpoint note at tree size ``size``."""
        found = self._store.checkpoint_at(size)
        if found is None:
            raise VerificationError(f"the ledger has no checkpoint at size {size}")
        return found[1]

    def consistency_proof(self, old_size: int, new_size: int) -> list[bytes]:
        """RFC 6962 PROOF(old_size, D[0:new_size]) from the node table."""
        if not 0 <= old_size <= new_size <= self.size():
            raise VerificationError(
                f"no consistency proof from size {old_size} to {new_size} "
                f"(the ledger holds {self.size()} entries)"
            )
        return merkle.consistency_proof(_StoreNodes(self._store), old_size, new_size)

    def prove_at(self, export_id: str, size: int) -> Receipt:
        """A receipt for ``export_id`` against the stored checkpoint at ``size``."""
        store = self._store
        with store.read_transaction():
            found = store.entry_by_export_id(export_id)
            checkpoint = store.checkpoint_at(size)
            if found is None or checkpoint is None or found.index >= size:
                raise VerificationError(
                    f"export {export_id} is not in the ledger's checkpoint at size {size}"
                )
            proof = merkle.inclusion_proof(_StoreNodes(store), found.index, size)
        if not merkle.verify_inclusion(
            merkle.leaf_hash(found.leaf), found.index, size, proof, checkpoint[0]
        ):
            raise LedgerVerificationError(
                f"entry {found.index} does not match the checkpoint at size {size}",
                index=found.index,
                hint="run 'securexport ledger verify'",
            )
        return Receipt(found.index, tuple(proof), checkpoint[1])

    def prove(self, export_id: str) -> Receipt:
        """A fresh receipt for ``export_id`` against the latest checkpoint."""
        store = self._store
        with store.read_transaction():
            found = store.entry_by_export_id(export_id)
            latest = store.latest_checkpoint()
            if found is None or latest is None:
                raise VerificationError(f"export {export_id} is not in the ledger")
            size, note = latest
            checkpoint = Checkpoint.parse(note[: note.rfind("\n\n") + 1])
            proof = merkle.inclusion_proof(_StoreNodes(store), found.index, size)
        if not merkle.verify_inclusion(
            merkle.leaf_hash(found.leaf), found.index, size, proof, checkpoint.root_hash
        ):
            raise LedgerVerificationError(
                f"entry {found.index} does not match the latest checkpoint",
                index=found.index,
                hint="run 'securexport ledger verify'",
            )
        return Receipt(found.index, tuple(proof), note)

    def verify_all(
        self,
        verifier_key: str,
        *,
        check_entry: Callable[[Entry], None] | None = None,
    ) -> VerifyReport:
        """Recompute the whole tree from the leaves and check everything against it.

        Checks, in log order: indexes have no gaps; each stored leaf hash and node matches the
        recomputed one; every checkpoint is signed by ``verifier_key`` (whose name must be the
        origin), names this origin, and has the recomputed root at its size; run numbers of each
        approval count 1, 2, 3, …; the last checkpoint covers every entry; ``check_entry`` (the
        caller's per-entry checks: manifest signature, approval policy, that the indexed columns
        match the manifest) passes.  The first failure raises :class:`LedgerVerificationError`
        naming the entry's index.
        """
        store = self._store
        with store.read_transaction():
            return self._verify_locked(store, verifier_key, check_entry)

    def _verify_locked(
        self,
        store: _SqliteStore,
        verifier_key: str,
        check_entry: Callable[[Entry], None] | None,
    ) -> VerifyReport:
        # Streams entries and checkpoints side by side: memory stays O(log n + approvals).
        compact = merkle.CompactRange()
        runs: dict[str, int] = {}
        latest_note: str | None = None
        latest_size = -1
        checked = checkpoints_checked = 0
        new_nodes: list[tuple[int, int, bytes]] = []

        def collect(level: int, idx: int, h: bytes) -> None:
            new_nodes.append((level, idx, h))

        def fail(index: int | None, message: str) -> LedgerVerificationError:
            where = f"entry {index}: " if index is not None else ""
            return LedgerVerificationError(
                f"ledger verification failed at {where}{message}", index=index
            )

        def check_checkpoint(size: int, stored_root: bytes, note: str) -> None:
            index = size - 1 if size else None
            try:
                opened = open_note(note, [verifier_key])
                checkpoint = Checkpoint.parse(opened.text)
            except VerificationError as exc:
                raise fail(index, f"the checkpoint at size {size} does not verify ({exc})") from exc
            if checkpoint.origin != self.origin or checkpoint.origin not in opened.verified_by:
                raise fail(index, f"the checkpoint at size {size} is for another log")
            if checkpoint.size != size or checkpoint.root_hash != stored_root:
                raise fail(index, f"the checkpoint at size {size} was altered")
            if stored_root != compact.root():
                raise fail(index, f"the tree no longer matches the checkpoint at size {size}")

        pending = store.checkpoints()
        next_cp = next(pending, None)

        def consume_checkpoints() -> None:
            nonlocal next_cp, latest_note, latest_size, checkpoints_checked
            while next_cp is not None and next_cp[0] == compact.size:
                check_checkpoint(*next_cp)
                latest_size, latest_note = next_cp[0], next_cp[2]
                checkpoints_checked += 1
                next_cp = next(pending, None)

        consume_checkpoints()  # a checkpoint of the empty tree, if any
        for entry in store.entries(0, None):
            index = compact.size
            if entry.index != index:
                raise fail(index, "missing (the entries have a gap)")
            recomputed = merkle.leaf_hash(entry.leaf)
            if entry.leaf_hash != recomputed:
                raise fail(index, "the manifest bytes do not match their logged hash")
            new_nodes.clear()
            compact.append(recomputed, on_node=collect)
            for level, idx, h in new_nodes:
                if store.node(level, idx) != h:
                    raise fail(index, f"the node table disagrees with the leaves at {level}/{idx}")
            if entry.kind == KIND_EXPORT:
                expected_run = runs.get(entry.approval_sha256, 0) + 1
                if entry.run != expected_run:
                    raise fail(
                        index,
                        f"run {entry.run} of approval {entry.approval_id} "
                        f"should be run {expected_run}",
                    )
                runs[entry.approval_sha256] = expected_run
            consume_checkpoints()
            if check_entry is not None:
                try:
                    check_entry(entry)
                except SecurexportError as exc:
                    raise fail(index, exc.message) from exc
            checked += 1
        size = compact.size
        if next_cp is not None:
            raise fail(
                size,
                f"missing (a checkpoint covers {next_cp[0]} entries, only {size} are present)",
            )
        if size and latest_size != size:
            raise fail(size - 1, "not covered by any signed checkpoint")
        if store.count_nodes() != 2 * size - size.bit_count():
            raise fail(None, "the node table holds nodes that no entry explains")
        if store.tree_state() != compact:
            raise fail(None, "the stored tree state does not match the entries")
        return VerifyReport(
            size=size,
            root_hash=compact.root(),
            origin=self.origin,
            entries_checked=checked,
            checkpoints_checked=checkpoints_checked,
            latest_checkpoint=latest_note,
        )


def open_ledger(home_ledger_path: Path, url: str | None, *, origin: str | None = None) -> Ledger:
    """The installation's export register: the team ledger at ``url`` when one is configured
    (``--ledger URL`` or ``[ledger] url`` in config.toml), else ``ledger.db`` in the home."""
    return Ledger.open(url if url else home_ledger_path, origin=origin)


def _boot_id() -> str:
    try:
        return Path("/proc/sys/kernel/random/boot_id").read_text().strip()
    except OSError:
        return ""


def _start_time(pid: int) -> str:
    """The process's start time in clock ticks since boot ("" if unknown): tells pid reuse."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return ""
    return stat.rsplit(")", 1)[-1].split()[19]


def writer_record() -> bytes:
    """This process, as recorded beside the entry it commits (:data:`WRITER`)."""
    pid = os.getpid()
    record = {
        "host": socket.gethostname(),
        "boot_id": _boot_id(),
        "pid": pid,
        "start": _start_time(pid),
    }
    return json.dumps(record, sort_keys=True).encode()


@dataclass(frozen=True)
class BundleState:
    index: int
    run: int
    export_id: str
    state: str  # one of BUNDLE_STATES


def _bundle_state(outcome: Any, writer: Any) -> str:
    if outcome is not None:
        with contextlib.suppress(ValueError, TypeError):
            status = json.loads(bytes(outcome)).get("status")
            if status in ("written", "failed"):
                return "written" if status == "written" else "missing"
    try:
        record = json.loads(bytes(writer)) if writer is not None else None
        if not isinstance(record, dict):
            return "unconfirmed"  # logged before bundle status was recorded
        if record.get("host") != socket.gethostname() or record.get("boot_id") != _boot_id():
            return "unconfirmed"  # another machine, or before a reboot: cannot tell here
        pid = int(record["pid"])
    except (ValueError, KeyError, TypeError):
        return "unconfirmed"
    if not record.get("start"):
        return "unconfirmed"  # no /proc here: a live process cannot be told from a dead one
    return "in-progress" if _start_time(pid) == record["start"] else "missing"
