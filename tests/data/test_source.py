"""securexport.source against a real SQLite file and a real PostgreSQL server; plus synthetic."""

from __future__ import annotations

import hashlib
import shutil
import sqlite3
import tracemalloc
import uuid
from collections.abc import Callable, Iterator
from datetime import UTC, date, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import psycopg
import pytest

from securexport.data.source import BuiltQuery, Source, build_query, open_source
from securexport.errors import PolicyError, SourceError, UsageError
from securexport.policy.approval import Approval, Column, Filter, RelativeDate
from securexport.synthetic import COLUMNS, iter_rows, load_into_postgres, main, make_offenders_db
from tests.support.pg import PgServer, postgres_server  # noqa: F401  (registers the fixture)

RUN_DATE = date(2026, 6, 1)
ALL_COLUMNS = {
    "offender_id": "text",
    "full_name": "text",
    "address": "text",
    "postcode": "text",
    "date_of_birth": "date",
    "force_code": "text",
    "conviction_count": "integer",
    "prison": "text",
    "release_date": "date",
    "ppo_flag": "integer",
    "notes": "text",
}
HOSTILE = [
    "' OR 1=1 --",
    '"; DROP TABLE offenders; --',
    "WMP' OR 'a'='a",
    "WMP\u202e; DELETE FROM offenders",
    "Zoë'); DROP TABLE securexport_database; --",
    "%(f0)s :f0 ? $1",
    "\\'; SELECT pg_sleep(5); --",
]


def sha256_file(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def approval(
    filters: tuple[Filter, ...] = (),
    sources: tuple[str, ...] = ("offender_id", "postcode", "release_date"),
    *,
    dataset: str = "offenders",
    entity: str = "offender_id",
) -> Approval:
    return Approval(
        raw=b"test",
        id="APR-TEST",
        title="t",
        purpose="p",
        legal_basis="l",
        not_before=datetime(2026, 1, 1, tzinfo=UTC),
        expires=datetime(2027, 1, 1, tzinfo=UTC),
        max_runs=None,
        dataset=dataset,
        entity=entity,
        filters=filters,
        row_cap=100_000,
        min_rows=0,
        columns=tuple(Column(name=f"out_{s}", source=s, transform="keep") for s in sources),
        recipients=(),
        exporters=(),
    )


def read_all(source: Source, query: BuiltQuery, batch_size: int = 1000) -> list[tuple[Any, ...]]:
    with source.snapshot() as snap:
        return [row for batch in snap.stream(query, batch_size=batch_size) for row in batch]


def iso(rows: list[tuple[Any, ...]]) -> list[tuple[Any, ...]]:
    return [tuple(v.isoformat() if isinstance(v, date) else v for v in r) for r in rows]


@pytest.fixture(scope="module")
def db(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("src") / "offenders.db"
    make_offenders_db(path, people=3000, seed=7)
    return path


@pytest.fixture
def db_copy(db: Path, tmp_path: Path) -> Path:
    path = tmp_path / "copy.db"
    shutil.copyfile(db, path)
    return path


@pytest.fixture(scope="module")
def pg_url(postgres_server: PgServer, db: Path) -> str:  # noqa: F811
    url = postgres_server.create_database(f"offenders_{uuid.uuid4().hex[:8]}")
    load_into_postgres(db, url)
    return url


def url_of(path: Path) -> str:
    return f"sqlite:///{path}"


# -- opening ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "url",
    [
        "postgresql+psycopg://alice:s3cr3tpw@db.example/offenders",
        "postgresql+psycopg://alice@db.example/offenders?password=s3cr3tpw",
        "postgresql+psycopg://alice@db.example/offenders?PASSWORD=s3cr3tpw",
        "postgresql+psycopg:///offenders?host=/tmp&dbname=x%20password%3Ds3cr3tpw",
        "postgresql+psycopg://:s3cr3tpw@/offenders",
        "sqlite:///x.db?password=s3cr3tpw",
    ],
)
def test_password_in_url_is_refused_without_echo(url: str) -> None:
    with pytest.raises(UsageError) as info:
        open_source(url)
    assert info.value.exit_code == 2
    assert info.value.message == "a password inside --source is refused"
    assert "PGPASSFILE" in (info.value.hint or "")
    assert "s3cr3tpw" not in f"{info.value.message} {info.value.hint}"


@pytest.mark.parametrize(
    "url",
    [
        "mysql://alice@db/offenders",
        "postgresql+psycopg2://alice@db/offenders",
        "sqlite://",
        "sqlite:///:memory:",
        "sqlite:///file:x.db?mode=rwc&uri=true",
        "not a url at all",
    ],
)
def test_unsupported_or_unsafe_urls_are_usage_errors(url: str) -> None:
    with pytest.raises(UsageError):
        open_source(url)


def test_missing_sqlite_file_is_a_source_error_and_not_created(tmp_path: Path) -> None:
    missing = tmp_path / "nope.db"
    with pytest.raises(SourceError) as info:
        open_source(url_of(missing))
    assert info.value.exit_code == 6
    assert not missing.exists()
    assert list(tmp_path.iterdir()) == []


def test_sqlite_connection_is_read_only_and_file_unchanged(db_copy: Path) -> None:
    before = sha256_file(db_copy)
    with open_source(url_of(db_copy)) as src:
        with src.snapshot() as snap:
            pragmas = {
                name: next(snap.stream(BuiltQuery(f"PRAGMA {name}", {}, (name,))))[0][0]
                for name in ("temp_store", "query_only", "trusted_schema")
            }
        assert pragmas == {"temp_store": 2, "query_only": 1, "trusted_schema": 0}
        for sql in (
            "DELETE FROM offenders",
            "INSERT INTO securexport_database (id) VALUES ('x')",
            "CREATE TABLE t (x)",
            "PRAGMA user_version = 7",
        ):
            with pytest.raises(SourceError) as info, src.snapshot() as snap:
                list(snap.stream(BuiltQuery(sql, {}, ())))
            assert "SQLITE_READONLY" in info.value.message
        # even with query_only switched off, the connection itself is mode=ro
        raw = src._engine.raw_connection()
        try:
            conn = raw.driver_connection
            assert conn is not None
            conn.execute("PRAGMA query_only=0")
            with pytest.raises(sqlite3.OperationalError, match="readonly"):
                conn.execute("DELETE FROM offenders")
        finally:
            raw.close()
        assert src.table_columns("offenders") == ALL_COLUMNS
    assert sha256_file(db_copy) == before


def test_table_columns_for_view_and_missing_dataset(db: Path) -> None:
    with open_source(url_of(db)) as src:
        assert src.driver == "sqlite"
        assert list(src.table_columns("offenders_v")) == [
            "offender_id",
            "postcode",
            "date_of_birth",
            "force_code",
            "conviction_count",
            "release_date",
            "ppo_flag",
        ]
        for missing in ("nothere", "Offenders", "other.offenders"):
            with pytest.raises(PolicyError, match="does not exist in the source"):
                src.table_columns(missing)
        with pytest.raises(PolicyError, match="not a plain"):
            src.table_columns('offenders"; DROP TABLE offenders; --')


def test_dsn_fingerprint_reveals_no_credentials(db: Path) -> None:
    with open_source(url_of(db)) as src:
        expected = hashlib.sha256(f"sqlite:///{db.resolve()}".encode()).hexdigest()
        assert src.dsn_fingerprint == expected


# -- query building -----------------------------------------------------------------------------


def test_build_query_selects_orders_limits_and_binds() -> None:
    appr = approval(
        (
            Filter("force_code", "eq", "WMP"),
            Filter("release_date", "ge", RelativeDate(days=-365)),
            Filter("conviction_count", "in", (1, 2, 3)),
        ),
        sources=("postcode", "offender_id", "release_date"),
    )
    q = build_query(appr, ALL_COLUMNS, RUN_DATE, limit=5001)
    assert q.selected == ("offender_id", "postcode", "release_date")
    assert q.sql == (
        'SELECT "offenders"."offender_id", "offenders"."postcode", "offenders"."release_date" '
        'FROM "offenders" WHERE "offenders"."force_code" = :f0 AND "offenders"."release_date" '
        '>= :f1 AND "offenders"."conviction_count" IN (:f2_1, :f2_2, :f2_3) ORDER BY '
        '"offenders"."offender_id", "offenders"."postcode" ASC NULLS FIRST, '
        '"offenders"."release_date" ASC NULLS FIRST LIMIT :row_limit'
    )
    assert q.params == {
        "f0": "WMP",
        "f1": date(2025, 6, 1),
        "f2_1": 1,
        "f2_2": 2,
        "f2_3": 3,
        "row_limit": 5001,
    }
    assert "LIMIT" not in build_query(appr, ALL_COLUMNS, RUN_DATE, limit=None).sql


@pytest.mark.parametrize(
    ("appr", "needle"),
    [
        (approval(entity="person_id"), "'person_id'"),
        (approval(sources=("offender_id", "ethnicity")), "'ethnicity'"),
        (approval((Filter("region", "eq", "WM"),)), "'region'"),
        (approval((Filter("force_code; DROP TABLE offenders", "eq", "x"),)), "not a plain"),
        (approval(sources=('postcode"--',)), "not a plain"),
    ],
)
def test_unknown_identifiers_are_schema_drift(appr: Approval, needle: str) -> None:
    with pytest.raises(PolicyError) as info:
        build_query(appr, ALL_COLUMNS, RUN_DATE, limit=None)
    assert needle in info.value.message
    assert info.value.exit_code == 3


@pytest.mark.parametrize(
    ("flt", "live"),
    [
        (Filter("conviction_count", "eq", "3"), "integer"),
        (Filter("conviction_count", "eq", True), "integer"),
        (Filter("conviction_count", "eq", Decimal("2.5")), "integer"),
        (Filter("force_code", "eq", 3), "text"),
        (Filter("release_date", "ge", "2025-01-01"), "date"),
        (Filter("release_date", "ge", datetime(2025, 1, 1, tzinfo=UTC)), "date"),
        (Filter("release_date", "between", (date(2025, 1, 1), "2026-01-01")), "date"),
        (Filter("conviction_count", "in", (1, "2")), "integer"),
        (Filter("ppo_flag", "eq", 2**70), "64-bit"),
    ],
)
def test_filter_value_type_mismatch(flt: Filter, live: str) -> None:
    with pytest.raises(PolicyError) as info:
        build_query(approval((flt,)), ALL_COLUMNS, RUN_DATE, limit=None)
    assert live in info.value.message
    assert repr(flt.value) not in info.value.message  # no values in messages


def test_values_are_coerced_to_the_live_column_type() -> None:
    cols = {
        "id": "text",
        "d": "text",
        "ts": "timestamp",
        "r": "real",
        "n": "numeric",
        "b": "boolean",
    }
    appr = approval(
        (
            Filter("d", "le", date(2026, 1, 2)),  # a TOML date against a text column: ISO text
            Filter("ts", "ge", date(2026, 1, 1)),
            Filter("ts", "lt", datetime(2026, 1, 2, 1, 0, tzinfo=UTC)),
            Filter("r", "gt", Decimal("1.5")),
            Filter("n", "gt", 2),
            Filter("b", "eq", True),
        ),
        sources=("id",),
        dataset="t",
        entity="id",
    )
    q = build_query(appr, cols, RUN_DATE, limit=None)
    assert q.params == {
        "f0": "2026-01-02",
        "f1": datetime(2026, 1, 1),
        "f2": datetime(2026, 1, 2, 1, 0),
        "f3": 1.5,
        "f4": Decimal(2),
        "f5": True,
    }
    with pytest.raises(PolicyError, match="not supported"):
        build_query(
            approval((Filter("x", "eq", "a"),), ("id",), dataset="t", entity="id"),
            {"id": "text", "x": "blob"},
            RUN_DATE,
            limit=None,
        )


def test_nul_in_a_filter_value_is_refused() -> None:
    with pytest.raises(PolicyError, match="NUL"):
        build_query(
            approval((Filter("force_code", "eq", "WMP\x00"),)), ALL_COLUMNS, RUN_DATE, limit=None
        )


# -- every operator, SQLite and PostgreSQL agree with an independent Python filter -------------


def _reference(db: Path) -> list[dict[str, Any]]:
    conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    try:
        return [dict(zip(COLUMNS, r, strict=True)) for r in conn.execute("SELECT * FROM offenders")]
    finally:
        conn.close()


def _notnull(f: Callable[[Any], bool]) -> Callable[[Any], bool]:
    return lambda v: v is not None and f(v)


RECENT = (RUN_DATE.replace(year=2025)).isoformat()
OP_CASES: list[tuple[Filter, str, Callable[[Any], bool]]] = [
    (Filter("force_code", "eq", "WMP"), "force_code", _notnull(lambda v: v == "WMP")),
    (Filter("postcode", "ne", "B1 1AA"), "postcode", _notnull(lambda v: v != "B1 1AA")),
    (Filter("conviction_count", "lt", 2), "conviction_count", _notnull(lambda v: v < 2)),
    (Filter("conviction_count", "le", 2), "conviction_count", _notnull(lambda v: v <= 2)),
    (Filter("conviction_count", "gt", 30), "conviction_count", _notnull(lambda v: v > 30)),
    (
        Filter("date_of_birth", "ge", date(1990, 1, 1)),
        "date_of_birth",
        _notnull(lambda v: v >= "1990-01-01"),
    ),
    (
        Filter("release_date", "gt", RelativeDate(days=-365)),
        "release_date",
        _notnull(lambda v: v > RECENT),
    ),
    (
        Filter("force_code", "in", ("GMP", "MER")),
        "force_code",
        _notnull(lambda v: v in ("GMP", "MER")),
    ),
    (
        Filter("conviction_count", "in", (1, 5, 31)),
        "conviction_count",
        _notnull(lambda v: v in (1, 5, 31)),
    ),
    (
        Filter("date_of_birth", "between", (date(1980, 1, 1), date(1980, 12, 31))),
        "date_of_birth",
        _notnull(lambda v: "1980-01-01" <= v <= "1980-12-31"),
    ),
    (Filter("release_date", "is_null", None), "release_date", lambda v: v is None),
    (Filter("postcode", "not_null", None), "postcode", lambda v: v is not None),
    (Filter("ppo_flag", "eq", 1), "ppo_flag", _notnull(lambda v: v == 1)),
    (
        Filter("notes", "eq", 'Known as "Tommy" to associates.'),
        "notes",
        _notnull(lambda v: v == 'Known as "Tommy" to associates.'),
    ),
]
SELECT = ("offender_id", "postcode", "date_of_birth", "conviction_count", "release_date", "notes")


def _expected(db: Path, column: str, pred: Callable[[Any], bool]) -> list[tuple[Any, ...]]:
    return sorted(
        (tuple(r[c] for c in SELECT) for r in _reference(db) if pred(r[column])), key=repr
    )


def _sort_key(nulls_first: bool) -> Callable[[tuple[Any, ...]], tuple[Any, ...]]:
    return lambda row: tuple(((v is None) != nulls_first, v if v is not None else 0) for v in row)


@pytest.mark.parametrize(
    ("flt", "column", "pred"), OP_CASES, ids=[f"{c[0].op}-{c[1]}" for c in OP_CASES]
)
def test_every_operator_on_sqlite(
    db: Path, flt: Filter, column: str, pred: Callable[[Any], bool]
) -> None:
    before = sha256_file(db)
    expected = _expected(db, column, pred)
    assert expected, "the case must match something"
    with open_source(url_of(db)) as src:
        rows = read_all(src, src.build_query(approval((flt,), SELECT), RUN_DATE, limit=None))
    assert sorted(rows, key=repr) == expected
    assert rows == sorted(rows, key=_sort_key(nulls_first=True))  # ORDER BY entity, then the rest
    assert sha256_file(db) == before


@pytest.mark.postgres
@pytest.mark.parametrize(
    ("flt", "column", "pred"), OP_CASES, ids=[f"{c[0].op}-{c[1]}" for c in OP_CASES]
)
def test_every_operator_on_postgresql_matches_sqlite(
    db: Path, pg_url: str, flt: Filter, column: str, pred: Callable[[Any], bool]
) -> None:
    with open_source(pg_url) as src:
        assert src.driver == "postgresql"
        rows = read_all(src, src.build_query(approval((flt,), SELECT), RUN_DATE, limit=None))
    assert sorted(iso(rows), key=repr) == _expected(db, column, pred)
    assert rows == sorted(rows, key=_sort_key(nulls_first=True))  # C collation, NULLS FIRST


def test_limit_is_applied(db: Path) -> None:
    with open_source(url_of(db)) as src:
        q = src.build_query(approval(), RUN_DATE, limit=11)
        with src.snapshot() as snap:
            assert snap.count(q) == 11
            assert sum(len(b) for b in snap.stream(q)) == 11


# -- injection ----------------------------------------------------------------------------------


@pytest.mark.parametrize("value", HOSTILE)
def test_hostile_values_are_bound_and_match_nothing_sqlite(db_copy: Path, value: str) -> None:
    before = sha256_file(db_copy)
    with open_source(url_of(db_copy)) as src:
        for flt in (
            Filter("force_code", "eq", value),
            Filter("notes", "in", (value, value + "x")),
            Filter("postcode", "between", (value, value)),
        ):
            q = src.build_query(approval((flt,)), RUN_DATE, limit=None)
            assert value not in q.sql
            assert read_all(src, q) == []
        assert src.database_id() == "offender-tracking-demo"
    assert sha256_file(db_copy) == before
    conn = sqlite3.connect(db_copy)
    assert conn.execute("SELECT count(*) FROM offenders").fetchone()[0] > 3000
    conn.close()


@pytest.mark.postgres
def test_hostile_values_are_bound_and_match_nothing_postgresql(pg_url: str) -> None:
    with open_source(pg_url) as src:
        for value in HOSTILE:
            q = src.build_query(
                approval((Filter("force_code", "eq", value),)), RUN_DATE, limit=None
            )
            assert read_all(src, q) == []
        q = src.build_query(approval(), RUN_DATE, limit=None)
        with src.snapshot() as snap:
            assert snap.count(q) > 3000
        assert src.database_id() == "offender-tracking-demo"


# -- streaming and snapshots --------------------------------------------------------------------


def test_stream_is_lazy_and_memory_bounded(db: Path) -> None:
    with open_source(url_of(db)) as src:
        q = src.build_query(approval(sources=SELECT), RUN_DATE, limit=None)
        with src.snapshot() as snap:
            total = snap.count(q)
            stream = snap.stream(q, batch_size=100)
            assert isinstance(stream, Iterator)
            first = next(stream)
            assert len(first) == 100
            rest = sum(len(b) for b in stream)
            assert 100 + rest == total

        def peak(consume: Callable[[], object]) -> int:
            tracemalloc.start()
            try:
                consume()
                return tracemalloc.get_traced_memory()[1]
            finally:
                tracemalloc.stop()

        with src.snapshot() as snap:
            streamed = peak(lambda: sum(len(b) for b in snap.stream(q, batch_size=100)))
            everything = peak(lambda: [r for b in snap.stream(q, batch_size=100) for r in b])
    assert streamed * 5 < everything, (streamed, everything)


def test_sqlite_snapshot_holds_across_two_passes_in_wal_mode(db_copy: Path) -> None:
    writer = sqlite3.connect(db_copy, isolation_level=None)
    assert writer.execute("PRAGMA journal_mode=WAL").fetchone()[0] == "wal"
    with open_source(url_of(db_copy)) as src:
        q = src.build_query(approval((Filter("force_code", "eq", "XXX"),)), RUN_DATE, limit=None)
        with src.snapshot() as snap:
            assert snap.count(q) == 0
            writer.execute(
                "INSERT INTO offenders (offender_id, force_code, conviction_count, ppo_flag) "
                "VALUES ('2020/0000001A', 'XXX', 1, 0)"
            )
            assert sum(len(b) for b in snap.stream(q)) == 0  # second pass: same snapshot
        with src.snapshot() as snap:
            assert snap.count(q) == 1
    writer.close()


def test_sqlite_snapshot_blocks_writers_in_rollback_journal_mode(db_copy: Path) -> None:
    writer = sqlite3.connect(db_copy, isolation_level=None, timeout=0.1)
    assert writer.execute("PRAGMA journal_mode").fetchone()[0] == "delete"
    insert = (
        "INSERT INTO offenders (offender_id, force_code, conviction_count, ppo_flag) "
        "VALUES ('2020/0000001A', 'XXX', 1, 0)"
    )
    with open_source(url_of(db_copy)) as src:
        q = src.build_query(approval((Filter("force_code", "eq", "XXX"),)), RUN_DATE, limit=None)
        with src.snapshot() as snap:
            assert snap.count(q) == 0
            with pytest.raises(sqlite3.OperationalError, match="locked"):
                writer.execute(insert)
            assert snap.count(q) == 0
        writer.execute(insert)  # the snapshot has ended: the writer gets through
        with src.snapshot() as snap:
            assert snap.count(q) == 1
    writer.close()


@pytest.mark.postgres
def test_postgresql_snapshot_holds_across_two_passes(postgres_server: PgServer, db: Path) -> None:  # noqa: F811
    url = postgres_server.create_database(f"snap_{uuid.uuid4().hex[:8]}")
    load_into_postgres(db, url)
    dbname = url.split("/")[3].split("?")[0]
    with (
        open_source(url) as src,
        psycopg.connect(postgres_server.conninfo(dbname), autocommit=True) as w,
    ):
        q = src.build_query(approval((Filter("force_code", "eq", "WMP"),)), RUN_DATE, limit=None)
        with src.snapshot() as snap:
            first = snap.count(q)
            w.execute(
                "INSERT INTO offenders (offender_id, force_code, conviction_count, ppo_flag) "
                "VALUES ('2020/0000001A', 'WMP', 1, 0)"
            )
            second = sum(len(b) for b in snap.stream(q, batch_size=500))
            assert second == first
            # the stream is a server-side cursor, visible while it is open
            stream = snap.stream(q, batch_size=10)
            assert len(next(stream)) == 10
            cursors = next(snap.stream(BuiltQuery("SELECT count(*) FROM pg_cursors", {}, ("n",))))
            assert cursors[0][0] >= 1
            stream.close()
        with src.snapshot() as snap:
            assert snap.count(q) == first + 1


@pytest.mark.postgres
def test_postgresql_session_is_read_only_with_timeout(
    postgres_server: PgServer,  # noqa: F811
    pg_url: str,
) -> None:
    postgres_server.psql(
        "CREATE SEQUENCE IF NOT EXISTS ro_probe", pg_url.split("/")[3].split("?")[0]
    )
    with open_source(pg_url, statement_timeout_ms=200) as src:
        # a SELECT that writes, inside a snapshot (a named cursor only runs SELECTs)
        with pytest.raises(SourceError) as info, src.snapshot() as snap:
            list(snap.stream(BuiltQuery("SELECT nextval('ro_probe')", {}, ("n",))))
        assert "25006" in info.value.message  # read_only_sql_transaction
        # and outside any snapshot the session's default is read-only too
        raw = src._engine.raw_connection()
        try:
            cur = raw.cursor()
            for sql in ("DELETE FROM offenders", "CREATE TABLE t (x int)"):
                with pytest.raises(psycopg.errors.ReadOnlySqlTransaction):
                    cur.execute(sql)
                raw.rollback()
        finally:
            raw.close()
        with pytest.raises(SourceError) as info, src.snapshot() as snap:
            list(snap.stream(BuiltQuery("SELECT pg_sleep(2)", {}, ())))
        assert "57014" in info.value.message  # query_canceled by statement_timeout
        # a driver error never quotes the bound value
        bad = BuiltQuery(
            'SELECT 1 FROM "offenders" WHERE "release_date" = :v::date', {"v": "sekrit-value"}, ()
        )
        with pytest.raises(SourceError) as info, src.snapshot() as snap:
            list(snap.stream(bad))
        assert "sekrit" not in info.value.message
    with psycopg.connect(pg_url.replace("postgresql+psycopg://", "postgresql://")) as c:
        row = c.execute("SELECT count(*) FROM offenders").fetchone()
        assert row is not None
        assert row[0] > 3000


@pytest.mark.postgres
def test_postgresql_connection_failure_is_a_source_error(postgres_server: PgServer) -> None:  # noqa: F811
    with pytest.raises(SourceError) as info:
        open_source(postgres_server.url("no_such_database"))
    assert info.value.exit_code == 6
    assert "PGPASSFILE" in (info.value.hint or "")


# -- identity and fingerprints ------------------------------------------------------------------


def test_database_id_rules(db_copy: Path) -> None:
    with open_source(url_of(db_copy)) as src:
        assert src.database_id() == "offender-tracking-demo"
    conn = sqlite3.connect(db_copy, isolation_level=None)
    conn.execute("INSERT INTO securexport_database (id) VALUES ('second')")
    with open_source(url_of(db_copy)) as src, pytest.raises(PolicyError, match="exactly one row"):
        src.database_id()
    conn.execute("DELETE FROM securexport_database")
    with open_source(url_of(db_copy)) as src, pytest.raises(PolicyError, match="exactly one row"):
        src.database_id()
    conn.execute("DROP TABLE securexport_database")
    conn.close()
    with open_source(url_of(db_copy)) as src:
        assert src.database_id() is None


def test_schema_fingerprint_tracks_columns_and_view_definitions(db_copy: Path) -> None:
    with open_source(url_of(db_copy)) as src:
        table_fp, view_fp = (
            src.schema_fingerprint("offenders"),
            src.schema_fingerprint("offenders_v"),
        )
    assert table_fp != view_fp
    with open_source(url_of(db_copy)) as src:
        assert src.schema_fingerprint("offenders") == table_fp  # stable
    conn = sqlite3.connect(db_copy, isolation_level=None)
    conn.execute("ALTER TABLE offenders ADD COLUMN ethnicity TEXT")
    conn.execute("DROP VIEW offenders_v")
    conn.execute(
        "CREATE VIEW offenders_v AS SELECT offender_id, postcode, date_of_birth, force_code, "
        "conviction_count, release_date, ppo_flag FROM offenders WHERE force_code = 'WMP'"
    )
    conn.close()
    with open_source(url_of(db_copy)) as src:
        assert src.schema_fingerprint("offenders") != table_fp
        assert src.schema_fingerprint("offenders_v") != view_fp  # same columns, new definition


@pytest.mark.postgres
def test_postgresql_schema_and_identity(postgres_server: PgServer, pg_url: str) -> None:  # noqa: F811
    with open_source(pg_url) as src:
        assert src.table_columns("offenders") == ALL_COLUMNS
        assert src.table_columns("public.offenders_v")["release_date"] == "date"
        with pytest.raises(PolicyError, match="does not exist"):
            src.table_columns("nothere")
        fp = src.schema_fingerprint("offenders")
        fp_view = src.schema_fingerprint("offenders_v")
        dsn_fp = src.dsn_fingerprint
    dbname = pg_url.split("/")[3].split("?")[0]
    postgres_server.psql("ALTER TABLE offenders ADD COLUMN ethnicity text", dbname)
    with open_source(pg_url) as src:
        assert src.schema_fingerprint("offenders") != fp
        assert src.schema_fingerprint("offenders_v") == fp_view
        assert src.dsn_fingerprint == dsn_fp


@pytest.mark.postgres
def test_postgresql_dsn_fingerprint_ignores_user(postgres_server: PgServer) -> None:  # noqa: F811
    postgres_server.psql("CREATE ROLE reader LOGIN")
    with (
        open_source(postgres_server.url("postgres")) as a,
        open_source(postgres_server.url("postgres", user="reader")) as b,
    ):
        assert a.dsn_fingerprint == b.dsn_fingerprint
        assert "reader" not in a._canonical_dsn
        assert "reader" not in b._canonical_dsn


# -- synthetic ----------------------------------------------------------------------------------


def test_synthetic_is_deterministic_and_realistic(tmp_path: Path) -> None:
    one, two = tmp_path / "a.db", tmp_path / "b.db"
    info = make_offenders_db(one, people=2000, seed=1)
    make_offenders_db(two, people=2000, seed=1)

    def dump(p: Path) -> list[Any]:
        return list(sqlite3.connect(p).execute("SELECT * FROM offenders ORDER BY rowid"))

    assert dump(one) == dump(two)
    assert list(iter_rows(50, 2)) != list(iter_rows(50, 1))
    conn = sqlite3.connect(one)
    people, rows = conn.execute(
        "SELECT count(DISTINCT offender_id), count(*) FROM offenders"
    ).fetchone()
    assert people == 2000
    assert rows == info["rows"] > people
    forces = dict(conn.execute("SELECT force_code, count(*) FROM offenders GROUP BY 1"))
    assert max(forces, key=forces.__getitem__) == "WMP"
    assert (
        conn.execute("SELECT count(*) FROM offenders WHERE conviction_count > 30").fetchone()[0] > 0
    )
    assert conn.execute("SELECT count(*) FROM offenders WHERE postcode IS NULL").fetchone()[0] > 0
    assert conn.execute("SELECT count(*) FROM offenders WHERE notes LIKE '%''%'").fetchone()[0] > 0
    assert (
        conn.execute("SELECT count(*) FROM offenders WHERE postcode <> upper(postcode)").fetchone()[
            0
        ]
        > 0
    )
    ids = [r[0] for r in conn.execute("SELECT offender_id FROM offenders")]
    assert all(len(i) == 13 and i[4] == "/" for i in ids)
    conn.close()


def test_synthetic_canary_and_cli(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "c.db"
    info = make_offenders_db(path, people=1500, seed=3, canary="CANARY-7f3a")
    assert info["canary_rows"]
    assert path.read_bytes().count(b"CANARY-7f3a") >= info["canary_rows"]
    assert main([str(tmp_path / "d.db"), "--people", "10", "--seed", "1"]) == 0
    assert "rows for 10 people" in capsys.readouterr().out
    assert main([str(tmp_path / "d.db")]) == 2  # refuses to overwrite


# ------------------------------------------------------------ the split's estimates (parallel)


def test_table_rows_estimates_on_sqlite(tmp_path: Path) -> None:
    db = tmp_path / "t.db"
    with sqlite3.connect(db) as conn:
        conn.execute("CREATE TABLE t (e TEXT)")
        conn.executemany("INSERT INTO t VALUES (?)", [(f"e{i}",) for i in range(1000)])
        conn.execute("DELETE FROM t WHERE rowid BETWEEN 100 AND 199")  # a rowid range gap
        left = [f"e{i}" for i in range(1000) if not 99 <= i <= 198]
        conn.execute("CREATE VIEW v AS SELECT e FROM t WHERE e < 'e5'")
        conn.execute("CREATE TABLE w (e TEXT PRIMARY KEY) WITHOUT ROWID")
        conn.executemany("INSERT INTO w VALUES (?)", [(f"e{i}",) for i in range(30)])
    conn.close()
    with open_source(f"sqlite:///{db}") as source, source.snapshot() as snap:
        assert snap.table_rows("t") == 1000  # the rowid range: an estimate, O(log n)
        assert snap.table_rows("v") == len([e for e in left if e < "e5"])  # a view: counted
        assert snap.table_rows("w") == 30  # no rowid: counted
        assert snap.entity_split("t", "e", 450) == sorted(left)[450]
        assert snap.entity_split("t", "e", 900) is None  # beyond the rows: no split


def test_table_rows_estimates_on_postgresql(
    postgres_server: PgServer,  # noqa: F811
    db: Path,
) -> None:
    pg_url = postgres_server.create_database(f"estimates_{uuid.uuid4().hex[:8]}")
    load_into_postgres(db, pg_url)  # its own copy: rows are deleted below
    with open_source(pg_url) as source, source.snapshot() as snap:
        exact = snap.table_rows("offenders")  # never analysed: counted
    conn = psycopg.connect(pg_url.replace("postgresql+psycopg", "postgresql"), autocommit=True)
    with conn:
        assert conn.execute("SELECT count(*) FROM offenders").fetchone()[0] == exact
        conn.execute("ANALYZE offenders")
        conn.execute("DELETE FROM offenders WHERE ctid IN (SELECT ctid FROM offenders LIMIT 10)")
    with open_source(pg_url) as source, source.snapshot() as snap:
        assert snap.table_rows("offenders") == exact  # reltuples, from before the delete
        assert snap.share() is not None  # a primary exports its snapshot
