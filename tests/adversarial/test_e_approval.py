"""E. Approvals: malformed, unknown keys, out of window, untrusted or missing signatures, limits."""

from __future__ import annotations

import sqlite3

import pytest

from securexport import api
from securexport._crypto import sshsig
from tests.adversarial.harness import ADV_COLUMNS, Ctx, run_case
from tests.adversarial.registry import Case, RecordProperty, case, params


def _text(ctx: Ctx, **kw: object) -> str:
    kw.setdefault("columns", ADV_COLUMNS)
    kw.setdefault("expires", "2030-12-31T23:59:59Z")
    return ctx.world.approval_text(**kw)  # type: ignore[arg-type]


def _export_text(ctx: Ctx, text: str) -> int:
    """Sign the raw bytes with the owner's key (as ssh-keygen -Y sign would), then export."""
    path = ctx.world.write_approval(text, sign=False)
    key = ctx.keystore("owner").signing_key("owner")
    sig = sshsig.sign(key, path.read_bytes(), sshsig.NAMESPACE_APPROVAL)
    path.with_name(path.name + ".sig").write_bytes(sig)
    return ctx.export(path)


_TEXT_CASES: list[tuple[str, str, str, object]] = [
    (
        "malformed-toml",
        "an unclosed table header",
        "TOML|line",
        lambda t: t.replace("[limits]", "[limits", 1),
    ),
    (
        "unknown-key",
        "an unknown key `colour` in [limits]",
        "unknown|colour",
        lambda t: t.replace("[limits]\n", '[limits]\ncolour = "red"\n', 1),
    ),
    (
        "unknown-table",
        "an unknown table [extras]",
        "unknown|extras",
        lambda t: t + "\n[extras]\nx = 1\n",
    ),
    (
        "duplicate-key",
        "`title` given twice",
        "TOML|duplicate|line|title",
        lambda t: t.replace('title       = "Test extract"', 'title = "a"\ntitle = "b"', 1),
    ),
    (
        "wrong-type",
        "row_cap as a string",
        "row_cap|type|integer",
        lambda t: t.replace("row_cap  = 100000", 'row_cap  = "100000"', 1),
    ),
    (
        "sql-in-dataset",
        "a dataset name carrying SQL",
        "dataset|identifier",
        lambda t: t.replace(
            'dataset = "offenders"', 'dataset = "offenders; DROP TABLE offenders"', 1
        ),
    ),
    (
        "bad-recipient-key",
        "a recipient whose age key is not an X25519 recipient",
        "recipient|age",
        lambda t: t.replace('name = "force"\nage  = "', 'name = "force"\nage  = "age1notakey', 1),
    ),
    (
        "wrong-schema",
        "schema securexport.approval/2",
        "schema",
        lambda t: t.replace("securexport.approval/1", "securexport.approval/2", 1),
    ),
    (
        "offset-less-time",
        "expires without a UTC offset",
        "offset|expires",
        lambda t: t.replace(
            "expires     = 2030-12-31T23:59:59Z", "expires     = 2030-12-31T23:59:59", 1
        ),
    ),
]


def _register_text(slug: str, title: str, message: str, change: object) -> None:
    @case("E", slug, 3, f"signed approval with {title}", message=message)
    def run(ctx: Ctx) -> int:
        return _export_text(ctx, change(_text(ctx)))  # type: ignore[operator]


for _args in _TEXT_CASES:
    _register_text(*_args)


@case("E", "expired", 3, "approval expired a month before the run", message="expired")
def _expired(ctx: Ctx) -> int:
    return ctx.export(ctx.approval_with(expires="2026-05-01T00:00:00Z"))


@case(
    "E",
    "expired-cli",
    3,
    "expired approval through `securexport export` (real clock)",
    via="cli",
    message="expired",
)
def _expired_cli(ctx: Ctx) -> int:
    approval = ctx.approval_with(expires="2026-05-01T00:00:00Z")
    out = ctx.root / "expired.sxb"
    ctx.outputs.append(out)
    args = [
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


@case("E", "not-yet-valid", 3, "approval valid only from next month", message="not valid before")
def _early(ctx: Ctx) -> int:
    return ctx.export(ctx.approval_with(not_before="2026-07-01T00:00:00Z"))


@case("E", "unsigned", 3, "approval without approval.toml.sig", message="not signed")
def _unsigned(ctx: Ctx) -> int:
    return ctx.export(ctx.approval_with(sign=False))


@case(
    "E",
    "signed-by-untrusted-key",
    3,
    "approval signed by an outsider's key",
    message="not a trusted approver",
)
def _untrusted(ctx: Ctx) -> int:
    path = ctx.approval_with(sign=False)
    api.sign_approval(path, "stranger", ctx.world.outsider)
    return ctx.export(path)


@case(
    "E",
    "signed-by-exporter",
    3,
    "approval signed by the exporter themself",
    message="not a trusted approver",
)
def _self_signed(ctx: Ctx) -> int:
    path = ctx.approval_with(sign=False)
    api.sign_approval(path, "analyst", ctx.world.exporter)
    return ctx.export(path)


@case(
    "E",
    "edited-after-signing",
    3,
    "row_cap raised after the owner signed",
    message="signature is invalid",
)
def _edited(ctx: Ctx) -> int:
    path = ctx.approval_with()
    path.write_text(path.read_text().replace("row_cap  = 100000", "row_cap  = 900000"))
    return ctx.export(path)


@case(
    "E",
    "signature-wrong-namespace",
    3,
    "owner's signature made in the manifest namespace",
    message="signature is invalid",
)
def _namespace(ctx: Ctx) -> int:
    path = ctx.approval_with(sign=False)
    key = ctx.keystore("owner").signing_key("owner")
    sig = sshsig.sign(key, path.read_bytes(), sshsig.NAMESPACE_MANIFEST)
    path.with_name(path.name + ".sig").write_bytes(sig)
    return ctx.export(path)


@case(
    "E",
    "signature-of-other-approval",
    3,
    "a valid signature of another approval placed beside it",
    message="signature is invalid",
)
def _other_sig(ctx: Ctx) -> int:
    other = ctx.approval_with(approval_id="APR-OTHER")
    path = ctx.approval_with(sign=False)
    path.with_name(path.name + ".sig").write_bytes(
        other.with_name(other.name + ".sig").read_bytes()
    )
    return ctx.export(path)


@case(
    "E", "exporter-not-listed", 3, "approval names another exporter key", message="not an exporter"
)
def _not_listed(ctx: Ctx) -> int:
    return ctx.export(
        ctx.approval_with(exporter_key=ctx.world.ids["outsider"].signing_key.to_line())
    )


@case(
    "E",
    "wrong-dataset",
    3,
    "approval names a table that does not exist",
    message="offenders_x|does not exist|no such|not found|dataset",
)
def _dataset(ctx: Ctx) -> int:
    return _export_text(ctx, _text(ctx).replace('dataset = "offenders"', 'dataset = "offenders_x"'))


@case("E", "k-violation-abort", 3, "k = 500 with on_violation = abort", message=r"k|anonym")
def _k(ctx: Ctx) -> int:
    privacy = '[privacy]\nquasi_identifiers = ["birth_year", "district"]\nk = 500\non_violation = "abort"\n'
    return ctx.export(ctx.approval_with(privacy=privacy))


@case(
    "E", "suppression-beyond-limit", 3, "k = 50 with suppression capped at 1%", message="suppress"
)
def _suppress(ctx: Ctx) -> int:
    privacy = (
        '[privacy]\nquasi_identifiers = ["birth_year", "district", "release_quarter"]\nk = 50\n'
        'on_violation = "suppress"\nmax_suppressed_fraction = 0.01\n'
    )
    return ctx.export(ctx.approval_with(privacy=privacy))


@case(
    "E",
    "row-cap",
    3,
    "more rows match than row_cap = 10 (abort, never truncate)",
    message="row_cap",
)
def _row_cap(ctx: Ctx) -> int:
    return ctx.export(ctx.approval_with(row_cap=10))


@case("E", "min-rows", 3, "fewer rows than min_rows", message="min_rows")
def _min_rows(ctx: Ctx) -> int:
    return ctx.export(ctx.approval_with(min_rows=1_000_000, row_cap=2_000_000))


@case("E", "runs-used-up", 3, "a second run of an approval with max_runs = 1", message="used all")
def _runs(ctx: Ctx) -> int:
    path = ctx.approval_with(max_runs=1)
    assert ctx.export(path) == 0
    ctx.outputs.clear()
    return ctx.export(path)


def _drift(ctx: Ctx, statements: list[str]) -> int:
    path = ctx.approval_with()
    with sqlite3.connect(ctx.world.db_path) as conn:
        for sql in statements:
            conn.execute(sql)
    conn.close()
    return ctx.export(path)


@case(
    "E",
    "schema-drift-column-dropped",
    3,
    "postcode dropped from the table after signing",
    message="postcode",
)
def _dropped(ctx: Ctx) -> int:
    return _drift(ctx, ["DROP VIEW offenders_v", "ALTER TABLE offenders DROP COLUMN postcode"])


@case(
    "E",
    "schema-drift-column-renamed",
    3,
    "postcode renamed to post_code after signing",
    message="postcode",
)
def _renamed(ctx: Ctx) -> int:
    return _drift(ctx, ["ALTER TABLE offenders RENAME COLUMN postcode TO post_code"])


@case(
    "E",
    "wrong-pseudonym-key-check",
    4,
    "key_check names a different pseudonym key",
    message="key_check",
)
def _key_check(ctx: Ctx) -> int:
    text = _text(ctx).replace(ctx.world.key_check, "0123456789abcdef")
    return _export_text(ctx, text)


@case(
    "E", "oversized-approval", 7, "a 2 MiB approval (limit 1 MiB)", message="larger than the limit"
)
def _big(ctx: Ctx) -> int:
    path = ctx.root / "big.toml"
    path.write_text(_text(ctx) + "#" * (2 << 20) + "\n")
    return ctx.export(path)


@pytest.mark.parametrize("case", params("E"))
def test_case(case: Case, ctx: Ctx, record_property: RecordProperty) -> None:
    record_property("adversarial_case", case.id)
    run_case(case, ctx)
