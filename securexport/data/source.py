"""Read-only database access, query building from an approval, streaming (DESIGN.md §5, §8, §9).

The source is an SQLAlchemy URL: ``sqlite:///path.db`` or ``postgresql+psycopg://…``.  It is
always opened read-only:

- SQLite: ``file:…?mode=ro`` with ``uri=True`` (a missing file is an error, never created),
  ``PRAGMA query_only=1``, ``PRAGMA temp_store=MEMORY`` (an ORDER BY would otherwise spill
  plaintext to temp files) and ``PRAGMA trusted_schema=OFF``.  A snapshot is one explicit read
  transaction (``BEGIN`` … ``COMMIT``), which holds in WAL and rollback-journal mode alike.
- PostgreSQL: every session starts with ``default_transaction_read_only=on``, a
  ``statement_timeout`` and ``TimeZone=UTC``; a snapshot is one ``REPEATABLE READ, READ ONLY``
  transaction, and rows are streamed through a server-side (named) cursor.

Queries are built with SQLAlchemy Core from identifiers that the approval names *and* the live
schema has (always quoted), and every value is a bound parameter.  Errors from the driver are
wrapped in :class:`SourceError` with a one-line message that holds no values: only the kind of
failure (SQLite's error name, PostgreSQL's SQLSTATE).

A password inside the URL is refused: use ``PGPASSFILE``, a service file, or pass ``password=``
from the key store.
"""

from __future__ import annotations

import contextlib
import hashlib
import itertools
import json
import re
import sqlite3
import urllib.parse
from collections.abc import Callable, Generator, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time
from decimal import Decimal
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import sqlalchemy as sa
from sqlalchemy.engine import default as sa_default
from sqlalchemy.sql.elements import quoted_name

from securexport.errors import PolicyError, SourceError, UsageError

if TYPE_CHECKING:
    from securexport.policy.approval import Approval, Filter

Driver = Literal["sqlite", "postgresql"]
Row = tuple[Any, ...]

#: The normalised column types :meth:`Source.table_columns` reports.  Any type securexport does
#: not know (json, arrays, intervals, …) and SQLite columns without a declared type are "blob":
#: they can be selected, never filtered on.
COLUMN_TYPES = ("text", "integer", "real", "numeric", "date", "timestamp", "boolean", "blob")

_IDENT = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,62}")
_PASSWORD_IN_TEXT = re.compile(r"password\s*=", re.IGNORECASE)
_CREDENTIAL_KEYS = frozenset({"user", "password", "passfile", "sslpassword"})
_INT64 = (-(2**63), 2**63 - 1)
_SQLITE_BUSY_TIMEOUT_S = 30.0
_FINGERPRINT_VERSION = "securexport/schema/v1"
_DATABASE_ID_TABLE = "securexport_database"

_CREDENTIALS_HINT = (
    "use PGPASSFILE (~/.pgpass), a PostgreSQL service file (PGSERVICEFILE), or the keyring"
)

# Rendering: one neutral form for the manifest; both backends quote identifiers with '"'.
_RENDER_DIALECT = sa_default.DefaultDialect(paramstyle="named")
_PG_SNAPSHOT_ID = re.compile(r"[0-9A-F]{8}-[0-9A-F]{8}-[0-9]{1,10}")


# --------------------------------------------------------------------------------------------
# Errors


_UNDECODABLE = re.compile(r"Could not decode to UTF-8 column '([A-Za-z_][A-Za-z0-9_]{0,62})'")


def _describe_driver_error(exc: BaseException) -> str:
    """The kind of a driver failure, without the driver's text (which may quote values)."""
    inner = getattr(exc, "orig", None) or exc
    # sqlite3's decode failure quotes the bad text: keep only the column, an identifier.
    undecodable = _UNDECODABLE.match(str(inner))
    if undecodable:
        return f"column {undecodable.group(1)!r} holds text that is not valid UTF-8"
    name = getattr(inner, "sqlite_errorname", None)
    if name:
        return str(name)
    sqlstate = getattr(inner, "sqlstate", None)
    if sqlstate:
        return f"{type(inner).__name__} (SQLSTATE {sqlstate})"
    return type(inner).__name__


def _is_driver_error(exc: BaseException) -> bool:
    if isinstance(exc, sa.exc.SQLAlchemyError | sqlite3.Error):
        return True
    try:
        import psycopg
    except ImportError:  # the postgres extra is not installed: no psycopg error can arise
        return False
    return isinstance(exc, psycopg.Error)


@contextlib.contextmanager
def _driver_errors(context: str, hint: str | None = None) -> Iterator[None]:
    try:
        yield
    except (PolicyError, SourceError, UsageError):
        raise
    except Exception as exc:
        if not _is_driver_error(exc):
            raise
        raise SourceError(f"{context}: {_describe_driver_error(exc)}", hint=hint) from None


# --------------------------------------------------------------------------------------------
# Queries


@dataclass(frozen=True)
class BuiltQuery:
    """A parametrised SELECT: ``sql`` names parameters as ``:name``; values only in ``params``.

    ``sql`` is the same text for SQLite and PostgreSQL (identifiers quoted with ``"``) and is
    what the manifest records; :class:`Snapshot` adapts the parameter style and the binding of
    dates (ISO text on SQLite) when it runs it.  ``selected`` is the column order of every row.
    """

    sql: str
    params: dict[str, object]
    selected: tuple[str, ...]


def _check_identifier(name: str, what: str) -> str:
    if not isinstance(name, str) or not _IDENT.fullmatch(name):
        raise PolicyError(f"{what} is not a plain identifier (letters, digits, underscores)")
    return name


def _split_dataset(dataset: str) -> tuple[str | None, str]:
    parts = dataset.split(".") if isinstance(dataset, str) else [dataset]
    if len(parts) > 2:
        raise PolicyError(f"dataset {dataset!r} is not a plain or schema-qualified name")
    for part in parts:
        _check_identifier(part, f"dataset {dataset!r}")
    return (parts[0], parts[1]) if len(parts) == 2 else (None, parts[0])


def _at_line(line: int | None) -> str:
    return f" (approval line {line})" if line else ""


def _kind(value: object) -> str:
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int):
        return "integer"
    if isinstance(value, Decimal | float):
        return "decimal"
    if isinstance(value, datetime):
        return "datetime"
    if isinstance(value, date):
        return "date"
    if isinstance(value, str):
        return "string"
    return type(value).__name__


def _coerce(value: object, live_type: str, run_date: date, where: str) -> object:
    """One approval value, checked against the live column type and converted for binding."""
    from securexport.policy.approval import RelativeDate

    if isinstance(value, RelativeDate):
        value = value.resolve(run_date)

    def mismatch() -> PolicyError:
        return PolicyError(
            f"schema drift: {where} compares a {_kind(value)} value with the live column "
            f"type {live_type}",
            hint="the approval's filter value must match the column's type in the source "
            "(dates as TOML dates without quotes)",
        )

    if isinstance(value, str) and "\x00" in value:
        raise PolicyError(f"{where}: a filter value contains a NUL character")
    if live_type == "text":
        if isinstance(value, str):
            return value
        if isinstance(value, date) and not isinstance(value, datetime):
            return value.isoformat()
        raise mismatch()
    if live_type == "integer":
        if isinstance(value, int) and not isinstance(value, bool):
            if not _INT64[0] <= value <= _INT64[1]:
                raise PolicyError(f"{where}: integer filter value out of the 64-bit range")
            return value
        raise mismatch()
    if live_type in ("real", "numeric"):
        if isinstance(value, int | Decimal) and not isinstance(value, bool):
            if isinstance(value, Decimal) and not value.is_finite():
                raise mismatch()
            return float(value) if live_type == "real" else Decimal(value)
        raise mismatch()
    if live_type == "date":
        if isinstance(value, date) and not isinstance(value, datetime):
            return value
        raise mismatch()
    if live_type == "timestamp":
        if isinstance(value, datetime):
            if value.tzinfo is not None:
                value = value.astimezone(UTC).replace(tzinfo=None)
            return value
        if isinstance(value, date):
            return datetime.combine(value, time())
        raise mismatch()
    if live_type == "boolean":
        if isinstance(value, bool):
            return value
        raise mismatch()
    raise PolicyError(f"{where}: filters on a column of type {live_type} are not supported")


@dataclass(frozen=True)
class EntityPart:
    """One part of a query's rows by entity value: ``"null"`` (NULL entities), ``"below"``
    (entities sorting before ``split``) or ``"from"`` (``split`` and after).  The three are
    disjoint and together hold every row; each is a range of the entity's index."""

    kind: Literal["null", "below", "from"]
    split: object = None

    def condition(self, column: sa.ColumnClause[Any]) -> sa.ColumnElement[bool]:
        if self.kind == "null":
            return column.is_(None)
        below = column < sa.bindparam("entity_split", self.split)
        return below if self.kind == "below" else sa.not_(below)


def build_query(
    approval: Approval,
    columns: Mapping[str, str],
    run_date: date,
    *,
    limit: int | None,
    count_sources: Sequence[str] | None = None,
    entity_part: EntityPart | None = None,
) -> BuiltQuery:
    """The SELECT for ``approval`` against the live ``columns`` (name → normalised type).

    ``count_sources``: the counting pass's query instead: the same rows (same filters and
    LIMIT) with only the entity and these source columns, ordered by the entity alone (all
    the count needs; cheaper to read, and SQLite walks the entity index without a sorter).

    Every identifier must be a plain identifier that the live schema has (else
    :class:`PolicyError`, "schema drift"); every filter value must fit the live column's type
    and is bound with it.  Selects exactly ``approval.source_columns``, ordered by the entity
    and then the other selected columns ``NULLS FIRST``; ``LIMIT limit`` when given (callers
    pass row_cap + 1).
    """
    schema, name = _split_dataset(approval.dataset)

    def live(column: str, what: str) -> str:
        _check_identifier(column, what)
        if column not in columns:
            raise PolicyError(
                f"schema drift: unknown column {column!r} ({what}) in dataset {approval.dataset!r}",
                hint="the source no longer matches the approval; ask the data owner",
            )
        return columns[column]

    live(approval.entity, "the entity")
    for col in approval.columns:
        live(col.source, f"source of column {col.name!r}{_at_line(col.line)}")
    selected = approval.source_columns
    if count_sources is not None:
        selected = tuple(c for c in selected if c == approval.entity or c in count_sources)

    cols: dict[str, sa.ColumnClause[Any]] = {
        c: sa.column(quoted_name(c, quote=True)) for c in columns if _IDENT.fullmatch(c)
    }
    table = sa.table(quoted_name(name, quote=True), *cols.values(), schema=schema)

    conditions: list[sa.ColumnElement[bool]] = []
    for i, flt in enumerate(approval.filters):
        conditions.append(_condition(flt, i, table, live, run_date))
    if entity_part is not None:
        conditions.append(entity_part.condition(table.c[approval.entity]))

    stmt = sa.select(*(table.c[c] for c in selected)).where(*conditions)
    # The entity first, then the other columns NULLS FIRST (SQLite's default, PostgreSQL's
    # opposite), so both databases give the same order (in the C collation, the same bytes).
    # The entity has no NULLS clause: with one, SQLite no longer walks an index on the entity
    # and sorts every row in memory instead of one entity's rows at a time (docs/performance.md).
    # The counting pass relies on each entity's rows being contiguous (privacy.EntityRunCounter).
    entity_first = [table.c[approval.entity]]
    rest = [table.c[c].asc().nulls_first() for c in selected if c != approval.entity]
    if count_sources is not None:
        rest = []
    stmt = stmt.order_by(*entity_first, *rest)
    if limit is not None:
        if isinstance(limit, bool) or not isinstance(limit, int) or limit < 0:
            raise UsageError("the row limit must be a non-negative integer")
        stmt = stmt.limit(sa.bindparam("row_limit", limit, type_=sa.Integer))

    compiled = stmt.compile(dialect=_RENDER_DIALECT, compile_kwargs={"render_postcompile": True})
    sql = " ".join(str(compiled).split())  # identifiers hold no whitespace; values are bound
    return BuiltQuery(sql=sql, params=dict(compiled.params), selected=selected)


def quote_identifier(name: str) -> str:
    """A plain identifier (checked), quoted for SQL on both databases."""
    return str(_RENDER_DIALECT.identifier_preparer.quote(_check_identifier(name, "a column")))


def _quoted_table(dataset: str) -> str:
    """``dataset`` (``name`` or ``schema.name``, checked) quoted for SQL on both databases."""
    schema, name = _split_dataset(dataset)
    quote = _RENDER_DIALECT.identifier_preparer.quote
    return f"{quote(schema)}.{quote(name)}" if schema else str(quote(name))


def _condition(
    flt: Filter,
    index: int,
    table: sa.TableClause,
    live: Callable[[str, str], str],
    run_date: date,
) -> sa.ColumnElement[bool]:
    where = f"filter on {flt.column!r} ({flt.op}){_at_line(flt.line)}"
    live_type = live(flt.column, where)
    col = table.c[flt.column]
    key = f"f{index}"
    op = flt.op
    if op in ("is_null", "not_null"):
        if flt.value is not None:
            raise PolicyError(f"{where}: takes no value")
        return col.is_(None) if op == "is_null" else col.is_not(None)
    if op == "in":
        if not isinstance(flt.value, tuple | list) or not flt.value:
            raise PolicyError(f"{where}: needs a non-empty list of values")
        values = [_coerce(v, live_type, run_date, where) for v in flt.value]
        return col.in_(sa.bindparam(key, values, expanding=True))
    if op == "between":
        if not isinstance(flt.value, tuple | list) or len(flt.value) != 2:
            raise PolicyError(f"{where}: needs a [low, high] pair")
        low, high = (_coerce(v, live_type, run_date, where) for v in flt.value)
        return col.between(sa.bindparam(f"{key}_low", low), sa.bindparam(f"{key}_high", high))
    if isinstance(flt.value, tuple | list) or flt.value is None:
        raise PolicyError(f"{where}: needs exactly one value")
    param: sa.BindParameter[Any] = sa.bindparam(key, _coerce(flt.value, live_type, run_date, where))
    comparisons: dict[str, Callable[[], sa.ColumnElement[bool]]] = {
        "eq": lambda: col == param,
        "ne": lambda: col != param,
        "lt": lambda: col < param,
        "le": lambda: col <= param,
        "gt": lambda: col > param,
        "ge": lambda: col >= param,
    }
    if op not in comparisons:
        raise PolicyError(f"{where}: unknown operator")
    return comparisons[op]()


# --------------------------------------------------------------------------------------------
# Types


def normalise_sqlite_type(declared: str) -> str:
    """SQLite's affinity rules (§3.1 of its datatype docs), with dates and booleans told apart."""
    t = declared.upper().strip()
    if "BOOL" in t:
        return "boolean"
    if t.startswith("DATETIME") or t.startswith("TIMESTAMP"):
        return "timestamp"
    if t.startswith("DATE"):
        return "date"
    if "INT" in t:
        return "integer"
    if any(s in t for s in ("CHAR", "CLOB", "TEXT")):
        return "text"
    if not t or "BLOB" in t:
        return "blob"
    if any(s in t for s in ("REAL", "FLOA", "DOUB")):
        return "real"
    return "numeric"


_PG_TYPES = {
    "text": "text",
    "varchar": "text",
    "bpchar": "text",
    "name": "text",
    "citext": "text",
    "uuid": "text",
    "int2": "integer",
    "int4": "integer",
    "int8": "integer",
    "float4": "real",
    "float8": "real",
    "numeric": "numeric",
    "date": "date",
    "timestamp": "timestamp",
    "timestamptz": "timestamp",
    "bool": "boolean",
    "bytea": "blob",
}


def normalise_postgresql_type(typname: str) -> str:
    return _PG_TYPES.get(typname, "blob")


@dataclass(frozen=True)
class _Relation:
    kind: Literal["table", "view"]
    columns: tuple[tuple[str, str], ...]  # (name, normalised type), in table order
    definition: str | None  # a view's definition text


# --------------------------------------------------------------------------------------------
# Opening


def _refuse_password(url: sa.engine.URL) -> None:
    texts = [url.database or "", url.host or ""]
    for key, value in url.query.items():
        if key.lower() in ("password", "sslpassword"):
            raise UsageError("a password inside --source is refused", hint=_CREDENTIALS_HINT)
        texts.extend([value] if isinstance(value, str) else list(value))
    if url.password is not None or any(_PASSWORD_IN_TEXT.search(t) for t in texts):
        raise UsageError("a password inside --source is refused", hint=_CREDENTIALS_HINT)


def _query_single(url: sa.engine.URL, key: str) -> str | None:
    value = url.query.get(key)
    if value is None or isinstance(value, str):
        return value
    return value[-1] if value else None


def _canonical_dsn(url: sa.engine.URL, driver: Driver, sqlite_path: Path | None) -> str:
    """The URL that :attr:`Source.dsn_fingerprint` hashes (see there)."""
    if driver == "sqlite":
        assert sqlite_path is not None
        return f"sqlite:///{sqlite_path}"
    host = url.host or _query_single(url, "host") or ""
    port = str(url.port) if url.port is not None else (_query_single(url, "port") or "")
    query = sorted(
        (k, v)
        for k, vs in url.query.items()
        if k.lower() not in _CREDENTIAL_KEYS | {"host", "port"}
        for v in ([vs] if isinstance(vs, str) else vs)
    )
    rest = f"?{urllib.parse.urlencode(query)}" if query else ""
    return f"postgresql://{urllib.parse.quote(host, safe='/')}:{port}/{url.database or ''}{rest}"


def open_source(
    url: str,
    *,
    statement_timeout_ms: int = 600_000,
    password: str | None = None,
) -> Source:
    """Open ``url`` read-only.  ``password`` (PostgreSQL only) comes from a key store, never
    from the URL; a URL carrying one is refused without being echoed."""
    try:
        parsed = sa.engine.make_url(url)
    except Exception:  # noqa: BLE001 - the parser's message would echo the URL
        raise UsageError(
            "--source is not a valid database URL",
            hint="use sqlite:///path.db or postgresql+psycopg://user@host/db",
        ) from None
    _refuse_password(parsed)
    backend, dbapi = parsed.get_backend_name(), parsed.get_driver_name()
    if backend == "sqlite" and dbapi == "pysqlite":
        return _open_sqlite(parsed)
    if backend == "postgresql" and dbapi == "psycopg":
        if isinstance(statement_timeout_ms, bool) or statement_timeout_ms < 0:
            raise UsageError("the statement timeout must be a non-negative number of ms")
        return _open_postgresql(parsed, statement_timeout_ms, password)
    raise UsageError(
        f"unsupported source driver {parsed.drivername!r}",
        hint="use sqlite:///path.db or postgresql+psycopg://…",
    )


def _open_sqlite(url: sa.engine.URL) -> Source:
    database = url.database or ""
    if url.query:
        raise UsageError("a sqlite --source takes no URL options; it is always read-only")
    if not database or database == ":memory:" or database.startswith("file:"):
        raise UsageError("a sqlite --source needs a file path: sqlite:///path/to/file.db")
    path = Path(database).expanduser().resolve()
    if not path.is_file():
        raise SourceError(f"source database {path} does not exist or is not a file")
    uri = f"file:{urllib.parse.quote(str(path))}?mode=ro"

    def creator() -> sqlite3.Connection:
        conn = sqlite3.connect(
            uri,
            uri=True,
            isolation_level=None,  # we issue BEGIN/COMMIT ourselves
            check_same_thread=False,
            timeout=_SQLITE_BUSY_TIMEOUT_S,
        )
        conn.execute("PRAGMA query_only=1")
        conn.execute("PRAGMA temp_store=MEMORY")
        conn.execute("PRAGMA trusted_schema=OFF")
        return conn

    with _driver_errors(f"cannot open source database {path}"):
        engine = sa.create_engine("sqlite://", creator=creator, poolclass=sa.pool.NullPool)
        source = Source(engine, "sqlite", _canonical_dsn(url, "sqlite", path))
        source._probe()
    return source


def _require_psycopg() -> None:
    """Refuse a PostgreSQL URL, naming the extra, when psycopg (the postgres extra) is absent."""
    try:
        import psycopg  # noqa: F401
    except ImportError:
        raise UsageError(
            "PostgreSQL support is not installed: pip install 'securexport[postgres]'"
        ) from None


def _open_postgresql(url: sa.engine.URL, timeout_ms: int, password: str | None) -> Source:
    _require_psycopg()
    ours = f"-c default_transaction_read_only=on -c statement_timeout={timeout_ms} -c TimeZone=UTC"
    theirs = _query_single(url, "options")
    connect_args: dict[str, Any] = {
        "options": f"{theirs} {ours}" if theirs else ours,
        "application_name": "securexport",
    }
    if password is not None:
        connect_args["password"] = password
    engine = sa.create_engine(url, connect_args=connect_args, poolclass=sa.pool.NullPool)
    source = Source(engine, "postgresql", _canonical_dsn(url, "postgresql", None))
    with contextlib.ExitStack() as on_error:
        on_error.callback(source.close)
        source._probe()
        on_error.pop_all()
    return source


# --------------------------------------------------------------------------------------------
# The source


class Source:
    """An open, read-only source database.  Use :func:`open_source`; close it (or ``with``)."""

    def __init__(self, engine: sa.Engine, driver: Driver, canonical_dsn: str) -> None:
        self._engine = engine
        self.driver: Driver = driver
        self._canonical_dsn = canonical_dsn
        self._cursor_ids = itertools.count(1)

    # -- identity ------------------------------------------------------------------------

    @property
    def dsn_fingerprint(self) -> str:
        """sha256 (hex) of the UTF-8 bytes of a canonical URL that holds no credentials.

        SQLite: ``sqlite:///`` + the absolute, resolved path of the file.  PostgreSQL:
        ``postgresql://HOST:PORT/DATABASE`` (HOST and PORT from the URL or from its ``host`` /
        ``port`` options, empty when absent) followed by the remaining URL options sorted as
        ``?k=v&…`` (URL-encoded) with ``user``, ``password``, ``passfile`` and ``sslpassword``
        removed; the user name and the driver name (``+psycopg``) are never part of it.
        """
        return hashlib.sha256(self._canonical_dsn.encode()).hexdigest()

    # -- connections ---------------------------------------------------------------------

    @contextlib.contextmanager
    def _dbapi(self, context: str) -> Iterator[Any]:
        """A DBAPI connection from the pool, with driver errors wrapped."""
        hint = None
        if self.driver == "postgresql":
            hint = "check host, port and database; credentials come from PGPASSFILE, a service "
            hint += "file or the keyring, never from --source"
        with _driver_errors(context, hint=hint):
            raw = self._engine.raw_connection()
        try:
            conn = raw.driver_connection
            with _driver_errors(context):
                yield conn
        finally:
            with contextlib.suppress(Exception):
                raw.close()

    def _probe(self) -> None:
        with self._dbapi("cannot open the source database") as conn:
            if self.driver == "sqlite":
                conn.execute("SELECT count(*) FROM sqlite_master").fetchone()
            else:
                with conn.cursor() as cur:
                    cur.execute("SELECT 1")
                conn.rollback()

    def close(self) -> None:
        self._engine.dispose()

    def __enter__(self) -> Source:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- schema --------------------------------------------------------------------------

    def _relation(self, dataset: str) -> _Relation | None:
        schema, name = _split_dataset(dataset)
        with self._dbapi(f"cannot read the schema of {dataset!r}") as conn:
            if self.driver == "sqlite":
                return _sqlite_relation(conn, schema, name)
            try:
                return _pg_relation(conn, schema, name)
            finally:
                conn.rollback()

    def _require(self, dataset: str) -> _Relation:
        rel = self._relation(dataset)
        if rel is None or not rel.columns:
            raise PolicyError(
                f"dataset {dataset!r} does not exist in the source",
                hint="check --source, or the approval's [source] dataset",
            )
        return rel

    def table_columns(self, dataset: str) -> dict[str, str]:
        """Column name → normalised type (one of :data:`COLUMN_TYPES`), in table order."""
        return dict(self._require(dataset).columns)

    def schema_fingerprint(self, dataset: str) -> str:
        """sha256 (hex) of the canonical description of ``dataset``.

        The description is the compact JSON (sorted keys, ASCII) of ``{"v":
        "securexport/schema/v1", "kind": "table"|"view", "columns": [[name, type], …]}`` with
        the normalised types in column order, plus ``"definition"``: the view's definition
        text as the database reports it (``sqlite_master.sql``, ``pg_get_viewdef``) for views.
        """
        rel = self._require(dataset)
        doc: dict[str, object] = {
            "v": _FINGERPRINT_VERSION,
            "kind": rel.kind,
            "columns": [list(c) for c in rel.columns],
        }
        if rel.kind == "view":
            doc["definition"] = rel.definition or ""
        text = json.dumps(doc, sort_keys=True, separators=(",", ":"), ensure_ascii=True)
        return hashlib.sha256(text.encode()).hexdigest()

    def database_id(self) -> str | None:
        """The id in the one-row table ``securexport_database(id)``; None when it is absent."""
        rel = self._relation(_DATABASE_ID_TABLE)
        if rel is None:
            return None
        if "id" not in dict(rel.columns):
            raise PolicyError(f"table {_DATABASE_ID_TABLE} has no column 'id'")
        sql = f'SELECT "id" FROM "{_DATABASE_ID_TABLE}" LIMIT 2'  # noqa: S608 - constant text
        with self._dbapi(f"cannot read {_DATABASE_ID_TABLE}") as conn:
            if self.driver == "sqlite":
                rows = conn.execute(sql).fetchall()
            else:
                with conn.cursor() as cur:
                    cur.execute(sql)
                    rows = cur.fetchall()
                conn.rollback()
        if len(rows) != 1 or rows[0][0] is None:
            raise PolicyError(
                f"table {_DATABASE_ID_TABLE} must hold exactly one row with a non-null id"
            )
        return str(rows[0][0])

    def build_query(self, approval: Approval, run_date: date, *, limit: int | None) -> BuiltQuery:
        """:func:`build_query` against this source's live columns of the approval's dataset."""
        return build_query(approval, self.table_columns(approval.dataset), run_date, limit=limit)

    # -- reading -------------------------------------------------------------------------

    @contextlib.contextmanager
    def snapshot(self, shared: str | None = None) -> Iterator[Snapshot]:
        """One consistent read of the database: every query in it sees the same data.

        ``shared`` (PostgreSQL): the id from another snapshot's :meth:`Snapshot.share`, so
        that this connection sees exactly that snapshot (``SET TRANSACTION SNAPSHOT``).
        """
        with self._dbapi("cannot read the source database") as conn:
            if self.driver == "sqlite":
                if shared is not None:
                    raise ValueError("SQLite snapshots cannot be shared by id")
                conn.execute("BEGIN")
                # the read transaction (and its WAL snapshot / SHARED lock) starts at a read
                conn.execute("SELECT count(*) FROM sqlite_master").fetchone()
            else:
                import psycopg
                from psycopg import sql

                conn.rollback()
                conn.autocommit = False
                conn.isolation_level = psycopg.IsolationLevel.REPEATABLE_READ
                conn.read_only = True
                with conn.cursor() as cur:  # takes the transaction's snapshot now
                    if shared is not None:
                        if not _PG_SNAPSHOT_ID.fullmatch(shared):
                            raise ValueError("not a PostgreSQL snapshot id")
                        cur.execute(
                            sql.SQL("SET TRANSACTION SNAPSHOT {}").format(sql.Literal(shared))
                        )
                    cur.execute("SELECT 1")
            snap = Snapshot(self, conn)
            try:
                yield snap
            finally:
                snap._closed = True
                with contextlib.suppress(Exception):
                    if self.driver == "sqlite":
                        conn.execute("ROLLBACK")
                    else:
                        conn.rollback()


def _sqlite_relation(conn: sqlite3.Connection, schema: str | None, name: str) -> _Relation | None:
    if schema not in (None, "main"):
        return None
    row = conn.execute(
        "SELECT type, sql FROM sqlite_master WHERE name = ? AND type IN ('table', 'view')",
        (name,),
    ).fetchone()
    if row is None:
        return None
    cols = conn.execute(
        "SELECT name, type FROM pragma_table_info(?) ORDER BY cid", (name,)
    ).fetchall()
    columns = tuple((str(n), normalise_sqlite_type(str(t or ""))) for n, t in cols)
    kind: Literal["table", "view"] = "view" if row[0] == "view" else "table"
    return _Relation(kind, columns, str(row[1]) if kind == "view" else None)


def _pg_relation(conn: Any, schema: str | None, name: str) -> _Relation | None:
    base = (
        "SELECT c.oid, c.relkind FROM pg_catalog.pg_class c "
        "JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace "
        "WHERE c.relname = %(name)s AND c.relkind IN ('r', 'p', 'v', 'm', 'f') AND "
    )
    with conn.cursor() as cur:
        if schema is None:
            cur.execute(base + "pg_catalog.pg_table_is_visible(c.oid)", {"name": name})
        else:
            cur.execute(base + "n.nspname = %(schema)s", {"name": name, "schema": schema})
        found = cur.fetchone()
        if found is None:
            return None
        oid, relkind = found
        cur.execute(
            "SELECT a.attname, CASE WHEN t.typtype = 'd' THEN bt.typname ELSE t.typname END "
            "FROM pg_catalog.pg_attribute a "
            "JOIN pg_catalog.pg_type t ON t.oid = a.atttypid "
            "LEFT JOIN pg_catalog.pg_type bt ON bt.oid = t.typbasetype "
            "WHERE a.attrelid = %(oid)s AND a.attnum > 0 AND NOT a.attisdropped "
            "ORDER BY a.attnum",
            {"oid": oid},
        )
        columns = tuple((str(n), normalise_postgresql_type(str(t))) for n, t in cur.fetchall())
        definition = None
        if relkind in ("v", "m"):
            cur.execute("SELECT pg_catalog.pg_get_viewdef(%(oid)s, true)", {"oid": oid})
            got = cur.fetchone()
            definition = str(got[0]) if got else ""
    kind: Literal["table", "view"] = "view" if relkind in ("v", "m") else "table"
    return _Relation(kind, columns, definition)


def _sqlite_param(value: object) -> object:
    if isinstance(value, datetime):
        return value.isoformat(sep=" ")
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, Decimal):
        return float(value)
    return value


class Snapshot:
    """Queries inside one read transaction (see :meth:`Source.snapshot`)."""

    def __init__(self, source: Source, conn: Any) -> None:
        self._source = source
        self._conn = conn
        self._closed = False

    def _native(self, sql: str, params: Mapping[str, object]) -> tuple[str, Any]:
        if self._source.driver == "sqlite":
            return sql, {k: _sqlite_param(v) for k, v in params.items()}
        compiled = sa.text(sql).compile(dialect=self._source._engine.dialect)
        return str(compiled), dict(params)

    def stream(
        self, query: BuiltQuery, *, batch_size: int = 5000
    ) -> Generator[list[Row], None, None]:
        """Batches of at most ``batch_size`` rows, in ``query.selected`` order.  Rows are read
        from the database as the batches are consumed (memory does not grow with the rows)."""
        if batch_size < 1:
            raise ValueError("batch_size must be positive")
        if self._closed:
            raise SourceError("the snapshot is closed")
        sql, params = self._native(query.sql, query.params)
        driver = self._source.driver
        with _driver_errors("reading the source failed"):
            if driver == "sqlite":
                cur = self._conn.cursor()
            else:
                cur = self._conn.cursor(name=f"securexport_{next(self._source._cursor_ids)}")
                cur.itersize = batch_size
            try:
                cur.execute(sql, params)
                while True:
                    batch: Sequence[Row] = cur.fetchmany(batch_size)
                    if not batch:
                        return
                    yield batch if isinstance(batch, list) else list(batch)
            finally:
                with contextlib.suppress(Exception):
                    cur.close()

    @property
    def driver(self) -> Driver:
        return self._source.driver

    def table_rows(self, dataset: str) -> int:
        """About how many rows ``dataset`` has (all of them, unfiltered), cheaply: SQLite's
        rowid range, PostgreSQL's ``reltuples``; an exact ``count(*)`` where neither exists
        (a view, a table never analysed)."""
        if self._closed:
            raise SourceError("the snapshot is closed")
        _, name = _split_dataset(dataset)
        table = _quoted_table(dataset)
        estimate: int | None = None
        with _driver_errors("reading the source failed"):
            cur = self._conn.cursor()
            try:
                if self._source.driver == "sqlite":
                    cur.execute("SELECT type FROM sqlite_master WHERE name = ?", (name,))
                    kind = cur.fetchone()
                    try:  # O(log n) on a rowid table; a WITHOUT ROWID table refuses
                        if kind is not None and kind[0] == "table":
                            cur.execute(  # one min() or max() per SELECT: each is O(log n)
                                f"SELECT (SELECT max(rowid) FROM {table}) - "  # noqa: S608
                                f"(SELECT min(rowid) FROM {table}) + 1"
                            )
                            got = cur.fetchone()
                            estimate = int(got[0]) if got and got[0] is not None else 0
                    except sqlite3.OperationalError:
                        estimate = None
                else:  # to_regclass gives NULL, never an error (which would end the snapshot)
                    cur.execute(
                        "SELECT c.reltuples FROM pg_catalog.pg_class c "
                        "WHERE c.oid = pg_catalog.to_regclass(%(name)s) AND c.relkind IN ('r', 'm')",
                        {"name": table},
                    )
                    got = cur.fetchone()
                    if got and got[0] is not None and float(got[0]) > 0:
                        estimate = int(float(got[0]))
                if estimate is None:
                    cur.execute(f"SELECT count(*) FROM {table}")  # noqa: S608 - checked names
                    got = cur.fetchone()
                    estimate = int(got[0]) if got else 0
            finally:
                cur.close()
        return estimate

    def share(self) -> str | None:
        """An id another connection can open this very snapshot with (PostgreSQL's
        ``pg_export_snapshot``); None where the database cannot share one (SQLite, or a
        PostgreSQL hot standby).

        SQLite: a second connection sees the same data as this one only while no writer can
        commit in between, which holds in rollback-journal mode (this read holds a SHARED
        lock) and not in WAL mode; :meth:`sqlite_stable_for_readers` tells which.
        """
        if self._closed:
            raise SourceError("the snapshot is closed")
        if self._source.driver != "postgresql":
            return None
        with _driver_errors("cannot share the source snapshot"), self._conn.cursor() as cur:
            # A hot standby (a read replica) cannot export snapshots: checked first, since a
            # failed statement would abort this snapshot's transaction.
            cur.execute("SELECT pg_catalog.pg_is_in_recovery()")
            recovering = cur.fetchone()
            if recovering is None or recovering[0]:
                return None
            cur.execute("SELECT pg_catalog.pg_export_snapshot()")
            row = cur.fetchone()
        return str(row[0]) if row else None

    def sqlite_stable_for_readers(self) -> bool:
        """SQLite: True when this read transaction blocks every writer (not WAL mode), so
        another connection that starts a read now sees the same data."""
        if self._source.driver != "sqlite":
            return False
        with _driver_errors("cannot read the source database"):
            mode = self._conn.execute("PRAGMA journal_mode").fetchone()
        return bool(mode) and str(mode[0]).lower() != "wal"

    def entity_split(self, dataset: str, entity: str, offset: int) -> object:
        """The entity at ``offset`` in entity order among the rows of ``dataset`` (all of
        them, unfiltered: cheap, over the entity's index when there is one), NULLs left out;
        None when there is no such row."""
        if self._closed:
            raise SourceError("the snapshot is closed")
        table = _quoted_table(dataset)
        col = quote_identifier(entity)
        sql_text = (
            f"SELECT {col} FROM {table} WHERE {col} IS NOT NULL "  # noqa: S608
            f"ORDER BY {col} LIMIT 1 OFFSET {int(offset)}"
        )
        with _driver_errors("reading the source failed"):
            cur = self._conn.cursor()
            try:
                cur.execute(sql_text)
                row = cur.fetchone()
            finally:
                cur.close()
        return row[0] if row else None

    def count(self, query: BuiltQuery) -> int:
        """The number of rows ``query`` returns (within its LIMIT), in this snapshot."""
        if self._closed:
            raise SourceError("the snapshot is closed")
        wrapped = f"SELECT count(*) FROM ({query.sql}) AS securexport_q"  # noqa: S608
        sql, params = self._native(wrapped, query.params)
        with _driver_errors("counting rows in the source failed"):
            cur = self._conn.cursor()
            try:
                cur.execute(sql, params)
                row = cur.fetchone()
            finally:
                cur.close()
        return int(row[0])


def database_role(url: str) -> str | None:
    """The database role a URL connects as (recorded so least privilege can be audited)."""
    try:
        return sa.engine.make_url(url).username
    except sa.exc.ArgumentError:
        return None
