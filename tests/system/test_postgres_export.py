"""The same approvals on SQLite and on PostgreSQL give the same bytes (issue 5).

A real PostgreSQL server (tests/support/pg.py) is loaded with the same data as the SQLite
file; each approval is exported from both, both bundles are decrypted, and the plaintexts must
be identical byte for byte.  A small hand-written table (tests/vectors/golden/) pins every
transform, NULL handling and on_invalid on both databases.  The snapshot test inserts rows
from another connection between the two passes of a real export.
"""

from __future__ import annotations

import csv
import io
import json
import os
import re
import sqlite3
import uuid
from pathlib import Path

import psycopg
import pytest

from securexport import api
from securexport.data import pipeline
from securexport.data.transforms import pseudonym_reference
from securexport.errors import PolicyError
from securexport.home.keystore import KeyStore
from securexport.synthetic import load_into_postgres
from tests.support.pg import PgServer
from tests.support.world import TEST_LOG_N, World

pytestmark = pytest.mark.postgres

GOLDEN = Path(__file__).resolve().parents[1] / "vectors" / "golden"

# ------------------------------------------------------------------------- helpers


def _decrypt(world: World, bundle: Path) -> bytes:
    out = bundle.with_suffix(".out")
    api.decrypt(world.recipient, bundle, "force", out)
    (data,) = (out / "data").iterdir()
    return data.read_bytes()


# Read in one process, or split between two at any size (securexport.parallel).
ONE, TWO = 10**12, 1


def _export(
    world: World, approval: Path, url: str, parallel_min_rows: int = ONE
) -> tuple[api.ExportResult, bytes]:
    world.counter += 1
    out = world.root / f"bundle-{world.counter}.sxb"
    result = api.export(
        world.exporter, approval, url, "analyst", out, parallel_min_rows=parallel_min_rows
    )
    return result, _decrypt(world, out)


def _pg_copy(postgres_server: PgServer, sqlite_path: Path) -> tuple[str, str]:
    name = f"sx_{uuid.uuid4().hex[:10]}"
    url = postgres_server.create_database(name)
    load_into_postgres(sqlite_path, url)
    return name, url


# ------------------------------------------------------------------------- synthetic data

JSONL_COLUMNS = """
[[column]]
name      = "offender"
source    = "offender_id"
transform = "pseudonym"

[[column]]
name      = "dob"
source    = "date_of_birth"
transform = "keep"
role      = "sensitive"

[[column]]
name      = "convictions"
source    = "conviction_count"
transform = "keep"
role      = "sensitive"

[[column]]
name      = "postcode"
source    = "postcode"
transform = "postcode_trunc"
level     = "sector"
on_invalid = "suppress_row"
role      = "sensitive"
"""


@pytest.mark.parametrize("processes", [ONE, TWO], ids=["one-process", "two-processes"])
@pytest.mark.parametrize("variant", ["default", "jsonl-keep"])
def test_sqlite_and_postgresql_exports_are_identical(
    world: World, postgres_server: PgServer, variant: str, processes: int
) -> None:
    _, pg_url = _pg_copy(postgres_server, world.db_path)
    if variant == "default":
        approval = world.write_approval()
    else:
        approval = world.write_approval(
            columns=JSONL_COLUMNS, privacy="", output_format="jsonl", filters=""
        )
    lite, lite_plain = _export(world, approval, world.source_url, processes)
    pg, pg_plain = _export(world, approval, pg_url, processes)
    serial, serial_plain = _export(world, approval, world.source_url)
    assert lite.rows_written > 100
    assert lite_plain == serial_plain
    assert lite.manifest["records"] == serial.manifest["records"]
    assert pg_plain == lite_plain
    for key in ("matching", "written", "suppressed", "invalid_suppressed"):
        assert pg.manifest["records"][key] == lite.manifest["records"][key]
    assert pg.manifest["query"] == lite.manifest["query"]
    assert pg.manifest["source"]["driver"] == "postgresql"
    if variant == "default":
        assert lite.manifest["records"]["class_sizes"] == pg.manifest["records"]["class_sizes"]
    # plan agrees with both exports
    report = api.plan(world.owner, approval, pg_url)
    assert (report.matching_rows, report.written_rows) == (lite.matching_rows, lite.rows_written)


def test_class_sizes_count_entities_not_rows(world: World, postgres_server: PgServer) -> None:
    """The streaming counter agrees with a direct count of distinct entities (pseudonyms) per
    class over the rows written, on both databases."""
    _, pg_url = _pg_copy(postgres_server, world.db_path)
    approval = world.write_approval(privacy=_privacy(k=2))
    lite, plain = _export(world, approval, world.source_url)
    pg, _ = _export(world, approval, pg_url)
    rows = list(csv.reader(io.StringIO(plain.decode())))[1:]
    classes: dict[tuple[str, ...], set[str]] = {}
    for r in rows:
        classes.setdefault((r[1], r[2], r[4]), set()).add(r[0])
    histogram: dict[str, int] = {}
    for members in classes.values():
        histogram[str(len(members))] = histogram.get(str(len(members)), 0) + 1
    assert lite.manifest["records"]["class_sizes_written"] == histogram
    assert pg.manifest["records"]["class_sizes_written"] == histogram
    assert pg.manifest["records"]["class_sizes"] == lite.manifest["records"]["class_sizes"]
    assert "1" in lite.manifest["records"]["class_sizes"]  # some classes were suppressed
    assert any(int(size) > 2 for size in histogram)


def _privacy(k: int) -> str:
    return (
        f'[privacy]\nquasi_identifiers = ["birth_year", "district", "release_quarter"]\n'
        f'k = {k}\non_violation = "suppress"\nmax_suppressed_fraction = 0.9\n'
    )


# ------------------------------------------------------------------------- golden table

GOLDEN_SQLITE = """
CREATE TABLE offenders (
    offender_id      TEXT NOT NULL,
    full_name        TEXT,
    postcode         TEXT,
    date_of_birth    DATE,
    force_code       TEXT,
    conviction_count INTEGER,
    release_date     DATE
);
CREATE INDEX offenders_offender_id ON offenders (offender_id);
"""
GOLDEN_PG = """
CREATE TABLE offenders (
    offender_id      text NOT NULL,
    full_name        text,
    postcode         text,
    date_of_birth    date,
    force_code       text,
    conviction_count integer,
    release_date     date
);
"""


def _golden_rows() -> list[tuple[object, ...]]:
    with open(GOLDEN / "source.csv", encoding="utf-8", newline="") as fh:
        reader = csv.reader(fh)
        header = next(reader)
        assert header == [
            "offender_id",
            "full_name",
            "postcode",
            "date_of_birth",
            "force_code",
            "conviction_count",
            "release_date",
        ]
        # The file writes NULL as the two characters \N (an empty field is an empty string).
        return [
            tuple(None if v == "\\N" else int(v) if i == 5 else v for i, v in enumerate(row))
            for row in reader
        ]


def _golden_databases(tmp_path: Path, postgres_server: PgServer) -> tuple[str, str]:
    rows = _golden_rows()
    db = tmp_path / "golden.db"
    with sqlite3.connect(db) as conn:
        conn.executescript(GOLDEN_SQLITE)
        conn.executemany("INSERT INTO offenders VALUES (?, ?, ?, ?, ?, ?, ?)", rows)
    conn.close()
    name = f"golden_{uuid.uuid4().hex[:10]}"
    url = postgres_server.create_database(name)
    with psycopg.connect(postgres_server.conninfo(name)) as pg:
        pg.execute(GOLDEN_PG)
        with pg.cursor() as cur:
            cur.executemany("INSERT INTO offenders VALUES (%s, %s, %s, %s, %s, %s, %s)", rows)
    return f"sqlite:///{db}", url


def _golden_expected(world: World, name: str = "expected.csv") -> bytes:
    """``name`` with each ``{pseudonym:ID}`` replaced by the reference pseudonym of ID."""
    key = KeyStore(world.exporter, scrypt_log_n=TEST_LOG_N).pseudonym_key("test-key")
    text = (GOLDEN / name).read_bytes().decode("utf-8")
    out = []
    for cell_line in text.split("\r\n"):
        while "{pseudonym:" in cell_line:
            start = cell_line.index("{pseudonym:")
            end = cell_line.index("}", start)
            ident = cell_line[start + len("{pseudonym:") : end]
            cell_line = (
                cell_line[:start]
                + pseudonym_reference(key, "APR-GOLDEN-1", ident)
                + cell_line[end + 1 :]
            )
        out.append(cell_line)
    return "\r\n".join(out).encode("utf-8")


@pytest.mark.parametrize("processes", [ONE, TWO], ids=["one-process", "two-processes"])
def test_golden_table_on_sqlite_and_postgresql(
    world: World, tmp_path: Path, postgres_server: PgServer, processes: int
) -> None:
    lite_url, pg_url = _golden_databases(tmp_path, postgres_server)
    columns = (GOLDEN / "columns.toml").read_text(encoding="utf-8")
    approval = world.write_approval(
        approval_id="APR-GOLDEN-1", columns=columns, privacy="", filters=""
    )
    expected = _golden_expected(world)
    lite, lite_plain = _export(world, approval, lite_url, processes)
    pg, pg_plain = _export(world, approval, pg_url, processes)
    assert lite_plain == expected
    assert pg_plain == expected
    assert lite.matching_rows == pg.matching_rows == 30
    # rows whose force code is not in the map are dropped (on_invalid = "suppress_row")
    assert lite.rows_written == pg.rows_written == expected.count(b"\r\n") - 1


# JSONL: columns.toml plus the source columns kept as they are, so that the file pins both
# rules of DESIGN.md §11 (transformed values are strings; kept values keep their JSON type:
# integers as numbers, dates as ISO 8601 strings, NULL as null) and JSON string escaping.
GOLDEN_JSONL_KEPT = """
[[column]]
name      = "dob"
source    = "date_of_birth"
transform = "keep"

[[column]]
name      = "release_date"
source    = "release_date"
transform = "keep"

[[column]]
name      = "conviction_count"
source    = "conviction_count"
transform = "keep"

[[column]]
name      = "postcode"
source    = "postcode"
transform = "keep"

[[column]]
name      = "full_name"
source    = "full_name"
transform = "keep"
"""
KEPT = ("dob", "release_date", "conviction_count", "postcode", "full_name")


@pytest.mark.parametrize("processes", [ONE, TWO], ids=["one-process", "two-processes"])
def test_golden_table_jsonl_on_sqlite_and_postgresql(
    world: World, tmp_path: Path, postgres_server: PgServer, processes: int
) -> None:
    lite_url, pg_url = _golden_databases(tmp_path, postgres_server)
    columns = (GOLDEN / "columns.toml").read_text(encoding="utf-8") + GOLDEN_JSONL_KEPT
    approval = world.write_approval(
        approval_id="APR-GOLDEN-1",
        columns=columns,
        privacy="",
        filters="",
        output_format="jsonl",
    )
    expected = _golden_expected(world, "expected.jsonl")
    lite, lite_plain = _export(world, approval, lite_url, processes)
    pg, pg_plain = _export(world, approval, pg_url, processes)
    assert lite_plain == expected
    assert pg_plain == expected
    assert lite.matching_rows == pg.matching_rows == 30
    assert lite.rows_written == pg.rows_written == expected.count(b"\n") == 29


def test_golden_jsonl_agrees_with_the_csv_golden_and_the_source() -> None:
    """expected.jsonl was generated once; this ties it to what was checked by hand.

    Each transformed column equals expected.csv's cell (null where the CSV field is empty, and
    never null where it is not); each kept column has its JSON type and, row for row, equals
    the source table (source.csv, less the row dropped by on_invalid = "suppress_row").
    """
    csv_text = (GOLDEN / "expected.csv").read_bytes().decode("utf-8")
    csv_rows = list(csv.reader(io.StringIO(csv_text, newline="")))
    header, csv_rows = csv_rows[0], csv_rows[1:]
    jsonl = (GOLDEN / "expected.jsonl").read_bytes()
    assert jsonl.endswith(b"\n") and b"\r" not in jsonl
    docs = [json.loads(line) for line in jsonl.decode("utf-8").splitlines()]
    assert len(docs) == len(csv_rows) == 29
    seen = []
    for doc, row in zip(docs, csv_rows, strict=True):
        assert list(doc) == header + list(KEPT)
        for name, cell in zip(header, row, strict=True):
            # Transformed values (and force_code, kept text) are strings or null.
            assert doc[name] is None or isinstance(doc[name], str), (name, doc[name])
            assert ("" if doc[name] is None else doc[name]) == cell
        for name in ("dob", "release_date"):  # kept dates: ISO 8601 strings
            assert doc[name] is None or re.fullmatch(r"\d{4}-\d{2}-\d{2}", doc[name])
        count = doc["conviction_count"]  # a kept integer stays a JSON number
        assert count is None or (isinstance(count, int) and not isinstance(count, bool))
        if doc["full_name"] is None:
            assert doc["initial"] is None  # NULL in, NULL out
        assert doc["name"] is None and doc["extract"] == "golden-v1"
        ident = re.fullmatch(r"\{pseudonym:(A\d{4})\}", doc["offender"])
        assert ident
        seen.append((ident[1], *(doc[k] for k in KEPT)))
    source = [(r[0], r[3], r[6], r[5], r[2], r[1]) for r in _golden_rows() if r[4] != "XYZ"]
    assert sorted(seen, key=repr) == sorted(source, key=repr)
    # NULL and the empty string stay apart (the CSV cannot tell them apart).
    by_id = {s[0]: s for s in seen}
    assert by_id["A0005"][5] is None and by_id["A0009"][5] == ""


@pytest.mark.parametrize("processes", [ONE, TWO], ids=["one-process", "two-processes"])
def test_golden_invalid_value_errors_name_row_and_column_on_both(
    world: World, tmp_path: Path, postgres_server: PgServer, processes: int
) -> None:
    lite_url, pg_url = _golden_databases(tmp_path, postgres_server)
    columns = (
        '[[column]]\nname = "district"\nsource = "postcode"\ntransform = "postcode_trunc"\n'
        'level = "district"\nrole = "sensitive"\n'
    )
    approval = world.write_approval(
        approval_id="APR-GOLDEN-2", columns=columns, privacy="", filters="", pseudonym=False
    )
    messages = []
    for url in (lite_url, pg_url):
        with pytest.raises(PolicyError) as info:
            world.counter += 1
            api.export(
                world.exporter,
                approval,
                url,
                "analyst",
                world.root / f"e{world.counter}.sxb",
                parallel_min_rows=processes,
            )
        messages.append(info.value.message)
        assert "column 'district'" in info.value.message
        assert "row " in info.value.message
        assert not list(world.root.glob("*.partial"))
    assert messages[0] == messages[1]


# ------------------------------------------------------------------------- snapshot


@pytest.mark.parametrize("processes", [ONE, TWO], ids=["one-process", "two-processes"])
def test_rows_inserted_during_an_export_do_not_appear(
    world: World, postgres_server: PgServer, monkeypatch: pytest.MonkeyPatch, processes: int
) -> None:
    """Another connection commits new matching rows after the export's snapshot was taken and
    before its read: the export does not see them (REPEATABLE READ READ ONLY), nor does its
    second process, which opens the same snapshot by id."""
    name, pg_url = _pg_copy(postgres_server, world.db_path)
    approval = world.write_approval()
    before, before_plain = _export(world, approval, pg_url)

    original = pipeline.read_part
    inserted = []
    me = os.getpid()

    def insert_then_read(*args: object, **kwargs: object) -> pipeline.PartRead:
        if os.getpid() == me and not inserted:  # not in the forked worker
            with psycopg.connect(postgres_server.conninfo(name), autocommit=True) as other:
                other.execute(
                    "INSERT INTO offenders (offender_id, postcode, date_of_birth, force_code, "
                    "conviction_count, release_date, ppo_flag) "
                    "SELECT offender_id || 'X', postcode, date_of_birth, force_code, "
                    "conviction_count, release_date, ppo_flag FROM offenders "
                    "WHERE force_code = 'WMP'"
                )
            inserted.append(True)
        return original(*args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(pipeline, "read_part", insert_then_read)
    during, during_plain = _export(world, approval, pg_url, processes)
    assert inserted
    assert during.matching_rows == before.matching_rows
    assert during_plain == before_plain
    monkeypatch.undo()
    after, _ = _export(world, approval, pg_url)
    assert after.matching_rows == 2 * before.matching_rows


def test_null_entities_last_in_two_processes(world: World, postgres_server: PgServer) -> None:
    """NULL entities sort last on PostgreSQL: their part is read after the worker's."""
    name, pg_url = _pg_copy(postgres_server, world.db_path)
    with psycopg.connect(postgres_server.conninfo(name), autocommit=True) as conn:
        conn.execute("ALTER TABLE offenders ALTER COLUMN offender_id DROP NOT NULL")
        conn.execute(
            "UPDATE offenders SET offender_id = NULL WHERE offender_id IN "
            "(SELECT offender_id FROM offenders ORDER BY offender_id LIMIT 50)"
        )
    approval = world.write_approval(filters="")
    one, one_plain = _export(world, approval, pg_url, ONE)
    two, two_plain = _export(world, approval, pg_url, TWO)
    assert two_plain == one_plain
    assert two.manifest["records"] == one.manifest["records"]
    assert one_plain.split(b"\r\n")[-2].startswith(b",")  # a NULL pseudonym, last


def test_no_shared_snapshot_means_one_process(
    world: World, postgres_server: PgServer, monkeypatch: pytest.MonkeyPatch, forks: list[int]
) -> None:
    """A hot standby cannot export its snapshot (share() gives None): the read stays in one
    process rather than let a worker read other data."""
    from securexport.data.source import Snapshot

    _, pg_url = _pg_copy(postgres_server, world.db_path)
    approval = world.write_approval(filters="")
    _, expected = _export(world, approval, pg_url, ONE)
    monkeypatch.setattr(Snapshot, "share", lambda self: None)
    _, plain = _export(world, approval, pg_url, TWO)
    assert forks == []
    assert plain == expected
