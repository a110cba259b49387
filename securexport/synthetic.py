"""A synthetic offender-tracking database, for development, demos, tests and benchmarks.

Every value is invented; the shapes are realistic enough to exercise the export path: PNC-style
ids with their check letter, UK postcodes in several police force areas (some lower-case, some
without the space, a few invalid, some NULL), skewed force sizes and conviction counts, several
custody episodes for some people (the same ``offender_id`` on more than one row, so counting
entities differs from counting rows), and free text with apostrophes, accents, commas, quotes
and newlines.

The output is a deterministic function of ``(people, seed, as_of, canary)``::

    python -m securexport.synthetic offenders.db --people 30000 --seed 2026

It writes table ``offenders``, view ``offenders_v`` (the owner-maintained view without names,
addresses or notes) and the one-row table ``securexport_database(id)`` holding
``offender-tracking-demo``.  :func:`load_into_postgres` copies the same data into PostgreSQL.
"""

from __future__ import annotations

import argparse
import random
import sqlite3
import sys
from collections.abc import Iterator, Sequence
from datetime import date, timedelta
from pathlib import Path
from typing import Any

DATABASE_ID = "offender-tracking-demo"
#: Release dates spread over the three years before this date (the test suite's clock).
DEFAULT_AS_OF = date(2026, 6, 1)

COLUMNS = (
    "offender_id",
    "full_name",
    "address",
    "postcode",
    "date_of_birth",
    "force_code",
    "conviction_count",
    "prison",
    "release_date",
    "ppo_flag",
    "notes",
)

_SQLITE_SCHEMA = """
CREATE TABLE offenders (
    offender_id      TEXT NOT NULL,
    full_name        TEXT,
    address          TEXT,
    postcode         TEXT,
    date_of_birth    DATE,
    force_code       TEXT NOT NULL,
    conviction_count INTEGER NOT NULL,
    prison           TEXT,
    release_date     DATE,
    ppo_flag         INTEGER NOT NULL,
    notes            TEXT
);
CREATE INDEX offenders_offender_id ON offenders (offender_id);
CREATE VIEW offenders_v AS
    SELECT offender_id, postcode, date_of_birth, force_code, conviction_count,
           release_date, ppo_flag
    FROM offenders;
CREATE TABLE securexport_database (id TEXT NOT NULL);
"""

_PG_SCHEMA = """
CREATE TABLE offenders (
    offender_id      text NOT NULL,
    full_name        text,
    address          text,
    postcode         text,
    date_of_birth    date,
    force_code       text NOT NULL,
    conviction_count integer NOT NULL,
    prison           text,
    release_date     date,
    ppo_flag         integer NOT NULL,
    notes            text
);
CREATE INDEX offenders_offender_id ON offenders (offender_id);
CREATE VIEW offenders_v AS
    SELECT offender_id, postcode, date_of_birth, force_code, conviction_count,
           release_date, ppo_flag
    FROM offenders;
CREATE TABLE securexport_database (id text NOT NULL);
"""

# force code → (weight, [(postcode area, district numbers, towns)])
_FORCES: dict[str, tuple[int, list[tuple[str, Sequence[str], Sequence[str]]]]] = {
    "WMP": (
        34,
        [
            ("B", [str(n) for n in range(1, 48)], ["Birmingham", "Sutton Coldfield", "Solihull"]),
            ("CV", [str(n) for n in range(1, 13)], ["Coventry"]),
            ("WS", [str(n) for n in range(1, 11)], ["Walsall"]),
            ("WV", [str(n) for n in range(1, 15)], ["Wolverhampton"]),
            ("DY", [str(n) for n in range(1, 9)], ["Dudley", "Stourbridge"]),
        ],
    ),
    "MPS": (
        24,
        [
            ("E", ["1", "1W", "2", "3", "5", "8", "9", "10", "13", "15", "17"], ["London"]),
            ("SW", ["1A", "2", "4", "8", "9", "11", "16", "17", "19"], ["London"]),
            ("N", ["1", "4", "7", "9", "15", "17", "18"], ["London"]),
            ("SE", ["1", "5", "6", "8", "13", "15", "18", "28"], ["London"]),
        ],
    ),
    "GMP": (
        16,
        [
            ("M", [str(n) for n in range(1, 41)], ["Manchester", "Salford"]),
            ("BL", [str(n) for n in range(1, 10)], ["Bolton", "Bury"]),
            ("OL", [str(n) for n in range(1, 17)], ["Oldham", "Rochdale"]),
        ],
    ),
    "WYP": (
        12,
        [
            ("LS", [str(n) for n in range(1, 30)], ["Leeds"]),
            ("BD", [str(n) for n in range(1, 24)], ["Bradford"]),
            ("WF", [str(n) for n in range(1, 18)], ["Wakefield"]),
        ],
    ),
    "MER": (9, [("L", [str(n) for n in range(1, 40)], ["Liverpool", "Bootle"])]),
    "TVP": (3, [("OX", [str(n) for n in range(1, 30)], ["Oxford", "Banbury"])]),
    "AVS": (2, [("BS", [str(n) for n in range(1, 41)], ["Bristol"])]),
}

_PRISONS = {
    "WMP": ["HMP Birmingham", "HMP Hewell", "HMP Oakwood", "HMP Featherstone", "HMP Brinsford"],
    "MPS": ["HMP Pentonville", "HMP Wandsworth", "HMP Belmarsh", "HMP Thameside", "HMYOI Feltham"],
    "GMP": ["HMP Manchester", "HMP Forest Bank", "HMP Risley", "HMP Styal"],
    "WYP": ["HMP Leeds", "HMP Wakefield", "HMP New Hall", "HMP Wealstun"],
    "MER": ["HMP Liverpool", "HMP Altcourse", "HMP Risley"],
    "TVP": ["HMP Bullingdon", "HMP Huntercombe"],
    "AVS": ["HMP Bristol", "HMP Eastwood Park"],
}

_FIRST = [
    "James",
    "Oliver",
    "Mohammed",
    "Jack",
    "Harry",
    "Connor",
    "Liam",
    "Kyle",
    "Daniel",
    "Jordan",
    "Aaron",
    "Ryan",
    "Lewis",
    "Tyler",
    "Kieran",
    "Dean",
    "Wayne",
    "Lee",
    "Craig",
    "Jamal",
    "Amir",
    "Imran",
    "Tariq",
    "Kwame",
    "Delroy",
    "Siân",
    "Zoë",
    "Chloé",
    "Amélie",
    "Renée",
    "Niamh",
    "Aoife",
    "Siobhán",
    "Grace",
    "Emma",
    "Jade",
    "Chantelle",
    "Leanne",
    "Stacey",
    "Kerry",
    "José",
    "Łukasz",
    "Paweł",
    "Marek",
    "Ştefan",
    "Dragoș",
    "Björn",
    "Søren",
    "Jürgen",
    "Ömer",
    "Dafydd",
    "Rhiannon",
    "Aled",
    "Seán",
    "Éamon",
]
_LAST = [
    "Smith",
    "Jones",
    "Williams",
    "Brown",
    "Taylor",
    "Davies",
    "Evans",
    "Wilson",
    "Thomas",
    "Johnson",
    "Roberts",
    "Walker",
    "Wright",
    "Robinson",
    "Thompson",
    "White",
    "Hughes",
    "Edwards",
    "Green",
    "Hall",
    "Wood",
    "Harris",
    "Lewis",
    "Martin",
    "Jackson",
    "Clarke",
    "Khan",
    "Ahmed",
    "Hussain",
    "Ali",
    "Begum",
    "Patel",
    "Singh",
    "Kaur",
    "Mensah",
    "Okafor",
    "O'Brien",
    "O'Neill",
    "O'Connor",
    "D'Souza",
    "McDonald",
    "MacLeod",
    "Nowak",
    "Kowalski",
    "Wiśniewski",
    "Müller",
    "Núñez",
    "Popescu",
    "Ó Súilleabháin",
    "Ní Bhriain",
    "Smith-Jones",
    "ap Rhys",
    "Le Roux",
    "van der Berg",
]
_STREETS = [
    "High Street",
    "Station Road",
    "Church Lane",
    "Victoria Road",
    "Green Lane",
    "Park Road",
    "Queen's Road",
    "King's Avenue",
    "St Mary's Close",
    "Mill Lane",
    "Albert Road",
    "Chapel Street",
    "The Crescent",
    "Windsor Court",
    "New Road",
    "Alum Rock Road",
    "Soho Road",
    "Stratford Road",
    "Coventry Road",
    "Wilmslow Road",
    "Harehills Lane",
    "Scotland Road",
    "Old Kent Road",
    "Mile End Road",
]
_NOTES = [
    "Lives with partner; children aged 4 and 7.",
    "Breach of licence, recalled; re-released.",
    'Known as "Tommy" to associates.',
    "Requires interpreter (Polish / Română).",
    "Address changed twice in 2024, last: c/o hostel.",
    "Victim contact scheme applies.\nDo not disclose address.",
    "Exclusion zone: city centre, Broad St, Hurst St.",
    "Drug testing on release; engaged with services.",
    "Employment: warehouse, nights; curfew 19:00–07:00.",
    "Risk: medium; MAPPA level 1.",
    'Said "I\'m not going back" at last appointment.',
    "Café owner's complaint, 12/03 — no further action.",
    "Mental-health referral; GP: Dr O'Sullivan.",
    "Tag fitted; résumé shared with employer.",
    "PPO scheme since 2023, reviewed quarterly,\nnext review due.",
]
_INWARD_LETTERS = "ABDEFGHJLNPQRSTUWXYZ"  # inward codes never use C I K M O V
_PNC_CHECK = "ZABCDEFGHJKLMNPQRTUVWXY"


def pnc_id(year: int, serial: int) -> str:
    """A PNC-style id ``YYYY/NNNNNNNL``: the check letter is (YY·10⁷ + serial) mod 23."""
    check = _PNC_CHECK[((year % 100) * 10_000_000 + serial) % 23]
    return f"{year}/{serial:07d}{check}"


def _postcode(rng: random.Random, area: str, districts: Sequence[str]) -> str | None:
    r = rng.random()
    if r < 0.03:
        return None
    if r < 0.04:
        return rng.choice(["UNKNOWN", "NFA", "B99 9ZZZ", "1234", "ZZ1", "N/A", ""])
    outward = area + rng.choice(districts)
    inward = f"{rng.randrange(10)}{rng.choice(_INWARD_LETTERS)}{rng.choice(_INWARD_LETTERS)}"
    code = f"{outward} {inward}"
    if r < 0.09:
        code = code.lower()
    elif r < 0.14:
        code = outward + inward
    return code


def _conviction_count(rng: random.Random) -> int:
    n = int(rng.paretovariate(1.6))  # heavy tail: most 1-4, a few above 30
    return min(n, 120)


def _episodes(rng: random.Random) -> int:
    r = rng.random()
    return 1 if r < 0.80 else 2 if r < 0.96 else 3


def iter_rows(
    people: int, seed: int, as_of: date = DEFAULT_AS_OF, canary: str | None = None
) -> Iterator[tuple[Any, ...]]:
    """The rows, in :data:`COLUMNS` order; dates as ISO text (as SQLite stores them)."""
    rng = random.Random(seed)
    forces = list(_FORCES)
    weights = [_FORCES[f][0] for f in forces]
    recent = as_of - timedelta(days=365)
    for person in range(people):
        force = rng.choices(forces, weights)[0]
        area, districts, towns = rng.choice(_FORCES[force][1])
        year = rng.randrange(1995, 2025)
        oid = pnc_id(year, (person * 7919 + rng.randrange(7919)) % 10_000_000)
        name = f"{rng.choice(_FIRST)} {rng.choice(_LAST)}"
        dob = date(1950, 1, 1) + timedelta(days=rng.randrange(56 * 365))
        ppo = 1 if rng.random() < 0.08 else 0
        for _ in range(_episodes(rng)):
            address = (
                f"{rng.randrange(1, 300)} {rng.choice(_STREETS)}, {rng.choice(towns)}"
                if rng.random() > 0.02
                else None
            )
            release = (
                as_of - timedelta(days=rng.randrange(3 * 365)) if rng.random() > 0.15 else None
            )
            notes = rng.choice(_NOTES) if rng.random() > 0.3 else None
            full_name = name
            if canary is not None and force == "WMP" and release is not None and release >= recent:
                notes = f"{notes or ''} {canary}".strip()
                if rng.random() < 0.5:
                    full_name = f"{name} {canary}"
            yield (
                oid,
                full_name,
                address,
                _postcode(rng, area, districts),
                dob.isoformat(),
                force,
                _conviction_count(rng),
                rng.choice(_PRISONS[force]),
                release.isoformat() if release else None,
                ppo,
                notes,
            )


def make_offenders_db(
    path: Path,
    *,
    people: int = 30000,
    seed: int = 2026,
    canary: str | None = None,
    as_of: date = DEFAULT_AS_OF,
) -> dict[str, Any]:
    """Write a new SQLite file at ``path`` (which must not exist) and describe what it holds.

    ``canary``: appended to ``notes`` (and, for about half, to ``full_name``) of every row that
    the example approval of DESIGN.md §5 matches (force WMP, released within 365 days before
    ``as_of``), so a test can search the disk for it.  Returns ``people``, ``rows``,
    ``canary_rows``, ``seed``, ``as_of`` (ISO), ``database_id`` and ``path``.
    """
    path = Path(path)
    if path.exists():
        raise FileExistsError(f"{path} exists already")
    if people < 0:
        raise ValueError("people must be non-negative")
    conn = sqlite3.connect(path, isolation_level=None)
    rows = canary_rows = 0
    try:
        conn.execute("PRAGMA journal_mode=DELETE")
        conn.execute("PRAGMA synchronous=OFF")
        conn.execute("BEGIN")
        for statement in _SQLITE_SCHEMA.split(";"):
            if statement.strip():
                conn.execute(statement)
        conn.execute("INSERT INTO securexport_database (id) VALUES (?)", (DATABASE_ID,))
        marks = ", ".join("?" * len(COLUMNS))
        insert = f"INSERT INTO offenders ({', '.join(COLUMNS)}) VALUES ({marks})"  # noqa: S608
        batch: list[tuple[Any, ...]] = []
        for row in iter_rows(people, seed, as_of, canary):
            batch.append(row)
            if canary is not None and canary in (row[10] or ""):
                canary_rows += 1
            if len(batch) >= 10_000:
                conn.executemany(insert, batch)
                rows += len(batch)
                batch.clear()
        conn.executemany(insert, batch)
        rows += len(batch)
        conn.execute("COMMIT")
    except BaseException:
        conn.close()
        path.unlink(missing_ok=True)
        raise
    conn.close()
    return {
        "path": str(path),
        "people": people,
        "rows": rows,
        "canary_rows": canary_rows,
        "seed": seed,
        "as_of": as_of.isoformat(),
        "database_id": DATABASE_ID,
    }


def load_into_postgres(sqlite_path: Path, pg_url: str, *, batch_size: int = 10_000) -> int:
    """Copy a database made by :func:`make_offenders_db` into an empty PostgreSQL database
    (``postgresql+psycopg://…``, no password in it: use PGPASSFILE) with ``COPY``.  Creates the
    same table, view and ``securexport_database``; returns the number of offender rows."""
    import sqlalchemy as sa

    engine = sa.create_engine(pg_url, poolclass=sa.pool.NullPool)
    src = sqlite3.connect(f"file:{Path(sqlite_path).resolve()}?mode=ro", uri=True)
    copied = 0
    try:
        raw = engine.raw_connection()
        try:
            pg = raw.driver_connection
            assert pg is not None
            with pg.cursor() as cur:
                cur.execute(_PG_SCHEMA)
                (db_id,) = src.execute("SELECT id FROM securexport_database").fetchone()
                cur.execute("INSERT INTO securexport_database (id) VALUES (%s)", (db_id,))
                select = f"SELECT {', '.join(COLUMNS)} FROM offenders ORDER BY rowid"  # noqa: S608
                source_cur = src.execute(select)
                with cur.copy(f"COPY offenders ({', '.join(COLUMNS)}) FROM STDIN") as copy:
                    while chunk := source_cur.fetchmany(batch_size):
                        for row in chunk:
                            copy.write_row(row)
                        copied += len(chunk)
            pg.commit()
        finally:
            raw.close()
    finally:
        src.close()
        engine.dispose()
    return copied


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m securexport.synthetic",
        description="Write a synthetic offender-tracking SQLite database (all values invented).",
        epilog="example: python -m securexport.synthetic offenders.db --people 30000 --seed 2026",
    )
    parser.add_argument("path", type=Path, help="the SQLite file to create (must not exist)")
    parser.add_argument("--people", type=int, default=30000, help="number of people (30000)")
    parser.add_argument("--seed", type=int, default=2026, help="random seed (2026)")
    parser.add_argument(
        "--as-of",
        type=date.fromisoformat,
        default=DEFAULT_AS_OF,
        help=f"release dates fall in the 3 years before this date ({DEFAULT_AS_OF})",
    )
    parser.add_argument("--canary", help="a marker string put into matching rows' text")
    args = parser.parse_args(argv)
    try:
        info = make_offenders_db(
            args.path, people=args.people, seed=args.seed, canary=args.canary, as_of=args.as_of
        )
    except (FileExistsError, ValueError) as exc:
        print(f"securexport.synthetic: error: {exc}", file=sys.stderr)
        return 2
    print(f"wrote {info['rows']} rows for {info['people']} people to {info['path']}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
