"""Strict approval parsing: data-driven vectors, the typed model, the template, and fuzzing.

Vectors: tests/vectors/approvals/*.toml with expected outcomes in cases.toml (see its README).
"""

from __future__ import annotations

import re
import tomllib
from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from securexport._crypto.sshkey import SshPublicKey
from securexport.errors import ApprovalError, PolicyError
from securexport.limits import Limits, MiB
from securexport.policy.approval import (
    FILTER_OPS,
    TRANSFORMS,
    Approval,
    RelativeDate,
    approval_template,
    parse_approval,
)
from securexport.policy.toml_locator import TomlLocator

VECTORS = Path(__file__).parents[1] / "vectors" / "approvals"
CASES: dict[str, dict[str, object]] = tomllib.loads((VECTORS / "cases.toml").read_text())["cases"]
FULL = (VECTORS / "ok_full.toml").read_bytes()
MINIMAL = (VECTORS / "ok_minimal.toml").read_bytes()
LOCATION = re.compile(r"^approval\.toml(?::(\d+))?(?::\d+)?: ")


def error_line(exc: ApprovalError) -> int | None:
    match = LOCATION.match(str(exc))
    assert match is not None, f"message does not start with the file name: {exc}"
    return int(match.group(1)) if match.group(1) else None


# --------------------------------------------------------------------------------------------
# Vectors
# --------------------------------------------------------------------------------------------


def test_every_vector_has_an_expected_outcome() -> None:
    files = {p.name for p in VECTORS.glob("*.toml")} - {"cases.toml"}
    assert files == set(CASES)
    assert len(CASES) >= 40
    assert sum(1 for c in CASES.values() if c["outcome"] == "error") >= 40


@pytest.mark.parametrize("name", sorted(CASES))
def test_vector(name: str) -> None:
    case = CASES[name]
    raw = (VECTORS / name).read_bytes()
    kwargs = {"max_bytes": case["max_bytes"]} if "max_bytes" in case else {}
    if case["outcome"] == "ok":
        approval = parse_approval(raw, **kwargs)  # type: ignore[arg-type]
        assert approval.raw == raw
        return
    assert case["outcome"] == "error"
    with pytest.raises(ApprovalError) as info:
        parse_approval(raw, **kwargs)  # type: ignore[arg-type]
    message = str(info.value)
    assert str(case["message"]) in message
    assert error_line(info.value) == case.get("line"), message
    assert "\n" not in message  # one line, as the CLI prints it


def test_approval_errors_are_policy_errors_with_exit_code_3() -> None:
    with pytest.raises(PolicyError) as info:
        parse_approval(FULL.replace(b'"jsonl"', b'"xml"'))
    assert info.value.exit_code == 3


def test_unknown_key_message_and_hint() -> None:
    raw = FULL.replace(b'granularity = "year"', b'granularty = "year"')
    with pytest.raises(ApprovalError) as info:
        parse_approval(raw, filename="pp.toml")
    line = raw[: raw.index(b"granularty")].count(b"\n") + 1
    assert (
        str(info.value) == f'pp.toml:{line}: [[column]] #2 "birth_year": unknown key "granularty"'
    )
    assert info.value.hint == 'did you mean "granularity"?'


def test_toml_syntax_error_reports_line_and_column() -> None:
    with pytest.raises(ApprovalError) as info:
        parse_approval(b'schema = "securexport.approval/1"\n\n[approval]\nid = \n')
    assert str(info.value).startswith("approval.toml:4:6: invalid TOML: ")


# --------------------------------------------------------------------------------------------
# The typed model
# --------------------------------------------------------------------------------------------


def test_full_approval_model() -> None:
    a = parse_approval(FULL)
    assert a.raw is FULL
    assert a.id == "APR-2026-0042"
    assert (
        a.purpose
        == "Monthly list of prolific offenders released in the force area,\nfor caseload tasking."
    )
    assert a.not_before == datetime(2026, 1, 1, tzinfo=UTC)
    assert a.expires == datetime(2027, 1, 31, 23, 59, 59, tzinfo=timezone(timedelta(hours=1)))
    assert a.max_runs == 12
    assert (a.dataset, a.entity) == ("offenders", "offender_id")
    assert a.database_id == "ots-prod-01"
    assert a.schema_sha256 is not None
    assert len(a.schema_sha256) == 64
    assert [(f.column, f.op, f.value) for f in a.filters] == [
        ("force_code", "eq", "WMP"),
        ("release_date", "ge", RelativeDate(days=-365)),
        ("risk_level", "in", ("high", "very_high")),
        ("age_at_release", "between", (18, 80)),
        ("deceased_date", "is_null", None),
        ("score", "lt", Decimal("0.75")),
    ]
    lines = FULL.decode().splitlines()
    for f in a.filters:
        assert f.line is not None
        assert lines[f.line - 1] == "[[source.filter]]"
        assert lines[f.line] == f'column = "{f.column}"'
    assert (a.row_cap, a.min_rows) == (5000, 10)
    assert (a.pseudonym_key_id, a.pseudonym_key_check, a.domain) == (
        "wmp-iom-2026",
        "0123456789abcdef",
        "wmp-iom",
    )
    cols = {c.name: c for c in a.columns}
    assert list(cols) == [
        "offender",
        "birth_year",
        "district",
        "convictions",
        "age_band",
        "score_band",
        "sex",
        "case_ref",
        "source_system",
        "force",
        "notes",
    ]
    for c in a.columns:
        assert c.line is not None
        assert lines[c.line - 1] == "[[column]]"
        assert lines[c.line].split("=")[1].strip() == f'"{c.name}"'
    assert dict(cols["birth_year"].params) == {"granularity": "year"}
    assert dict(cols["convictions"].params) == {"max": 30, "min": 0}
    assert dict(cols["age_band"].params) == {"width": 10, "top_code": 80}
    assert dict(cols["score_band"].params) == {
        "edges": (0, Decimal("0.25"), Decimal("0.5")),
        "labels": ("low", "medium", "high"),
    }
    assert dict(cols["sex"].params["mapping"]) == {"M": "male", "F": "female"}  # type: ignore[call-overload]
    assert cols["sex"].params["default"] == "other"
    assert dict(cols["case_ref"].params) == {"keep_first": 0, "keep_last": 4, "char": "*"}
    assert dict(cols["source_system"].params) == {"value": "OTS"}
    assert dict(cols["force"].params) == {}
    assert cols["offender"].role == "identifier"
    assert cols["offender"].justification == "Links monthly extracts."
    assert cols["district"].on_invalid == "null"
    assert cols["score_band"].on_invalid == "suppress_row"
    assert cols["force"].on_invalid == "error"
    assert a.privacy is not None
    assert a.privacy.quasi_identifiers == ("birth_year", "district")
    assert a.privacy.k == 5
    assert a.privacy.on_violation == "suppress"
    # kept exactly as written: 0.050, not 0.05 and not a binary float
    assert str(a.privacy.max_suppressed_fraction) == "0.050"
    assert a.output_format == "jsonl"
    assert [p.name for p in a.recipients] == ["wmp-iom"]
    assert [p.name for p in a.auditors] == ["dpo.office@example.gov.uk"]
    assert [e.name for e in a.exporters] == ["pa-analyst", "pa-analyst-2"]
    key = SshPublicKey.parse(
        "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIBB/TfGQZgtU4elHxtFtmE4TS1hmViYAUNMvjOQFb3P5 x"
    )
    exporter = a.exporter_by_key(key)
    assert exporter is not None
    assert exporter.name == "pa-analyst-2"
    assert a.exporters[0].ledger is not None
    assert a.exporters[0].age is not None
    assert a.witness is not None
    assert a.witness.required is True
    assert dict(a.conditions) == {
        "retention": "Delete 12 months after receipt.",
        "onward_sharing": "None.",
    }
    assert a.source_columns[0] == "offender_id"
    assert "free_text" in a.source_columns


def test_minimal_approval_defaults() -> None:
    a = parse_approval(MINIMAL)
    assert a.max_runs is None
    assert a.filters == ()
    assert a.min_rows == 0
    assert a.output_format == "csv"
    assert a.privacy is None
    assert a.auditors == ()
    assert a.witness is None
    assert dict(a.conditions) == {}
    assert a.pseudonym_key_id is None
    assert a.database_id is None
    assert a.schema_sha256 is None
    assert a.domain == "A1"  # no explicit domain: the approval id
    assert a.columns[0].on_invalid == "error"
    assert a.columns[0].role is None
    assert a.exporters[0].age is None


def test_privacy_defaults_and_integer_fraction() -> None:
    raw = FULL.replace(b'on_violation            = "suppress"\n', b"").replace(
        b"max_suppressed_fraction = 0.050", b"max_suppressed_fraction = 1"
    )
    a = parse_approval(raw)
    assert a.privacy is not None
    assert a.privacy.on_violation == "abort"
    assert a.privacy.max_suppressed_fraction == Decimal(1)
    assert isinstance(a.privacy.max_suppressed_fraction, Decimal)
    raw = FULL.replace(b"max_suppressed_fraction = 0.050\n", b"")
    a = parse_approval(raw)
    assert a.privacy is not None
    assert a.privacy.max_suppressed_fraction == Decimal(0)


def test_witness_required_defaults_to_true_and_may_be_false() -> None:
    a = parse_approval(FULL.replace(b"required = true\n", b""))
    assert a.witness is not None
    assert a.witness.required is True
    a = parse_approval(FULL.replace(b"required = true", b"required = false"))
    assert a.witness is not None
    assert a.witness.required is False


def test_relative_date_resolves_against_run_date() -> None:
    a = parse_approval(FULL)
    value = a.filters[1].value
    assert isinstance(value, RelativeDate)
    assert value.resolve(datetime(2026, 6, 1, tzinfo=UTC).date()).isoformat() == "2025-06-01"


def test_in_filter_accepts_exactly_1000_values() -> None:
    values = ", ".join(str(i) for i in range(1000))
    raw = FULL.replace(b'[\n  "high",\n  "very_high",\n]', f"[{values}]".encode())
    value = parse_approval(raw).filters[2].value
    assert isinstance(value, tuple)
    assert len(value) == 1000


def test_bucket_with_a_single_edge_and_no_labels() -> None:
    raw = FULL.replace(b"edges     = [0, 0.25, 0.5]", b"edges     = [1]").replace(
        b'labels    = ["low", "medium", "high"]\n', b""
    )
    col = next(c for c in parse_approval(raw).columns if c.name == "score_band")
    assert dict(col.params) == {"edges": (1,)}


# --------------------------------------------------------------------------------------------
# Limits and labels
# --------------------------------------------------------------------------------------------


def test_default_size_cap_is_one_mebibyte() -> None:
    padded = FULL + b"#" * (MiB - len(FULL) - 1) + b"\n"
    assert len(padded) == MiB
    parse_approval(padded)
    with pytest.raises(ApprovalError, match="1048577 bytes, more than the limit of 1048576"):
        parse_approval(padded + b"\n")


def test_size_cap_from_limits_and_max_bytes() -> None:
    with pytest.raises(ApprovalError, match="more than the limit of 100"):
        parse_approval(FULL, limits=Limits(max_approval_bytes=100))
    parse_approval(FULL, limits=Limits(max_approval_bytes=100), max_bytes=len(FULL))
    with pytest.raises(ApprovalError, match=f"more than the limit of {len(FULL) - 1}"):
        parse_approval(FULL, max_bytes=len(FULL) - 1)


def test_row_cap_is_bounded_by_limits() -> None:
    with pytest.raises(ApprovalError, match='"row_cap": must be at most 4999'):
        parse_approval(FULL, limits=Limits(max_row_cap=4999))
    assert parse_approval(FULL, limits=Limits(max_row_cap=5000)).row_cap == 5000


def test_recipient_count_is_bounded_by_limits() -> None:
    with pytest.raises(ApprovalError, match="more than 1 recipients and auditors"):
        parse_approval(FULL, limits=Limits(max_recipients=1))
    parse_approval(FULL, limits=Limits(max_recipients=2))


def test_filename_labels_messages() -> None:
    with pytest.raises(ApprovalError) as info:
        parse_approval(b"\xff", filename="/tmp/x/approval-42.toml")
    assert str(info.value).startswith("/tmp/x/approval-42.toml:1: not valid UTF-8")


def test_messages_escape_control_characters_they_echo() -> None:
    raw = FULL.replace(b'dataset       = "offenders"', b'dataset       = "a\\u001b[31mb"')
    with pytest.raises(ApprovalError) as info:
        parse_approval(raw)
    assert "\x1b" not in str(info.value)
    assert "\\u001b" in str(info.value)


# --------------------------------------------------------------------------------------------
# Template
# --------------------------------------------------------------------------------------------


def test_template_parses_as_is() -> None:
    text = approval_template()
    a = parse_approval(text.encode())
    assert isinstance(a, Approval)
    assert a.raw == text.encode()
    assert text.endswith("\n")
    assert "REPLACE" in text


def test_template_documents_every_transform_and_filter_op() -> None:
    text = approval_template()
    for name in TRANSFORMS:
        assert re.search(rf"\b{name}\b", text), name
    for op in FILTER_OPS:
        assert re.search(rf"\b{op}\b", text), op
    for section in ("[[auditors]]", "[witness]", "[conditions]", "[output]", "[privacy]"):
        assert section in text


# --------------------------------------------------------------------------------------------
# The line locator
# --------------------------------------------------------------------------------------------


def test_locator_handles_dotted_quoted_and_nested_keys() -> None:
    text = (
        "a.b = 1\n"  # 1
        '"quoted.key" = """x\n'  # 2
        "[[not_a_header]]\n"  # 3
        '"""\n'  # 4
        "[t]\n"  # 5
        "'lit' = [\n"  # 6
        "  1,  # comment ]\n"  # 7
        "  { x = 2 },\n"  # 8
        "]\n"  # 9
        "[[arr]]\n"  # 10
        "[[arr]]\n"  # 11
        "[arr.sub]\n"  # 12
        "k = 1979-05-27 07:32:00Z\n"  # 13
        "j = 'it''s'\n"  # 14 (two literal strings: invalid TOML, the locator must not hang)
    )
    lines = TomlLocator(text).lines
    assert lines[("a", "b")] == 1
    assert lines[("quoted.key",)] == 2
    assert ("not_a_header",) not in lines
    assert lines[("t", "lit", 0)] == 7
    assert lines[("t", "lit", 1, "x")] == 8
    assert lines[("arr", 0)] == 10
    assert lines[("arr", 1)] == 11
    assert lines[("arr", 1, "sub")] == 12
    assert lines[("arr", 1, "sub", "k")] == 13


# --------------------------------------------------------------------------------------------
# Fuzzing: anything either parses or raises ApprovalError
# --------------------------------------------------------------------------------------------


def parse_or_approval_error(raw: bytes) -> None:
    message = None
    try:
        parse_approval(raw)
    except ApprovalError as exc:
        message = str(exc)
    if message is not None:
        assert message.startswith("approval.toml")
        assert "\n" not in message


FUZZ = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@FUZZ
@given(st.binary(max_size=2048))
def test_random_bytes(raw: bytes) -> None:
    parse_or_approval_error(raw)


@FUZZ
@given(st.data())
def test_byte_mutations_of_a_valid_approval(data: st.DataObject) -> None:
    raw = bytearray(data.draw(st.sampled_from([FULL, MINIMAL])))
    for _ in range(data.draw(st.integers(1, 4))):
        pos = data.draw(st.integers(0, len(raw) - 1))
        action = data.draw(st.sampled_from(["flip", "insert", "delete", "set"]))
        if action == "flip":
            raw[pos] ^= 1 << data.draw(st.integers(0, 7))
        elif action == "insert":
            raw[pos:pos] = data.draw(st.binary(min_size=1, max_size=8))
        elif action == "delete":
            del raw[pos : pos + data.draw(st.integers(1, 16))]
        else:
            raw[pos] = data.draw(st.sampled_from(b"\"[]{}=,.\n#\\'0aZ-_ "))
    parse_or_approval_error(bytes(raw))


TOML_VALUES = st.one_of(
    st.integers(-(2**70), 2**70).map(str),
    st.sampled_from(
        [
            "true",
            "false",
            "0.5",
            "-0.0",
            "1e400",
            "inf",
            "nan",
            "[]",
            "{}",
            "[[]]",
            '["a", 1]',
            '{ relative_to = "run_date", days = 3 }',
            "{ days = 1 }",
            "2026-01-01",
            "2026-01-01T00:00:00",
            "2026-01-01T00:00:00Z",
            "0001-01-01T00:00:00+23:59",
            "9999-12-31T23:59:59-23:59",
            "12:00:00",
            '"age1qqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqq5cu47z"',
            '"ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"',
            '"x+00000000+AQ=="',
            '"\\u0000"',
            '"\\u202e"',
            '"""\n[[column]]\n"""',
        ]
    ),
    st.text(max_size=20).map(lambda s: '"' + s.replace("\\", "\\\\").replace('"', '\\"') + '"'),
)


@FUZZ
@given(st.data())
def test_value_and_line_mutations_of_a_valid_approval(data: st.DataObject) -> None:
    lines = data.draw(st.sampled_from([FULL, MINIMAL])).decode().split("\n")
    for _ in range(data.draw(st.integers(1, 3))):
        i = data.draw(st.integers(0, len(lines) - 1))
        action = data.draw(st.sampled_from(["value", "delete", "duplicate", "swap", "key"]))
        if action == "value" and "=" in lines[i]:
            key = lines[i].split("=", 1)[0]
            lines[i] = f"{key}= {data.draw(TOML_VALUES)}"
        elif action == "key" and "=" in lines[i]:
            value = lines[i].split("=", 1)[1]
            key = data.draw(
                st.sampled_from(["name", "value", "op", "k", "age", "x", "max", "days"])
            )
            lines[i] = f"{key} ={value}"
        elif action == "delete":
            del lines[i]
        elif action == "duplicate":
            lines.insert(i, lines[i])
        elif action == "swap":
            j = data.draw(st.integers(0, len(lines) - 1))
            lines[i], lines[j] = lines[j], lines[i]
    parse_or_approval_error("\n".join(lines).encode())


def test_deep_nesting_is_an_approval_error() -> None:
    with pytest.raises(ApprovalError):
        parse_approval(b"a = " + b"[" * 100_000 + b"]" * 100_000)
