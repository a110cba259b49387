"""I. Leaks and over-sharing: no value in any message, no core dumps, no password in --source,
and a signed bundle carrying more than its approval refused at decrypt.

The canary (``SXCANARY…``) sits in every source row; :func:`run_case` fails a case if it shows
up in any error, hint, stdout or stderr (also with ``-v``), or in any file left behind.
"""

from __future__ import annotations

import sqlite3
import subprocess
import sys
from collections.abc import Callable

import pytest

from tests.adversarial.harness import CANARY, REPO, Ctx, run_case, subprocess_env
from tests.adversarial.registry import Case, RecordProperty, case, params

WMP_ROW = "rowid = (SELECT min(rowid) FROM offenders WHERE force_code = 'WMP')"


def _export_cli(ctx: Ctx, approval: object, *flags: str) -> int:
    out = ctx.root / "leak.sxb"
    ctx.outputs.append(out)
    args = [
        *flags,
        "export",
        str(approval),
        "--source",
        ctx.world.source_url,
        "--as",
        "analyst",
        "-o",
        str(out),
    ]
    return ctx.cli(args, role="exporter")


def _poison(ctx: Ctx, column: str) -> None:
    with sqlite3.connect(ctx.world.db_path) as conn:
        conn.execute(
            f"UPDATE offenders SET {column} = ? WHERE {WMP_ROW}", (CANARY + "-\x1b[31m'\"",)
        )
    conn.close()


@case(
    "I",
    "invalid-postcode-verbose",
    3,
    "an invalid postcode (the canary) under on_invalid = error, with `-v`",
    via="cli",
    message=r"row \d+: column 'district': postcode_trunc cannot use the value \(not a UK postcode\)",
)
def _postcode(ctx: Ctx) -> int:
    _poison(ctx, "postcode")
    columns = __import__("tests.adversarial.harness", fromlist=["ADV_COLUMNS"]).ADV_COLUMNS
    approval = ctx.approval_with(
        columns=columns.replace('on_invalid = "null"', 'on_invalid = "error"')
    )
    return _export_cli(ctx, approval, "-v")


@case(
    "I",
    "invalid-date-verbose",
    3,
    "a date of birth that is not a date (the canary), with `-v`",
    via="cli",
    message=r"row \d+: column 'birth_year': date_trunc cannot use the value \(not an ISO 8601 date\)",
)
def _date(ctx: Ctx) -> int:
    _poison(ctx, "date_of_birth")
    return _export_cli(ctx, ctx.approval, "-v")


@case(
    "I",
    "invalid-count-json",
    3,
    "a conviction count that is text (the canary), with `--json -v`",
    via="cli",
    message=r"row \d+: column 'convictions': top_code cannot use the value \(not an integer\)",
)
def _count(ctx: Ctx) -> int:
    _poison(ctx, "conviction_count")
    return _export_cli(ctx, ctx.approval, "--json", "-v")


_PASSWORDS = [
    ("userinfo", f"postgresql+psycopg://analyst:{CANARY}pw@localhost/offenders"),
    ("query", f"postgresql+psycopg://analyst@localhost/offenders?password={CANARY}"),
    ("sqlite-query", f"sqlite:////tmp/x.db?password={CANARY}"),
]


def _register_password(slug: str, url: str) -> None:
    @case(
        "I",
        f"password-in-source-{slug}",
        2,
        f"a password inside --source ({slug}); never echoed",
        via="cli",
        message="a password inside --source is refused",
    )
    def run(ctx: Ctx) -> int:
        return ctx.cli(["approval", "plan", str(ctx.approval), "--source", url], role="exporter")


for _slug, _url in _PASSWORDS:
    _register_password(_slug, _url)


_CORE_PROBE = """
import resource, sys
from securexport import api
def probe(*a, **k):
    soft, hard = resource.getrlimit(resource.RLIMIT_CORE)
    dumpable = [l for l in open('/proc/self/status') if l.startswith(('CoreDumping', 'Tgid'))]
    import ctypes
    flag = ctypes.CDLL(None).prctl(3, 0, 0, 0, 0)  # PR_GET_DUMPABLE
    print(f"core={soft},{hard} dumpable={flag}", file=sys.stderr)
    raise SystemExit(0)
api.inspect = probe
from securexport.cli import main
main(sys.argv[1:])
"""


@case(
    "I",
    "core-dumps-disabled",
    0,
    "the CLI runs with RLIMIT_CORE = 0 and PR_SET_DUMPABLE = 0",
    via="subprocess",
)
def _core(ctx: Ctx) -> int:
    proc = subprocess.run(
        [sys.executable, "-c", _CORE_PROBE, "inspect", str(ctx.bundle)],
        env=subprocess_env(ctx, "recipient"),
        capture_output=True,
        text=True,
        timeout=60,
        cwd=REPO,
    )
    assert "core=0,0 dumpable=0" in proc.stderr, proc.stderr
    return proc.returncode


# --- a signed, logged bundle whose payload holds more than the approval --------------------


def _overshare(
    ctx: Ctx, change: Callable[[list[list[str]]], list[list[str]]], rows_delta: int = 0
) -> int:
    import csv
    import io

    files = ctx.plaintext(ctx.members(ctx.bundle))
    ((name, data),) = files.items()
    table = list(csv.reader(io.StringIO(data.decode("utf-8"), newline="")))
    table = change(table)
    buf = io.StringIO(newline="")
    csv.writer(buf, lineterminator="\r\n").writerows(table)
    text = buf.getvalue().encode("utf-8")
    rows = len(table) - 1 + rows_delta
    return ctx.decrypt(ctx.forge_content({name: text}, rows))


def _cell(column: int, value: str) -> Callable[[list[list[str]]], list[list[str]]]:
    def change(table: list[list[str]]) -> list[list[str]]:
        table[1][column] = value
        return table

    return change


def _extra_column(table: list[list[str]]) -> list[list[str]]:
    return [row + (["full_name"] if i == 0 else [CANARY + " Smith"]) for i, row in enumerate(table)]


def _extra_row(table: list[list[str]]) -> list[list[str]]:
    return [*table, table[1]]


def _lone_class(table: list[list[str]]) -> list[list[str]]:
    table[1][2] = "ZZ"  # a district class of one person
    return table


_OVERSHARE: list[tuple[str, str, str, Callable[[list[list[str]]], list[list[str]]], int]] = [
    (
        "extra-column",
        "an extra column (full names)",
        "payload header is not exactly the approved column names",
        _extra_column,
        0,
    ),
    (
        "raw-id-in-pseudonym",
        "a raw offender id in the pseudonym column",
        r"payload row 1, column 'offender': value is not what transform pseudonym produces",
        _cell(0, CANARY + "123A"),
        0,
    ),
    (
        "full-date-in-year",
        "a full date of birth in the year column",
        r"payload row 1, column 'birth_year': value is not what transform date_trunc produces",
        _cell(1, "1968-03-04"),
        0,
    ),
    (
        "district-finer-than-area",
        "a postcode sector where the approval allows the area",
        r"payload row 1, column 'district': value is not what transform postcode_trunc produces",
        _cell(2, "B15 3"),
        0,
    ),
    (
        "top-code-exceeded",
        "convictions 31 under top_code max 30",
        r"payload row 1, column 'convictions': value is not what transform top_code produces",
        _cell(3, "31"),
        0,
    ),
    (
        "more-rows-than-manifest",
        "one row more than the manifest states",
        "payload holds more rows than the manifest states or the approval allows",
        _extra_row,
        -1,
    ),
    (
        "k-broken",
        "a row moved into a class of one (k = 3)",
        "payload breaks k-anonymity: a class of size 1 is below k=3",
        _lone_class,
        0,
    ),
    (
        "header-renamed",
        "a header naming the source column",
        "payload header is not exactly the approved column names",
        lambda t: [["offender_id", *t[0][1:]], *t[1:]],
        0,
    ),
    (
        "no-header",
        "the header row removed",
        "payload header is not exactly the approved column names",
        lambda t: t[1:],
        1,
    ),
]


def _register_overshare(
    slug: str,
    title: str,
    message: str,
    change: Callable[[list[list[str]]], list[list[str]]],
    delta: int,
) -> None:
    @case("I", f"payload-{slug}", 5, f"signed, logged payload with {title}", message=message)
    def run(ctx: Ctx) -> int:
        return _overshare(ctx, change, delta)


for _args in _OVERSHARE:
    _register_overshare(*_args)


@pytest.mark.parametrize("case", params("I"))
def test_case(case: Case, ctx: Ctx, record_property: RecordProperty) -> None:
    record_property("adversarial_case", case.id)
    run_case(case, ctx)
