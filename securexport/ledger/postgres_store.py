"""A team ledger in PostgreSQL, and the ledger URL that names a store.

:class:`PostgresStore` (a team ledger, opened from a ``postgresql+psycopg://`` URL) reuses the
SQLite store's queries and overrides only what differs: the connection, the write lock (a
transaction-scoped advisory lock in place of ``BEGIN IMMEDIATE``), the column types, the
triggers, and streaming.  :func:`store_for_url` opens the store a ledger URL names, refusing a
password inside it.
"""

from __future__ import annotations

import contextlib
import hashlib
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from securexport.errors import FileError, UsageError
from securexport.ledger.sqlite_store import (
    APPEND_ONLY,
    APPEND_ONLY_MESSAGE,
    SCHEMA,
    SqliteStore,
)
from securexport.ledger.store import BUSY_TIMEOUT_SECONDS, SCHEMA_VERSION, Entry, first_line

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
    """:data:`SCHEMA` in PostgreSQL's types: the same tables, columns and constraints."""
    text = re.sub(r"\)\s*WITHOUT ROWID", ")", SCHEMA)
    text = re.sub(r"\bBLOB\b", "BYTEA", text)
    text = re.sub(r"\bINTEGER\b", "BIGINT", text)
    return [statement for statement in text.split(";") if statement.strip()]


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


class PostgresStore(SqliteStore):
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
                f"cannot open the ledger {display}: {first_line(exc)}",
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
        tables = re.findall(r"CREATE TABLE IF NOT EXISTS (\w+)", SCHEMA)
        if all(self._has_table(table) for table in tables):
            return  # so that roles without CREATE can open an existing ledger
        for statement in _pg_schema():
            self.conn.execute(statement)
        self.conn.execute(
            f"CREATE OR REPLACE FUNCTION {_PG_APPEND_ONLY_FUNCTION}() RETURNS trigger "
            f"LANGUAGE plpgsql AS $$ BEGIN RAISE EXCEPTION '{APPEND_ONLY_MESSAGE}'; END $$"
        )
        for table in APPEND_ONLY:
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


def refuse_password(url: Any) -> None:
    texts = [url.database or "", url.host or ""]
    for key, value in url.query.items():
        if key.lower() in ("password", "sslpassword"):
            raise UsageError(
                "a password inside the ledger URL is refused", hint=_PG_CREDENTIALS_HINT
            )
        texts.extend([value] if isinstance(value, str) else list(value))
    if url.password is not None or any(_PASSWORD_IN_TEXT.search(t) for t in texts):
        raise UsageError("a password inside the ledger URL is refused", hint=_PG_CREDENTIALS_HINT)


def _require_psycopg() -> None:
    """Refuse a PostgreSQL ledger URL, naming the extra, when psycopg (the postgres extra) is
    absent (data.source refuses a PostgreSQL source in the same words)."""
    try:
        import psycopg  # noqa: F401
    except ImportError:
        raise UsageError(
            "PostgreSQL support is not installed: pip install 'securexport[postgres]'"
        ) from None


def store_for_url(url: str) -> SqliteStore:
    """The store a ledger URL names: ``postgresql+psycopg://user@host/db`` or ``sqlite:///path``."""
    import sqlalchemy as sa

    usage = "use postgresql+psycopg://USER@HOST/DATABASE (or sqlite:///path/to/ledger.db)"
    try:
        parsed = sa.engine.make_url(url)
    except Exception:  # noqa: BLE001 - the parser's message would echo the URL
        raise UsageError("the ledger URL is not a valid database URL", hint=usage) from None
    refuse_password(parsed)
    if parsed.drivername in ("sqlite", "sqlite+pysqlite"):
        database = parsed.database or ""
        if parsed.query or not database or database == ":memory:" or database.startswith("file:"):
            raise UsageError("a sqlite ledger URL needs a file path and no options", hint=usage)
        return SqliteStore(Path(database).expanduser())
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
    _require_psycopg()
    return PostgresStore(params, display)
