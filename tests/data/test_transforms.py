"""The minimisation transforms (securexport/transforms.py), DESIGN.md §5 and §8.4."""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
import uuid
from collections.abc import Mapping, Sequence
from datetime import UTC, date, datetime, time
from decimal import Decimal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from securexport.data.transforms import (
    SUPPRESS_ROW,
    InvalidValueError,
    RunContext,
    cell_validator,
    compile_column,
    key_check,
    make_pseudonymiser,
    pseudonym_reference,
    to_json_value,
    to_text,
)
from securexport.errors import ApprovalError, KeyUnavailableError, PolicyError
from securexport.policy.approval import Column, OnInvalid, transform_version

KEY = bytes(range(32))
DOMAIN = "APR-TEST"
RUN_DATE = date(2026, 6, 1)
CTX = RunContext(run_date=RUN_DATE, pseudonym_key=KEY, pseudonym_domain=DOMAIN)

# Made outside Python, with OpenSSL and coreutils:
#   printf 'APR-TEST\0%s' VALUE | openssl dgst -sha256 -mac HMAC -macopt hexkey:000102…1f -binary
#     | head -c16 | base32 | tr A-Z a-z | tr -d =
PSEUDONYM_VECTORS = {
    "12345": "xyyx2f7p2eew7tqjvp5ox2yxda",
    "Zoë O'Brien": "eqaltftjubfntv5qz56t22dolm",
    "2001-02-03": "6ym76a76radwiqcmliofod75s4",
}
# printf 'securexport/key-check/v1' | openssl dgst -sha256 -mac HMAC -macopt hexkey:KEY | cut -c1-16
KEY_CHECK_VECTORS = {
    bytes(range(32)): "b4193ae2f29a9f3b",
    bytes(32): "c131476ff1cc5e25",
}


def col(
    transform: str,
    params: Mapping[str, object] | None = None,
    on_invalid: str = "error",
    name: str = "out",
) -> Column:
    return Column(
        name=name,
        source="src",
        transform=transform,
        params=dict(params or {}),
        on_invalid=on_invalid,  # type: ignore[arg-type]
    )


def run(transform: str, params: Mapping[str, object] | None, value: object) -> object:
    return compile_column(col(transform, params), CTX)(value)


# --------------------------------------------------------------------------- golden table

GOLDEN: list[tuple[str, dict[str, object], object, object]] = [
    # keep: unchanged, type included
    ("keep", {}, "x y", "x y"),
    ("keep", {}, 7, 7),
    ("keep", {}, True, True),
    ("keep", {}, Decimal("1.50"), Decimal("1.50")),
    ("keep", {}, date(2024, 1, 2), date(2024, 1, 2)),
    ("keep", {}, 1.5, 1.5),
    # null
    ("null", {}, "anything", None),
    ("null", {}, 3, None),
    # constant: text of the constant, on every row
    ("constant", {"value": "WMP"}, "x", "WMP"),
    ("constant", {"value": "WMP"}, None, "WMP"),
    ("constant", {"value": 3}, None, "3"),
    ("constant", {"value": True}, 1, "true"),
    # pseudonym
    ("pseudonym", {}, "12345", PSEUDONYM_VECTORS["12345"]),
    ("pseudonym", {}, 12345, PSEUDONYM_VECTORS["12345"]),
    ("pseudonym", {}, Decimal("12345"), PSEUDONYM_VECTORS["12345"]),
    ("pseudonym", {}, 12345.0, PSEUDONYM_VECTORS["12345"]),
    ("pseudonym", {}, "Zoë O'Brien", PSEUDONYM_VECTORS["Zoë O'Brien"]),
    ("pseudonym", {}, date(2001, 2, 3), PSEUDONYM_VECTORS["2001-02-03"]),
    # date_trunc
    ("date_trunc", {"granularity": "year"}, date(2024, 7, 9), "2024"),
    ("date_trunc", {"granularity": "quarter"}, date(2024, 7, 9), "2024-Q3"),
    ("date_trunc", {"granularity": "quarter"}, date(2024, 1, 1), "2024-Q1"),
    ("date_trunc", {"granularity": "quarter"}, date(2024, 3, 31), "2024-Q1"),
    ("date_trunc", {"granularity": "quarter"}, date(2024, 4, 1), "2024-Q2"),
    ("date_trunc", {"granularity": "quarter"}, date(2024, 12, 31), "2024-Q4"),
    ("date_trunc", {"granularity": "month"}, date(2024, 7, 9), "2024-07"),
    ("date_trunc", {"granularity": "month"}, datetime(2024, 12, 31, 23, 59), "2024-12"),
    ("date_trunc", {"granularity": "year"}, date(987, 1, 1), "0987"),
    ("date_trunc", {"granularity": "month"}, "2024-07-09", "2024-07"),
    ("date_trunc", {"granularity": "month"}, "2024-07-09 10:11:12", "2024-07"),
    ("date_trunc", {"granularity": "month"}, "2024-07-09T10:11:12.123456", "2024-07"),
    ("date_trunc", {"granularity": "month"}, "2024-07-09T10:11:12Z", "2024-07"),
    ("date_trunc", {"granularity": "month"}, "2024-07-09 10:11:12+01", "2024-07"),
    ("date_trunc", {"granularity": "month"}, "2024-07-09T10:11:12.5-05:30", "2024-07"),
    # the date as written, not converted to UTC
    (
        "date_trunc",
        {"granularity": "month"},
        datetime.fromisoformat("2024-07-31T23:30:00-05:00"),
        "2024-07",
    ),
    # age_band at RUN_DATE = 2026-06-01
    ("age_band", {"width": 5}, date(1990, 6, 1), "35-39"),  # 36th birthday today
    ("age_band", {"width": 5}, date(1991, 6, 1), "35-39"),  # 35 today
    ("age_band", {"width": 5}, date(1991, 6, 2), "30-34"),  # 35 tomorrow
    ("age_band", {"width": 5}, date(2026, 6, 1), "0-4"),  # born today
    ("age_band", {"width": 10}, "1986-05-31", "40-49"),
    ("age_band", {"width": 5, "top_code": 90}, date(1936, 6, 1), "90+"),
    ("age_band", {"width": 5, "top_code": 90}, date(1936, 6, 2), "85-89"),
    ("age_band", {"width": 5, "top_code": 92}, date(1935, 6, 1), "90-91"),  # 91: cut at top
    ("age_band", {"width": 5, "top_code": 92}, date(1934, 6, 1), "92+"),
    ("age_band", {"width": 1}, date(2000, 1, 1), "26-26"),
    ("age_band", {"width": 5}, date(2008, 2, 29), "15-19"),  # leap-day birthday
    # postcode_trunc
    ("postcode_trunc", {"level": "area"}, "B15 3AB", "B"),
    ("postcode_trunc", {"level": "district"}, "B15 3AB", "B15"),
    ("postcode_trunc", {"level": "sector"}, "B15 3AB", "B15 3"),
    ("postcode_trunc", {"level": "sector"}, " b153ab ", "B15 3"),
    ("postcode_trunc", {"level": "sector"}, "b\t15\n3 a b", "B15 3"),
    ("postcode_trunc", {"level": "area"}, "SW1A 1AA", "SW"),
    ("postcode_trunc", {"level": "district"}, "SW1A 1AA", "SW1A"),
    ("postcode_trunc", {"level": "sector"}, "SW1A 1AA", "SW1A 1"),
    ("postcode_trunc", {"level": "district"}, "M1 1AE", "M1"),
    ("postcode_trunc", {"level": "district"}, "W1A 0AX", "W1A"),
    ("postcode_trunc", {"level": "district"}, "EC1A1BB", "EC1A"),
    ("postcode_trunc", {"level": "district"}, "GIR 0AA", "GIR"),
    ("postcode_trunc", {"level": "sector"}, "gir0aa", "GIR 0"),
    # top_code
    ("top_code", {"max": 30}, 0, "0"),
    ("top_code", {"max": 30}, 30, "30"),
    ("top_code", {"max": 30}, 31, ">30"),
    ("top_code", {"max": 30}, 10**30, ">30"),
    ("top_code", {"max": 30}, Decimal("12"), "12"),
    ("top_code", {"max": 30}, Decimal("12.000"), "12"),
    ("top_code", {"max": 30}, 12.0, "12"),
    ("top_code", {"max": 30}, "007", "7"),
    ("top_code", {"max": 30}, "31", ">30"),
    ("top_code", {"max": 30, "min": 2}, 1, "<2"),
    ("top_code", {"max": 30, "min": 2}, 2, "2"),
    ("top_code", {"max": 30, "min": 2}, -5, "<2"),
    ("top_code", {"max": 5, "min": -3}, -3, "-3"),
    # bucket
    ("bucket", {"edges": [0, 18, 65]}, 0, "0-17"),
    ("bucket", {"edges": [0, 18, 65]}, 17, "0-17"),
    ("bucket", {"edges": [0, 18, 65]}, 17.5, "0-17"),
    ("bucket", {"edges": [0, 18, 65]}, 18, "18-64"),
    ("bucket", {"edges": [0, 18, 65]}, Decimal("64.999"), "18-64"),
    ("bucket", {"edges": [0, 18, 65]}, 65, "65+"),
    ("bucket", {"edges": [0, 18, 65]}, "1000", "65+"),
    ("bucket", {"edges": [Decimal("0.5"), Decimal("1.25")]}, 1, "[0.5,1.25)"),
    ("bucket", {"edges": [Decimal("0.5"), Decimal("1.25")]}, Decimal("1.25"), ">=1.25"),
    ("bucket", {"edges": [0, 10], "labels": ["low", "high"]}, 9, "low"),
    ("bucket", {"edges": [0, 10], "labels": ["low", "high"]}, 10, "high"),
    # map
    ("map", {"mapping": {"M": "male", "F": "female"}}, "F", "female"),
    ("map", {"mapping": {"1": "one"}}, 1, "one"),
    ("map", {"mapping": {"true": "yes"}}, True, "yes"),
    ("map", {"mapping": {"M": "male"}, "default": "other"}, "X", "other"),
    # mask
    ("mask", {"keep_first": 1, "keep_last": 2, "char": "*"}, "AB123456C", "A******6C"),
    ("mask", {"keep_first": 0, "keep_last": 4, "char": "#"}, "4111111111111111", "#" * 12 + "1111"),
    ("mask", {"keep_first": 2, "keep_last": 0, "char": "x"}, 123456, "12xxxx"),
    ("mask", {"keep_first": 1, "keep_last": 1, "char": "*"}, "abc", "a*c"),
    ("mask", {"keep_first": 1, "keep_last": 1, "char": "*"}, "ab", "**"),  # nothing left hidden
    ("mask", {"keep_first": 1, "keep_last": 1, "char": "*"}, "", ""),
]


@pytest.mark.parametrize(("transform", "params", "value", "expected"), GOLDEN)
def test_golden(transform: str, params: dict[str, object], value: object, expected: object) -> None:
    out = run(transform, params, value)
    assert out == expected
    assert type(out) is type(expected)


ALL_COLUMNS: list[Column] = [
    col("keep"),
    col("null"),
    col("pseudonym"),
    col("date_trunc", {"granularity": "quarter"}),
    col("age_band", {"width": 5, "top_code": 90}),
    col("postcode_trunc", {"level": "sector"}),
    col("bucket", {"edges": [0, 18]}),
    col("top_code", {"max": 30}),
    col("map", {"mapping": {"a": "b"}, "default": "z"}),
    col("mask", {"keep_first": 1, "keep_last": 1, "char": "*"}),
]


@pytest.mark.parametrize("column", ALL_COLUMNS, ids=lambda c: c.transform)
def test_null_in_null_out(column: Column) -> None:
    on_invalids: tuple[OnInvalid, ...] = ("error", "null", "suppress_row")
    for on_invalid in on_invalids:
        c = Column(column.name, column.source, column.transform, column.params, on_invalid)
        assert compile_column(c, CTX)(None) is None


INVALID: list[tuple[str, dict[str, object], object]] = [
    ("keep", {}, b"\x00\x01"),
    ("keep", {}, float("nan")),
    ("keep", {}, [1, 2]),
    ("pseudonym", {}, b"raw"),
    ("pseudonym", {}, True),
    ("pseudonym", {}, 1.5),
    ("pseudonym", {}, "\ud800"),
    ("date_trunc", {"granularity": "year"}, "2024-02-30"),
    ("date_trunc", {"granularity": "year"}, "2024-13-01"),
    ("date_trunc", {"granularity": "year"}, "20240101"),
    ("date_trunc", {"granularity": "year"}, "2024-01-01x"),
    ("date_trunc", {"granularity": "year"}, " 2024-01-01"),
    ("date_trunc", {"granularity": "year"}, "2024-01-01 25:00:00"),
    ("date_trunc", {"granularity": "year"}, "2024-01-01 10:00"),
    ("date_trunc", {"granularity": "year"}, "٢٠٢٤-01-01"),  # Arabic-Indic digits
    ("date_trunc", {"granularity": "year"}, 20240101),
    ("date_trunc", {"granularity": "year"}, time(10, 0)),
    ("age_band", {"width": 5}, date(2026, 6, 2)),  # born after the run date
    ("age_band", {"width": 5}, "not a date"),
    ("postcode_trunc", {"level": "area"}, "B15"),
    ("postcode_trunc", {"level": "area"}, "B15 3A"),
    ("postcode_trunc", {"level": "area"}, "1B5 3AB"),
    ("postcode_trunc", {"level": "area"}, "B15 3A1"),
    ("postcode_trunc", {"level": "area"}, "ABC1 1AA"),
    ("postcode_trunc", {"level": "area"}, "ﬀ1 1AA"),  # upper() would make it ASCII 'FF1 1AA'
    ("postcode_trunc", {"level": "area"}, 15),
    ("top_code", {"max": 30}, -1),
    ("top_code", {"max": 30}, 1.5),
    ("top_code", {"max": 30}, Decimal("1.5")),
    ("top_code", {"max": 30}, "12a"),
    ("top_code", {"max": 30}, "1 2"),
    ("top_code", {"max": 30}, "٣"),
    ("top_code", {"max": 30}, True),
    ("top_code", {"max": 30}, float("inf")),
    ("bucket", {"edges": [0, 18]}, -1),
    ("bucket", {"edges": [0, 18]}, "abc"),
    ("bucket", {"edges": [0, 18]}, float("nan")),
    ("bucket", {"edges": [0, 18]}, False),
    ("map", {"mapping": {"M": "male"}}, "m"),
    ("map", {"mapping": {"M": "male"}}, b"M"),
    ("mask", {"keep_first": 1, "keep_last": 1, "char": "*"}, b"secret"),
]


@pytest.mark.parametrize(("transform", "params", "value"), INVALID)
def test_invalid_values(transform: str, params: dict[str, object], value: object) -> None:
    with pytest.raises(InvalidValueError) as info:
        compile_column(col(transform, params, "error", name="the_col"), CTX)(value)
    err = info.value
    assert isinstance(err, PolicyError)
    assert err.exit_code == 3
    assert err.column == "the_col"
    assert "'the_col'" in err.message
    assert transform in err.message
    assert err.hint
    if isinstance(value, str) and len(value.strip()) >= 4:
        assert value not in err.message
    assert compile_column(col(transform, params, "null"), CTX)(value) is None
    assert compile_column(col(transform, params, "suppress_row"), CTX)(value) is SUPPRESS_ROW


def test_invalid_value_error_never_shows_the_value() -> None:
    secret = "SECRET-POSTCODE-XYZ"
    with pytest.raises(InvalidValueError) as info:
        compile_column(col("postcode_trunc", {"level": "area"}, name="postcode"), CTX)(secret)
    assert secret not in str(info.value)
    assert secret not in repr(info.value.args)
    assert "row" not in info.value.message
    located = info.value.at_row(17)
    assert located.message.startswith("row 17, column 'postcode': postcode_trunc")
    assert located.column == "postcode"
    assert located.row == 17
    assert secret not in located.message


def test_suppress_row_is_a_singleton() -> None:
    import copy
    import pickle

    assert repr(SUPPRESS_ROW) == "SUPPRESS_ROW"
    assert copy.deepcopy(SUPPRESS_ROW) is SUPPRESS_ROW
    assert pickle.loads(pickle.dumps(SUPPRESS_ROW)) is SUPPRESS_ROW
    assert SUPPRESS_ROW is not None


def test_constant_never_invalid_even_with_suppress_row() -> None:
    f = compile_column(col("constant", {"value": "K"}, "suppress_row"), CTX)
    assert f(b"bytes") == "K"
    assert f(None) == "K"


# --------------------------------------------------------------------------- pseudonyms


@pytest.mark.parametrize(("text", "expected"), sorted(PSEUDONYM_VECTORS.items()))
def test_pseudonym_vectors(text: str, expected: str) -> None:
    assert pseudonym_reference(KEY, DOMAIN, text) == expected
    assert make_pseudonymiser(KEY, DOMAIN)(text) == expected
    assert len(expected) == 26


def _independent_pseudonym(key: bytes, domain: str, text: str) -> str:
    mac = hmac.new(key, domain.encode() + b"\0" + text.encode(), "sha256").digest()
    return base64.b32encode(mac[:16]).decode().rstrip("=").lower()


@settings(max_examples=300)
@given(
    key=st.binary(min_size=0, max_size=150),  # > 64 bytes: HMAC hashes the key first
    domain=st.text(max_size=20),
    text=st.text(max_size=60),
)
def test_pseudonym_fast_path_equals_hmac_new(key: bytes, domain: str, text: str) -> None:
    try:
        expected = _independent_pseudonym(key, domain, text)
    except UnicodeEncodeError:
        return  # lone surrogates: both paths refuse (tested elsewhere)
    assert make_pseudonymiser(key, domain)(text) == expected
    assert pseudonym_reference(key, domain, text) == expected
    assert re.fullmatch(r"[a-z2-7]{26}", expected)


def test_pseudonym_depends_on_key_and_domain() -> None:
    base = run("pseudonym", {}, "12345")
    other_domain = RunContext(RUN_DATE, KEY, "APR-OTHER")
    other_key = RunContext(RUN_DATE, bytes(32), DOMAIN)
    assert compile_column(col("pseudonym"), other_domain)("12345") != base
    assert compile_column(col("pseudonym"), other_key)("12345") != base
    # the NUL separator: domain "AB" + "C" differs from domain "A" + "BC"
    assert make_pseudonymiser(KEY, "AB")("C") != make_pseudonymiser(KEY, "A")("BC")


def test_pseudonym_text_forms() -> None:
    f = compile_column(col("pseudonym"), CTX)
    stamp = datetime(2024, 1, 2, 3, 4, 5, tzinfo=UTC)
    assert f(stamp) == pseudonym_reference(KEY, DOMAIN, "2024-01-02T03:04:05+00:00")
    ident = uuid.UUID("12345678-1234-5678-1234-567812345678")
    assert f(ident) == pseudonym_reference(KEY, DOMAIN, "12345678-1234-5678-1234-567812345678")
    assert f(-7) == pseudonym_reference(KEY, DOMAIN, "-7")


def test_pseudonym_needs_a_key() -> None:
    with pytest.raises(KeyUnavailableError) as info:
        compile_column(col("pseudonym"), RunContext(RUN_DATE, None, DOMAIN))
    assert info.value.exit_code == 4
    # Other columns compile without a key.
    compile_column(col("date_trunc", {"granularity": "year"}), RunContext(RUN_DATE, None, DOMAIN))


@pytest.mark.parametrize(("key", "expected"), sorted(KEY_CHECK_VECTORS.items()))
def test_key_check_vectors(key: bytes, expected: str) -> None:
    assert key_check(key) == expected


def test_key_check_is_the_hmac_prefix() -> None:
    key = b"k" * 32
    full = hmac.new(key, b"securexport/key-check/v1", hashlib.sha256).hexdigest()
    assert key_check(key) == full[:16]


# --------------------------------------------------------------------------- misc API


def test_transform_version() -> None:
    assert transform_version(col("postcode_trunc", {"level": "area"})) == "postcode_trunc@1"
    assert transform_version(col("keep")) == "keep@1"
    with pytest.raises(ApprovalError):
        transform_version(col("rot13"))


@pytest.mark.parametrize(
    ("column", "message"),
    [
        (col("rot13"), "unknown transform"),
        (col("date_trunc", {"granularity": "week"}), "granularity"),
        (col("age_band", {"width": 0}), "width"),
        (col("bucket", {"edges": [5, 5]}), "increasing"),
        (col("bucket", {"edges": [0, 5], "labels": ["a"]}), "labels"),
        (col("top_code", {"max": 3, "min": 4}), "min"),
        (col("top_code", {}), "max"),
        (col("mask", {"keep_first": 1, "keep_last": 1, "char": "**"}), "char"),
        (col("map", {"mapping": {"a": 1}}), "mapping"),
    ],
)
def test_bad_parameters_are_approval_errors(column: Column, message: str) -> None:
    with pytest.raises(ApprovalError, match=message):
        compile_column(column, CTX)


@pytest.mark.parametrize(
    ("value", "text"),
    [
        (None, None),
        ("", ""),
        ("a,b", "a,b"),
        (True, "true"),
        (False, "false"),
        (0, "0"),
        (-12, "-12"),
        (Decimal("1E+3"), "1000"),
        (Decimal("0.00001"), "0.00001"),
        (Decimal("1.50"), "1.50"),
        (1.5, "1.5"),
        (0.1, "0.1"),
        (1e20, "1e+20"),
        (date(2024, 1, 2), "2024-01-02"),
        (datetime(2024, 1, 2, 3, 4, 5), "2024-01-02T03:04:05"),
        (datetime(2024, 1, 2, 3, 4, 5, tzinfo=UTC), "2024-01-02T03:04:05+00:00"),
        (time(3, 4), "03:04:00"),
    ],
)
def test_to_text(value: object, text: str | None) -> None:
    assert to_text(value) == text


@pytest.mark.parametrize("value", [b"x", bytearray(b"x"), memoryview(b"x"), [1], object()])
def test_to_text_refuses_other_types(value: object) -> None:
    with pytest.raises(InvalidValueError) as info:
        to_text(value, column="c")
    assert info.value.column == "c"


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (None, None),
        ("s", "s"),
        (True, True),
        (3, 3),
        (2.5, 2.5),
        (Decimal("2.50"), "2.50"),
        (date(2024, 1, 2), "2024-01-02"),
        (datetime(2024, 1, 2, 3, 4), "2024-01-02T03:04:00"),
    ],
)
def test_to_json_value(value: object, expected: object) -> None:
    out = to_json_value(value)
    assert out == expected
    assert type(out) is type(expected)


def test_to_json_value_refuses_non_finite_and_bytes() -> None:
    for value in (float("nan"), float("inf"), b"x"):
        with pytest.raises(InvalidValueError):
            to_json_value(value)


# --------------------------------------------------------------------------- cell validators

VALIDATOR_CASES: list[tuple[Column, list[str | None], list[str | None]]] = [
    (col("keep"), [None, "", "anything"], []),
    (col("null"), [None], ["", "x"]),
    (col("constant", {"value": "WMP"}), ["WMP"], [None, "wmp", "WMP "]),
    (col("constant", {"value": ""}), ["", None], ["x"]),
    (
        col("pseudonym"),
        [None, *PSEUDONYM_VECTORS.values(), "a" * 26, "7" * 25 + "4"],
        ["a" * 25, "a" * 27, "A" * 26, "a" * 25 + "b", "a" * 25 + "1", "a" * 24 + "8a"],
    ),
    (
        col("date_trunc", {"granularity": "year"}),
        [None, "2024", "0987"],
        ["24", "20245", "0000", "٢٠٢٤", "2024-Q1"],
    ),
    (
        col("date_trunc", {"granularity": "quarter"}),
        ["2024-Q1", "2024-Q4"],
        ["2024-Q0", "2024-Q5", "2024", "2024-q1"],
    ),
    (
        col("date_trunc", {"granularity": "month"}),
        ["2024-01", "2024-12"],
        ["2024-00", "2024-13", "2024-1", "2024"],
    ),
    (
        col("postcode_trunc", {"level": "area"}),
        ["B", "SW", "GIR"],
        ["B1", "SWA", "b", "XYZ"],
    ),
    (
        col("postcode_trunc", {"level": "district"}),
        ["B15", "SW1A", "M1", "GIR", "W1A"],
        ["B", "B15 3", "SW1AA", "b15", "1B"],
    ),
    (
        col("postcode_trunc", {"level": "sector"}),
        ["B15 3", "SW1A 1", "GIR 0"],
        ["B15", "B153", "B15 3A", "B15  3"],
    ),
    (
        col("age_band", {"width": 5, "top_code": 92}),
        ["0-4", "30-34", "85-89", "90-91", "92+"],
        ["30-35", "31-35", "90-94", "95-99", "90+", "05-09", "-5-1", "30"],
    ),
    (col("age_band", {"width": 5}), ["100-104", "0-4"], ["90+", "1-5"]),
    (
        col("top_code", {"max": 30}),
        [None, "0", "7", "30", ">30"],
        ["31", "-1", "07", "<0", ">29", "1.0", "-0", " 7"],
    ),
    (
        col("top_code", {"max": 30, "min": -2}),
        ["<-2", "-2", "0", "30", ">30"],
        ["-3", "<2", "-0"],
    ),
    (col("bucket", {"edges": [0, 18, 65]}), ["0-17", "18-64", "65+"], ["65-", "0-18", "x"]),
    (
        col("bucket", {"edges": [0, 10], "labels": ["low", "high"]}),
        ["low", "high"],
        ["0-9", "mid"],
    ),
    (
        col("map", {"mapping": {"M": "male", "F": "female"}, "default": "other"}),
        ["male", "female", "other", None],
        ["M", "x"],
    ),
    (col("map", {"mapping": {"M": "male"}}), ["male"], ["other"]),
    (
        col("mask", {"keep_first": 1, "keep_last": 2, "char": "*"}),
        ["A******6C", "***", "", "a*bc", "****"],
        ["A*****x6C", "ab", "abcd"],
    ),
]


@pytest.mark.parametrize(
    ("column", "good", "bad"), VALIDATOR_CASES, ids=[c.transform for c, _, _ in VALIDATOR_CASES]
)
def test_cell_validator(column: Column, good: list[str | None], bad: list[str | None]) -> None:
    valid = cell_validator(column)
    for cell in good:
        assert valid(cell), cell
    for cell in bad:
        assert not valid(cell), cell


# --------------------------------------------------------------------------- properties

ANY_VALUE = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(10**20), max_value=10**20),
    st.integers(min_value=-5, max_value=120),
    st.floats(allow_nan=True, allow_infinity=True),
    st.decimals(allow_nan=False, allow_infinity=False, places=3),
    st.text(max_size=12),
    st.from_regex(r"-?[0-9]{1,4}(\.[0-9]{1,2})?", fullmatch=True),
    st.binary(max_size=4),
    st.dates(min_value=date(1, 1, 1), max_value=date(9999, 12, 31)),
    st.dates(min_value=date(1900, 1, 1), max_value=date(2030, 1, 1)),
    st.datetimes(),
    st.dates().map(date.isoformat),
    st.datetimes().map(lambda d: d.isoformat(sep=" ")),
    st.from_regex(
        r"[A-Za-z]{1,2}[0-9][A-Za-z0-9]? ?[0-9][A-Za-z]{2}|[Gg][Ii][Rr] ?0[Aa][Aa]", fullmatch=True
    ),
    st.uuids(),
)

MASK_CHARS = st.characters(codec="utf-8", exclude_categories=["Cs"])


@st.composite
def columns(draw: st.DrawFn) -> Column:
    transform = draw(
        st.sampled_from(
            [
                "keep",
                "null",
                "constant",
                "pseudonym",
                "date_trunc",
                "age_band",
                "postcode_trunc",
                "bucket",
                "top_code",
                "map",
                "mask",
            ]
        )
    )
    params: dict[str, object] = {}
    if transform == "constant":
        params["value"] = draw(st.one_of(st.text(max_size=5), st.integers(), st.booleans()))
    elif transform == "date_trunc":
        params["granularity"] = draw(st.sampled_from(["year", "quarter", "month"]))
    elif transform == "age_band":
        params["width"] = draw(st.integers(1, 20))
        if draw(st.booleans()):
            params["top_code"] = draw(st.integers(1, 120))
    elif transform == "postcode_trunc":
        params["level"] = draw(st.sampled_from(["area", "district", "sector"]))
    elif transform == "bucket":
        if draw(st.booleans()):
            edges: Sequence[object] = sorted(
                draw(st.sets(st.integers(-100, 200), min_size=1, max_size=6))
            )
        else:
            edges = sorted(
                draw(
                    st.sets(
                        st.decimals(-100, 200, places=2, allow_nan=False), min_size=1, max_size=6
                    )
                )
            )
        params["edges"] = edges
        if draw(st.booleans()):
            params["labels"] = draw(
                st.lists(st.text(max_size=4), min_size=len(edges), max_size=len(edges))
            )
    elif transform == "top_code":
        params["max"] = draw(st.integers(0, 100))
        if draw(st.booleans()):
            params["min"] = draw(st.integers(-20, params["max"]))  # type: ignore[arg-type]
    elif transform == "map":
        params["mapping"] = draw(st.dictionaries(st.text(max_size=3), st.text(max_size=5)))
        if draw(st.booleans()):
            params["default"] = draw(st.text(max_size=5))
    elif transform == "mask":
        params["keep_first"] = draw(st.integers(0, 4))
        params["keep_last"] = draw(st.integers(0, 4))
        params["char"] = draw(MASK_CHARS)
    on_invalid = draw(st.sampled_from(["null", "suppress_row"]))
    return col(transform, params, on_invalid)


@settings(max_examples=1500)
@given(column=columns(), values=st.lists(ANY_VALUE, min_size=1, max_size=8))
def test_every_output_passes_its_cell_validator(column: Column, values: list[object]) -> None:
    ctx = RunContext(RUN_DATE, KEY, DOMAIN)
    transform = compile_column(column, ctx)
    valid = cell_validator(column)
    for value in values:
        out = transform(value)
        if out is SUPPRESS_ROW:
            continue
        if column.transform != "keep":
            assert out is None or isinstance(out, str)
        text = to_text(out)
        assert valid(text), (column, value, out)
        if text == "":  # a CSV reader sees an empty field as NULL
            assert valid(None)
        json_value = to_json_value(out)
        if column.transform != "keep":
            assert json_value == out


@settings(max_examples=300)
@given(
    width=st.integers(1, 15),
    top=st.one_of(st.none(), st.integers(1, 110)),
    born=st.dates(min_value=date(1900, 1, 1), max_value=RUN_DATE),
)
def test_age_band_contains_the_age(width: int, top: int | None, born: date) -> None:
    params: dict[str, object] = {"width": width}
    if top is not None:
        params["top_code"] = top
    label = run("age_band", params, born)
    assert isinstance(label, str)
    # completed years, computed the slow way
    age = 0
    while True:
        try:
            birthday = born.replace(year=born.year + age + 1)
        except ValueError:  # 29 February in a common year: the birthday is 1 March
            birthday = date(born.year + age + 1, 3, 1)
        if birthday > RUN_DATE:
            break
        age += 1
    if label.endswith("+"):
        assert top is not None
        assert age >= top
        assert label == f"{top}+"
    else:
        low, high = (int(x) for x in label.split("-"))
        assert low <= age <= high
        assert high - low + 1 <= width
        assert low % width == 0


# --------------------------------------------------------------------------- batch forms

_POSTCODE_PIECES = st.lists(
    # "ı" and "ſ" upper-case to ASCII letters: only ASCII text may be upper-cased as a batch
    st.sampled_from(
        ["A", "B", "GI", "R", "Z", "9", "1", "0", " ", "b", "\n", "\r", "é", "AA", "ı", "ſ", "ß"]
    ),
    max_size=9,
).map("".join)


@settings(max_examples=300, deadline=None)
@given(
    level=st.sampled_from(["area", "district", "sector"]),
    on_invalid=st.sampled_from(["null", "suppress_row", "error"]),
    values=st.lists(
        st.one_of(
            st.from_regex(r"[A-Z]{1,2}[0-9][A-Z0-9]? ?[0-9][A-Z]{2}", fullmatch=True),
            st.from_regex(r"[A-Za-z]{1,2}[0-9][A-Za-z0-9]? ?[0-9][A-Za-z]{2}", fullmatch=True),
            _POSTCODE_PIECES,
            st.none(),
            st.integers(),
        ),
        max_size=30,
    ),
)
def test_postcode_batch_form_equals_the_value_by_value_form(
    level: str, on_invalid: str, values: list[object]
) -> None:
    """Whenever the batch form answers, it answers exactly what the per-value function does
    (or raises what it raises); a batch with anything it cannot vouch for is left to the
    per-value function."""
    from securexport.data.transforms import InvalidValueError, compile_batch

    column = col("postcode_trunc", {"level": level}, on_invalid=on_invalid)
    one = compile_column(column, CTX)
    batch = compile_batch(column, one)
    assert batch is not None
    try:
        expected: list[object] | None = [one(v) for v in values]
    except InvalidValueError:
        expected = None
    try:
        got = batch(values)
    except InvalidValueError:
        assert expected is None
        return
    if got is not None:
        assert got == expected
    if any(isinstance(v, str) for v in values) and all(
        v is None or (isinstance(v, str) and "\n" not in v) for v in values
    ):
        assert got is not None  # text without newlines (and NULLs) is always taken


@pytest.mark.parametrize("value", ["B1 2ıı", "ſw1a 1aa", "sw1a 1aa", "b1 2aa", "GIR 0AA", "gir0aa"])
def test_postcode_batch_form_upper_cases_only_ascii(value: str) -> None:
    """``"ı".upper()`` and ``"ſ".upper()`` are ASCII letters: a batch holding them must not
    turn a value the per-value function refuses into a postcode."""
    from securexport.data.transforms import compile_batch

    column = col("postcode_trunc", {"level": "district"}, on_invalid="null")
    one = compile_column(column, CTX)
    batch = compile_batch(column, one)
    assert batch is not None
    values: list[object] = [value, "AB1 2CD", None]
    assert batch(values) == [one(v) for v in values]
