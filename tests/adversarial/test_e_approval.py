"""E. Approvals: malformed, unknown keys, out of window, untrusted or missing signatures, limits."""

from __future__ import annotations

import secrets
import sqlite3

import bech32  # BIP 173's reference implementation (PyPI), independent of securexport's decoder
import pytest

from securexport import api
from securexport._crypto import agefile, sshsig
from securexport._crypto.sshkey import InvalidKeyError
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
        r"invalid TOML: Expected '\]' at the end of a table declaration",
        lambda t: t.replace("[limits]", "[limits", 1),
    ),
    (
        "unknown-key",
        "an unknown key `colour` in [limits]",
        r'\[limits\]: unknown key "colour"',
        lambda t: t.replace("[limits]\n", '[limits]\ncolour = "red"\n', 1),
    ),
    (
        "unknown-table",
        "an unknown table [extras]",
        r'unknown key "extras" at the top level',
        lambda t: t + "\n[extras]\nx = 1\n",
    ),
    (
        "duplicate-key",
        "`title` given twice",
        "invalid TOML: Cannot overwrite a value",
        lambda t: t.replace('title       = "Test extract"', 'title = "a"\ntitle = "b"', 1),
    ),
    (
        "wrong-type",
        "row_cap as a string",
        r'\[limits\]: "row_cap": expected an integer, got a string',
        lambda t: t.replace("row_cap  = 100000", 'row_cap  = "100000"', 1),
    ),
    (
        "sql-in-dataset",
        "a dataset name carrying SQL",
        r'\[source\]: "dataset": "offenders; DROP TABLE offenders" is not a plain SQL identifier',
        lambda t: t.replace(
            'dataset = "offenders"', 'dataset = "offenders; DROP TABLE offenders"', 1
        ),
    ),
    (
        "bad-recipient-key",
        "a recipient whose age key is not an X25519 recipient",
        r'\[\[recipients\]\] #1: "age": not an age X25519 recipient',
        lambda t: t.replace('name = "force"\nage  = "', 'name = "force"\nage  = "age1notakey', 1),
    ),
    (
        "wrong-schema",
        "schema securexport.approval/2",
        r'"schema": must be "securexport\.approval/1", got securexport\.approval/2',
        lambda t: t.replace("securexport.approval/1", "securexport.approval/2", 1),
    ),
    (
        "offset-less-time",
        "expires without a UTC offset",
        r'\[approval\]: "expires": is a local date-time without an offset',
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


# --- wrong recipients: keys that no age X25519 recipient may be ------------------------------
#
# A low-order X25519 point gives the same all-zero shared secret for every sender key, so a
# payload key "wrapped" for it is readable by anyone (and rage panics encrypting to it).  The
# Bech32 strings come from the bech32 reference package, independently of securexport's decoder.


def bech32_of(hrp: str, data: bytes) -> str:
    """``data`` as Bech32 (BIP 173) with ``hrp``, encoded by the reference package."""
    return bech32.bech32_encode(hrp, bech32.convertbits(data, 8, 5))


def bech32_data(text: str) -> bytes:
    """The bytes of a Bech32 string, decoded (checksum checked) by the reference package."""
    hrp, five = bech32.bech32_decode(text)
    assert hrp is not None, f"not Bech32: {text}"
    raw = bech32.convertbits(five, 5, 8, False)
    assert raw is not None, f"bad Bech32 padding: {text}"
    return bytes(raw)


def _high_bit(ctx: Ctx, real: str) -> str:
    """The same X25519 key spelt another way: the u-coordinate's ignored top bit set."""
    raw = bytearray(bech32_data(real))
    raw[31] |= 0x80
    return bech32_of("age", bytes(raw))


# Little-endian u-coordinates of Curve25519 points of small order (as libsodium lists them),
# and p = 2^255 - 19, a non-canonical encoding of zero.
LOW_ORDER = {
    "zero": bytes(32),
    "one": b"\x01" + bytes(31),
    "order-8": bytes.fromhex("e0eb7a7c3b41b8ae1656e3faf19fc46ada098deb9c32b1fd866205165f49b800"),
    "p": bytes.fromhex("ed" + "ff" * 30 + "7f"),
}

_LOW_ORDER_MESSAGE = r"the age recipient is a low-order X25519 point \(insecure\)"
_NOT_X25519 = "not an age X25519 recipient"
_NON_CANONICAL = "the age recipient is not a canonical X25519 key"


def _party(ctx: Ctx, table: str, change: object) -> str:
    """The approval text with the recipient's (or auditor's) age key replaced."""
    role = {"recipients": "recipient", "auditors": "auditor"}[table]
    real = ctx.world.ids[role].age_recipient
    text = _text(ctx)
    assert text.count(f'age  = "{real}"') == 1
    return text.replace(f'age  = "{real}"', f'age  = "{change(ctx, real)}"')  # type: ignore[operator]


_WRONG_PARTIES: list[tuple[str, str, str, str, object]] = [
    (
        "recipient-low-order-zero",
        "recipients",
        "the all-zero X25519 point (as tests/vectors/approvals/err_age_small_order.toml)",
        _LOW_ORDER_MESSAGE,
        lambda ctx, real: bech32_of("age", LOW_ORDER["zero"]),
    ),
    (
        "recipient-low-order-8",
        "recipients",
        "a Curve25519 point of order 8",
        _LOW_ORDER_MESSAGE,
        lambda ctx, real: bech32_of("age", LOW_ORDER["order-8"]),
    ),
    (
        "recipient-non-canonical-zero",
        "recipients",
        "u = 2^255 - 19 (a non-canonical encoding of the zero point)",
        _NON_CANONICAL,
        lambda ctx, real: bech32_of("age", LOW_ORDER["p"]),
    ),
    (
        "recipient-non-canonical-spelling",
        "recipients",
        "the recipient's own key with the ignored top bit set (one key, a second spelling)",
        _NON_CANONICAL,
        _high_bit,
    ),
    (
        "auditor-low-order-4",
        "auditors",
        "the point u = 1 (order 4)",
        _LOW_ORDER_MESSAGE,
        lambda ctx, real: bech32_of("age", LOW_ORDER["one"]),
    ),
    (
        "recipient-ssh-key",
        "recipients",
        "the recipient's ssh-ed25519 public key instead of an age key",
        _NOT_X25519,
        lambda ctx, real: ctx.world.ids["recipient"].signing_key.to_line(),
    ),
    (
        "recipient-plugin-key",
        "recipients",
        "an age plugin recipient (`age1yubikey1…`, a P-256 key), well-formed Bech32",
        _NOT_X25519,
        lambda ctx, real: bech32_of("age1yubikey", b"\x02" + bytes(range(1, 33))),
    ),
    (
        "recipient-bad-checksum",
        "recipients",
        "the recipient's key with its last character changed (Bech32 checksum wrong)",
        r"the age recipient's Bech32 checksum is wrong",
        lambda ctx, real: real[:-1] + ("q" if real[-1] != "q" else "p"),
    ),
    (
        "recipient-upper-case",
        "recipients",
        "the recipient's key in upper case (valid Bech32, not age's canonical form)",
        _NOT_X25519,
        lambda ctx, real: real.upper(),
    ),
]


def _register_party(slug: str, table: str, title: str, message: str, change: object) -> None:
    where = {"recipients": r"\[\[recipients\]\] #1", "auditors": r"\[\[auditors\]\] #1"}[table]

    @case(
        "E",
        slug,
        3,
        f"signed approval whose {table[:-1]} age key is {title}",
        message=f'{where}: "age": {message}',
    )
    def run(ctx: Ctx) -> int:
        return _export_text(ctx, _party(ctx, table, change))


for _args5 in _WRONG_PARTIES:
    _register_party(*_args5)


@case(
    "E",
    "recipient-low-order-sign-cli",
    3,
    "the data owner runs `approval sign` on an approval naming a low-order recipient: "
    "refused, no signature written",
    via="cli",
    message=r'\[\[recipients\]\] #1: "age": ' + _LOW_ORDER_MESSAGE,
)
def _sign_low_order(ctx: Ctx) -> int:
    text = _party(ctx, "recipients", lambda c, real: bech32_of("age", LOW_ORDER["zero"]))
    path = ctx.world.write_approval(text, sign=False)
    code = ctx.cli(["approval", "sign", str(path), "--as", "owner"], role="owner")
    assert not path.with_name(path.name + ".sig").exists()
    return code


@case(
    "E",
    "expired",
    3,
    "approval expired a month before the run",
    message="approval APR-2026-0042 expired at 2026-05-01T00:00:00Z",
)
def _expired(ctx: Ctx) -> int:
    return ctx.export(ctx.approval_with(expires="2026-05-01T00:00:00Z"))


@case(
    "E",
    "expired-cli",
    3,
    "expired approval through `securexport export` (real clock)",
    via="cli",
    message="approval APR-2026-0042 expired at 2026-05-01T00:00:00Z",
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


@case(
    "E",
    "not-yet-valid",
    3,
    "approval valid only from next month",
    message="approval APR-2026-0042 is not valid before 2026-07-01T00:00:00Z",
)
def _early(ctx: Ctx) -> int:
    return ctx.export(ctx.approval_with(not_before="2026-07-01T00:00:00Z"))


@case(
    "E", "unsigned", 3, "approval without approval.toml.sig", message="the approval is not signed"
)
def _unsigned(ctx: Ctx) -> int:
    return ctx.export(ctx.approval_with(sign=False))


@case(
    "E",
    "signed-by-untrusted-key",
    3,
    "approval signed by an outsider's key",
    message="the approval is signed by a key that is not a trusted approver",
)
def _untrusted(ctx: Ctx) -> int:
    path = ctx.approval_with(sign=False)
    api.sign_approval(ctx.world.outsider, path, "stranger")
    return ctx.export(path)


@case(
    "E",
    "signed-by-exporter",
    3,
    "approval signed by the exporter themself",
    message="the approval is signed by a key that is not a trusted approver",
)
def _self_signed(ctx: Ctx) -> int:
    path = ctx.approval_with(sign=False)
    api.sign_approval(ctx.world.exporter, path, "analyst")
    return ctx.export(path)


@case(
    "E",
    "edited-after-signing",
    3,
    "row_cap raised after the owner signed",
    message="the approval signature is invalid",
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
    message="the approval signature is invalid",
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
    message="the approval signature is invalid",
)
def _other_sig(ctx: Ctx) -> int:
    other = ctx.approval_with(approval_id="APR-OTHER")
    path = ctx.approval_with(sign=False)
    path.with_name(path.name + ".sig").write_bytes(
        other.with_name(other.name + ".sig").read_bytes()
    )
    return ctx.export(path)


@case(
    "E",
    "exporter-not-listed",
    3,
    "approval names another exporter key",
    message="identity 'analyst' is not an exporter named in approval APR-2026-0042",
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
    message="dataset 'offenders_x' does not exist in the source",
)
def _dataset(ctx: Ctx) -> int:
    return _export_text(ctx, _text(ctx).replace('dataset = "offenders"', 'dataset = "offenders_x"'))


@case(
    "E",
    "k-violation-abort",
    3,
    "k = 500 with on_violation = abort",
    message=r"k-anonymity: \d+ of \d+ classes have fewer than k=500 distinct entities .*"
    r'and the approval says on_violation = "abort"',
)
def _k(ctx: Ctx) -> int:
    privacy = '[privacy]\nquasi_identifiers = ["birth_year", "district"]\nk = 500\non_violation = "abort"\n'
    return ctx.export(ctx.approval_with(privacy=privacy))


@case(
    "E",
    "suppression-beyond-limit",
    3,
    "k = 50 with suppression capped at 1%",
    message=r"k-anonymity: suppressing \d+ classes smaller than k=50 would drop \d+ of \d+ rows, "
    r"a fraction of [0-9.]+, above max_suppressed_fraction = 0\.01",
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
    message="more than row_cap=10 rows match approval APR-2026-0042; nothing was exported",
)
def _row_cap(ctx: Ctx) -> int:
    return ctx.export(ctx.approval_with(row_cap=10))


@case(
    "E",
    "min-rows",
    3,
    "fewer rows than min_rows",
    message=r"only \d+ rows would be written, below min_rows=1000000; nothing was exported",
)
def _min_rows(ctx: Ctx) -> int:
    return ctx.export(ctx.approval_with(min_rows=1_000_000, row_cap=2_000_000))


@case(
    "E",
    "runs-used-up",
    3,
    "a second run of an approval with max_runs = 1",
    message="approval APR-2026-0042 has used all 1 of its runs",
)
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
    message="schema drift: unknown column 'postcode'",
)
def _dropped(ctx: Ctx) -> int:
    return _drift(ctx, ["DROP VIEW offenders_v", "ALTER TABLE offenders DROP COLUMN postcode"])


@case(
    "E",
    "schema-drift-column-renamed",
    3,
    "postcode renamed to post_code after signing",
    message="schema drift: unknown column 'postcode'",
)
def _renamed(ctx: Ctx) -> int:
    return _drift(ctx, ["ALTER TABLE offenders RENAME COLUMN postcode TO post_code"])


@case(
    "E",
    "wrong-pseudonym-key-check",
    4,
    "key_check names a different pseudonym key",
    message="pseudonym key 'test-key' does not match the approval's key_check",
)
def _key_check(ctx: Ctx) -> int:
    text = _text(ctx).replace(ctx.world.key_check, "0123456789abcdef")
    return _export_text(ctx, text)


@case(
    "E",
    "oversized-approval",
    7,
    "a 2 MiB approval (limit 1 MiB)",
    message=r"big\.toml is larger than the limit \(1048576 bytes\)",
)
def _big(ctx: Ctx) -> int:
    path = ctx.root / "big.toml"
    path.write_text(_text(ctx) + "#" * (2 << 20) + "\n")
    return ctx.export(path)


@pytest.mark.parametrize("case", params("E"))
def test_case(case: Case, ctx: Ctx, record_property: RecordProperty) -> None:
    record_property("adversarial_case", case.id)
    run_case(case, ctx)


def test_bech32_reference_agrees_with_our_decoder() -> None:
    """The reference package and agefile.recipient_bytes agree: on keys of the approval vectors
    (tests/vectors/approvals), on fresh identities' recipients and on random 32-byte keys; a
    one-character typo is refused by both."""
    zero = "age1qqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqq5cu47z"
    assert bech32_of("age", bytes(32)) == zero
    auditor = "age1yf4cm26r4pcjspns8glyu4ylnlavr63dr50hxk3tazycszugrgcs6g474q"
    assert bech32_data(auditor) == agefile.recipient_bytes(auditor)
    assert bech32_of("age", bech32_data(auditor)) == auditor
    for _ in range(20):
        recipient = agefile.generate_identity()[1]
        assert bech32_data(recipient) == agefile.recipient_bytes(recipient)
        raw = secrets.token_bytes(32)
        assert agefile.recipient_bytes(bech32_of("age", raw)) == raw
        typo = recipient[:10] + ("q" if recipient[10] != "q" else "p") + recipient[11:]
        assert bech32.bech32_decode(typo) == (None, None)
        with pytest.raises(InvalidKeyError, match="checksum"):
            agefile.recipient_bytes(typo)
