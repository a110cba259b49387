"""Approvals: strict parsing and validation (pure: bytes in, typed object out).

The model below is the contract every other module reads; the parser fills it.  See
DESIGN.md §5 and docs/formats.md.  Nothing here touches the network, the disk or a database.
"""

from __future__ import annotations

import difflib
import hashlib
import re
import tomllib
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, time
from decimal import Decimal
from types import MappingProxyType
from typing import Any, Literal, NoReturn, cast

from securexport._crypto.agefile import check_recipient_strictly
from securexport._crypto.sshkey import InvalidKeyError, SshPublicKey
from securexport.errors import ApprovalError
from securexport.limits import DEFAULT_LIMITS, Limits
from securexport.policy.toml_locator import KeyPath, TomlLocator

SCHEMA = "securexport.approval/1"
FILTER_OPS = ("eq", "ne", "lt", "le", "gt", "ge", "in", "between", "is_null", "not_null")
TRANSFORMS = (
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
)

# Bump a transform's version whenever its output for some input changes.
TRANSFORM_VERSIONS: Mapping[str, int] = MappingProxyType(dict.fromkeys(TRANSFORMS, 1))
OnInvalid = Literal["error", "null", "suppress_row"]

# A literal filter value as TOML gives it (dates and datetimes included), or a relative date.
Scalar = str | int | Decimal | bool | date | datetime


@dataclass(frozen=True)
class RelativeDate:
    """``{ relative_to = "run_date", days = -365 }``: the run's UTC date plus ``days``."""

    days: int
    relative_to: Literal["run_date"] = "run_date"

    def resolve(self, run_date: date) -> date:
        from datetime import timedelta

        return run_date + timedelta(days=self.days)


FilterValue = Scalar | RelativeDate


@dataclass(frozen=True)
class Filter:
    column: str
    op: str  # one of FILTER_OPS
    # eq..ge: one value; in: a non-empty tuple; between: a (low, high) pair; is_null/not_null: None
    value: FilterValue | tuple[FilterValue, ...] | None
    line: int | None = None


@dataclass(frozen=True)
class Column:
    """One ``[[column]]``: an output column computed from one source column."""

    name: str
    source: str
    transform: str  # one of TRANSFORMS
    params: Mapping[str, object] = field(default_factory=dict)  # transform-specific keys
    on_invalid: OnInvalid = "error"
    role: str | None = None  # e.g. "sensitive", "quasi_identifier", "identifier"
    justification: str | None = None
    line: int | None = None


@dataclass(frozen=True)
class Party:
    """A recipient or auditor: who may decrypt, by age X25519 recipient (``age1…``)."""

    name: str
    age: str


@dataclass(frozen=True)
class Exporter:
    """Who may run the approval: their SSH signing key, optionally their age key (to receive a
    pseudonym key) and the signed-note verifier key of their ledger."""

    name: str
    ssh: SshPublicKey
    age: str | None = None
    ledger: str | None = None


@dataclass(frozen=True)
class Witness:
    key: str  # signed-note verifier key of the data owner's witness
    required: bool = True


@dataclass(frozen=True)
class Privacy:
    quasi_identifiers: tuple[str, ...]
    k: int
    on_violation: Literal["suppress", "abort"] = "abort"
    max_suppressed_fraction: Decimal = Decimal(0)


@dataclass(frozen=True)
class Approval:
    raw: bytes  # the exact bytes that were signed
    id: str
    title: str
    purpose: str
    legal_basis: str
    not_before: datetime  # timezone-aware
    expires: datetime  # timezone-aware; the window is inclusive
    max_runs: int | None
    dataset: str
    entity: str
    filters: tuple[Filter, ...]
    row_cap: int
    min_rows: int
    columns: tuple[Column, ...]
    recipients: tuple[Party, ...]
    exporters: tuple[Exporter, ...]
    output_format: Literal["csv", "jsonl"] = "csv"
    auditors: tuple[Party, ...] = ()
    privacy: Privacy | None = None
    pseudonym_key_id: str | None = None
    pseudonym_key_check: str | None = None
    pseudonym_domain: str | None = None  # None: the approval id is the domain
    database_id: str | None = None
    schema_sha256: str | None = None
    witness: Witness | None = None
    conditions: Mapping[str, str] = field(default_factory=dict)  # retention, onward_sharing
    owner: Party | None = None  # the data owner's age key: breach-response lists are sealed to it

    @property
    def sha256(self) -> str:
        return hashlib.sha256(self.raw).hexdigest()

    @property
    def domain(self) -> str:
        """The pseudonym domain: explicit, or the approval id (so approvals never share)."""
        return self.pseudonym_domain if self.pseudonym_domain is not None else self.id

    @property
    def source_columns(self) -> tuple[str, ...]:
        """Every source column the export reads: the entity first, then each column's source."""
        seen: dict[str, None] = {self.entity: None}
        for col in self.columns:
            seen.setdefault(col.source, None)
        return tuple(seen)

    def exporter_by_key(self, key: SshPublicKey) -> Exporter | None:
        return next((e for e in self.exporters if e.ssh == key), None)


# --------------------------------------------------------------------------------------------
# Parsing
#
# Errors read ``approval.toml:23: [[column]] #3 "birth_year": unknown key "granularty"``: file,
# line, where (table, 1-based entry number, the entry's name once known), then what is wrong.
# tomllib reports no positions for keys, so TomlLocator (policy/toml_locator.py) rescans the
# (already valid) TOML text for table headers and key assignments.  That is best effort: a key
# is found on the line where it is assigned, a value inside a multi-line array on its own line,
# and a missing key is reported on its table's header line; a missing top-level table has no
# line and the message says so by leaving the number out
# (``approval.toml: missing required table [limits]``).
# --------------------------------------------------------------------------------------------

ROLES = ("sensitive", "quasi_identifier", "identifier", "direct_identifier", "other")
ON_INVALID = ("error", "null", "suppress_row")
GRANULARITIES = ("year", "quarter", "month")
POSTCODE_LEVELS = ("area", "district", "sector")
OUTPUT_FORMATS = ("csv", "jsonl")
ON_VIOLATION = ("suppress", "abort")

# Parameter keys of each transform: (required, optional).  Anything else is an error.
TRANSFORM_PARAMS: Mapping[str, tuple[frozenset[str], frozenset[str]]] = MappingProxyType(
    {
        "keep": (frozenset(), frozenset()),
        "null": (frozenset(), frozenset()),
        "constant": (frozenset({"value"}), frozenset()),
        "pseudonym": (frozenset(), frozenset()),
        "date_trunc": (frozenset({"granularity"}), frozenset()),
        "age_band": (frozenset({"width"}), frozenset({"top_code"})),
        "postcode_trunc": (frozenset({"level"}), frozenset()),
        "bucket": (frozenset({"edges"}), frozenset({"labels"})),
        "top_code": (frozenset({"max"}), frozenset({"min"})),
        "map": (frozenset({"mapping"}), frozenset({"default"})),
        "mask": (frozenset(), frozenset({"keep_first", "keep_last", "char"})),
    }
)
_COLUMN_KEYS = frozenset({"name", "source", "transform", "on_invalid", "role", "justification"})

MAX_RELATIVE_DAYS = 73_050  # 200 years either way: resolve() can never overflow a date
_INT64_MIN, _INT64_MAX = -(2**63), 2**63 - 1

_APPROVAL_ID = re.compile(r"[A-Z0-9][A-Za-z0-9._-]{0,63}")
_APPROVAL_ID_SHAPE = "an approval id ([A-Z0-9][A-Za-z0-9._-]*, at most 64)"
_PARTY_SHAPE = "a name ([A-Za-z0-9][A-Za-z0-9._@-]*, at most 64)"
_SQL_IDENT = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,62}")
_OUTPUT_NAME = re.compile(r"[a-z][a-z0-9_]{0,62}")
_PARTY_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._@-]{0,63}")
_KEY_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}")
_HEX16 = re.compile(r"[0-9a-f]{16}")
_HEX64 = re.compile(r"[0-9a-f]{64}")
# C0/C1 controls, DEL, bidi embeddings/overrides/isolates, BOM: a terminal or an editor would show
# something else than the bytes the owner signs (CVE-2021-42574, "Trojan Source").
_BAD_CHARS = re.compile(r"[\x00-\x1f\x7f-\x9f\u200e\u200f\u202a-\u202e\u2066-\u2069\ufeff]")
_BAD_CHARS_TEXT = re.compile(
    r"[\x00-\x08\x0b-\x1f\x7f-\x9f\u200e\u200f\u202a-\u202e\u2066-\u2069\ufeff]"
)
_BOM = b"\xef\xbb\xbf"
_TOML_POSITION = re.compile(r"\s*\(at (?:line (\d+), column (\d+)|end of document)\)\s*$")

_TOP_TABLES = {
    "approval": "[approval]",
    "source": "[source]",
    "limits": "[limits]",
    "pseudonymisation": "[pseudonymisation]",
    "column": "[[column]]",
    "privacy": "[privacy]",
    "output": "[output]",
    "recipients": "[[recipients]]",
    "auditors": "[[auditors]]",
    "exporters": "[[exporters]]",
    "witness": "[witness]",
    "owner": "[owner]",
    "conditions": "[conditions]",
}


class _Missing:
    """Marks an absent key (TOML has no null, so None could do, but this reads better)."""


_MISSING = _Missing()


def _type_name(value: object) -> str:
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int):
        return "an integer"
    if isinstance(value, Decimal):
        return "a float"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, datetime):
        return "an offset date-time" if value.tzinfo is not None else "a local date-time"
    if isinstance(value, date):
        return "a local date"
    if isinstance(value, time):
        return "a local time"
    if isinstance(value, list):
        return "an array"
    if isinstance(value, dict):
        return "a table"
    return type(value).__name__  # pragma: no cover - tomllib produces nothing else


def _choices(options: Sequence[str]) -> str:
    return ", ".join(f'"{o}"' for o in options)


# --------------------------------------------------------------------------------------------
# Validation helpers
# --------------------------------------------------------------------------------------------


class _Ctx:
    """One parse: the text (for lines), the file's label and the limits it is held to."""

    def __init__(self, text: str, filename: str, limits: Limits) -> None:
        self.text = text
        self.filename = filename
        self.limits = limits
        self._locator: TomlLocator | None = None

    def line(self, path: KeyPath) -> int | None:
        if self._locator is None:
            self._locator = TomlLocator(self.text)
        return self._locator.line_of(path)

    def error(self, path: KeyPath, message: str, hint: str | None = None) -> ApprovalError:
        line = self.line(path)
        where = f"{self.filename}:{line}" if line is not None else self.filename
        return ApprovalError(f"{where}: {message}", hint=hint)


class _Table:
    """One TOML table of the approval, with typed, strict getters that raise ApprovalError."""

    def __init__(self, ctx: _Ctx, data: dict[str, object], path: KeyPath, label: str) -> None:
        self.ctx = ctx
        self.data = data
        self.path = path
        self.label = label

    # -- errors ----------------------------------------------------------------------------

    def error(
        self, key: str | None, message: str, *, at: KeyPath | None = None, hint: str | None = None
    ) -> ApprovalError:
        """``<label>: "<key>": <message>``, located at ``at``, else the key, else the table."""
        parts = [p for p in (self.label, f'"{key}"' if key is not None else "") if p]
        where = ": ".join([*parts, message])
        path = at if at is not None else (self.path if key is None else (*self.path, key))
        return self.ctx.error(path, where, hint)

    def fail(
        self, key: str | None, message: str, *, at: KeyPath | None = None, hint: str | None = None
    ) -> NoReturn:
        raise self.error(key, message, at=at, hint=hint)

    def check_keys(self, allowed: Iterable[str], required: Iterable[str] = ()) -> None:
        allowed = frozenset(allowed)
        for key in self.data:
            if key not in allowed:
                self.unknown(key, allowed)
        for key in sorted(required):
            if key not in self.data:
                self.fail(None, f'missing required key "{key}"')

    def unknown(self, key: str, allowed: Iterable[str], extra: str = "") -> NoReturn:
        close = difflib.get_close_matches(key, sorted(allowed), n=1)
        hint = f'did you mean "{close[0]}"?' if close else None
        self.fail(None, f'unknown key "{_printable(key)}"{extra}', at=(*self.path, key), hint=hint)

    # -- raw access ------------------------------------------------------------------------

    def get(self, key: str) -> object:
        return self.data.get(key, _MISSING)

    def required(self, key: str) -> object:
        value = self.get(key)
        if isinstance(value, _Missing):
            self.fail(None, f'missing required key "{key}"')
        return value

    # -- typed getters ---------------------------------------------------------------------

    def string(
        self,
        key: str,
        value: object,
        *,
        pattern: re.Pattern[str] | None = None,
        shape: str = "",
        multiline: bool = False,
        nonempty: bool = False,
        at: KeyPath | None = None,
    ) -> str:
        if not isinstance(value, str):
            self.fail(key, f"expected a string, got {_type_name(value)}", at=at)
        if pattern is not None:
            if not pattern.fullmatch(value):
                self.fail(key, f'"{_printable(value)}" is not {shape}', at=at)
            return value
        bad = (_BAD_CHARS_TEXT if multiline else _BAD_CHARS).search(value)
        if bad is not None:
            self.fail(
                key, f"contains the control or bidi character U+{ord(bad.group()):04X}", at=at
            )
        if nonempty and not value.strip():
            self.fail(key, "must not be empty", at=at)
        return value

    def req_str(self, key: str, **kw: Any) -> str:
        return self.string(key, self.required(key), **kw)

    def opt_str(self, key: str, **kw: Any) -> str | None:
        value = self.get(key)
        return None if isinstance(value, _Missing) else self.string(key, value, **kw)

    def integer(
        self,
        key: str,
        value: object,
        *,
        lo: int = _INT64_MIN,
        hi: int = _INT64_MAX,
        at: KeyPath | None = None,
    ) -> int:
        if isinstance(value, bool) or not isinstance(value, int):
            self.fail(key, f"expected an integer, got {_type_name(value)}", at=at)
        if value < lo:
            self.fail(key, f"must be at least {lo}, got {value}", at=at)
        if value > hi:
            self.fail(key, f"must be at most {hi}, got {value}", at=at)
        return value

    def req_int(self, key: str, **kw: Any) -> int:
        return self.integer(key, self.required(key), **kw)

    def opt_int(self, key: str, **kw: Any) -> int | None:
        value = self.get(key)
        return None if isinstance(value, _Missing) else self.integer(key, value, **kw)

    def number(self, key: str, value: object, *, at: KeyPath | None = None) -> int | Decimal:
        if isinstance(value, bool) or not isinstance(value, int | Decimal):
            self.fail(key, f"expected a number, got {_type_name(value)}", at=at)
        if isinstance(value, Decimal) and not value.is_finite():
            self.fail(key, "must be a finite number", at=at)
        if isinstance(value, int) and not _INT64_MIN <= value <= _INT64_MAX:
            self.fail(key, "is out of the 64-bit integer range", at=at)
        return value

    def enum(self, key: str, options: Sequence[str], default: str | None = None) -> str:
        value = self.get(key)
        if isinstance(value, _Missing):
            if default is None:
                self.fail(None, f'missing required key "{key}"')
            return default
        if not isinstance(value, str):
            self.fail(key, f"expected a string, got {_type_name(value)}")
        if value not in options:
            self.fail(key, f'"{_printable(value)}" is not one of {_choices(options)}')
        return value

    def boolean(self, key: str, default: bool) -> bool:
        value = self.get(key)
        if isinstance(value, _Missing):
            return default
        if not isinstance(value, bool):
            self.fail(key, f"expected a boolean (true or false), got {_type_name(value)}")
        return value

    def offset_datetime(self, key: str) -> datetime:
        value = self.required(key)
        if isinstance(value, datetime):
            if value.tzinfo is None:
                self.fail(
                    key,
                    "is a local date-time without an offset",
                    hint='add "Z" or an offset such as "+01:00": 2026-01-01T00:00:00Z',
                )
            return value
        if isinstance(value, date):
            self.fail(
                key,
                "is a date without a time and an offset",
                hint="write an offset date-time such as 2026-01-01T00:00:00Z",
            )
        raise self.error(key, f"expected an offset date-time, got {_type_name(value)}")

    def array(self, key: str, value: object, *, at: KeyPath | None = None) -> list[object]:
        if not isinstance(value, list):
            self.fail(key, f"expected an array, got {_type_name(value)}", at=at)
        return value

    def table(self, key: str, label: str) -> _Table:
        table = self.opt_table(key, label)
        if table is None:
            self.fail(None, f"missing required table {label}")
        return table

    def opt_table(self, key: str, label: str) -> _Table | None:
        value = self.get(key)
        if isinstance(value, _Missing):
            return None
        if not isinstance(value, dict):
            self.fail(key, f"expected a table {label}, got {_type_name(value)}")
        return _Table(self.ctx, value, (*self.path, key), label)

    def tables(self, key: str, label: str, *, required: bool) -> list[_Table]:
        value = self.get(key)
        if isinstance(value, _Missing):
            if required:
                self.fail(None, f"missing required array of tables {label}")
            return []
        if not isinstance(value, list) or not all(isinstance(v, dict) for v in value):
            self.fail(key, f"expected an array of tables {label}, got {_type_name(value)}")
        if required and not value:
            self.fail(key, f"needs at least one entry {label}")
        return [
            _Table(
                self.ctx, cast("dict[str, object]", v), (*self.path, key, i), f"{label} #{i + 1}"
            )
            for i, v in enumerate(value)
        ]


def _printable(value: str, limit: int = 80) -> str:
    """A value safe to echo in a one-line message: escapes controls, bounded length."""
    shown = value if len(value) <= limit else value[:limit] + "…"
    return "".join(
        c if c.isprintable() and not _BAD_CHARS.match(c) else f"\\u{ord(c):04x}" for c in shown
    ).replace('"', '\\"')


# --------------------------------------------------------------------------------------------
# Keys
# --------------------------------------------------------------------------------------------


def _check_age(t: _Table, key: str, value: str) -> None:
    """An ``age1…`` recipient, checked by the crypto layer; its reason becomes the message."""
    try:
        check_recipient_strictly(value)
    except InvalidKeyError as exc:
        t.fail(key, str(exc))


def _check_verifier_key(text: str) -> None:
    """A C2SP verifier key: a signed-note key (type 0x01) or a cosignature/v1 witness key
    (type 0x04), parsed by the same code that later verifies with it."""
    from securexport._crypto.cosignature import parse_cosigner_key
    from securexport._crypto.note import parse_verifier_key

    try:
        parse_verifier_key(text)
    except ValueError as note_error:
        try:
            parse_cosigner_key(text)
        except ValueError:
            raise ValueError(f"is not a signed-note verifier key: {note_error}") from None


# --------------------------------------------------------------------------------------------
# Sections
# --------------------------------------------------------------------------------------------


def _value_kind(value: FilterValue) -> str:
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int | Decimal):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, datetime):
        return "date-time"
    return "date"  # date or RelativeDate


def _filter_value(t: _Table, key: str, value: object, at: KeyPath) -> FilterValue:
    if isinstance(value, str):
        return t.string(key, value, at=at)
    if isinstance(value, bool):
        return value
    if isinstance(value, int | Decimal):
        return t.number(key, value, at=at)
    if isinstance(value, datetime):
        if value.tzinfo is None:
            t.fail(
                key,
                "is a local date-time without an offset",
                at=at,
                hint='add "Z" or an offset, or compare with a date',
            )
        return value
    if isinstance(value, date):
        return value
    if isinstance(value, dict):
        rel = _Table(t.ctx, value, at, f"{t.label}: {key}")
        rel.check_keys({"relative_to", "days"}, required={"relative_to", "days"})
        rel.enum("relative_to", ("run_date",))
        days = rel.req_int("days", lo=-MAX_RELATIVE_DAYS, hi=MAX_RELATIVE_DAYS)
        return RelativeDate(days=days)
    raise t.error(
        key,
        f"expected a string, number, boolean, date, offset date-time or "
        f'{{ relative_to = "run_date", days = N }}, got {_type_name(value)}',
        at=at,
    )


def _parse_filter(t: _Table) -> Filter:
    t.check_keys({"column", "op", "value"}, required={"column", "op"})
    column = t.req_str("column", pattern=_SQL_IDENT, shape="a plain SQL identifier")
    op = t.enum("op", FILTER_OPS)
    raw = t.get("value")
    path = (*t.path, "value")
    value: FilterValue | tuple[FilterValue, ...] | None
    if op in ("is_null", "not_null"):
        if not isinstance(raw, _Missing):
            t.fail("value", f'must be absent for op = "{op}"')
        value = None
    else:
        raw = t.required("value")
        if op in ("in", "between"):
            items = t.array("value", raw)
            cap = t.ctx.limits.max_in_values
            if op == "in" and not 1 <= len(items) <= cap:
                t.fail("value", f'op = "in" needs 1 to {cap} values, got {len(items)}')
            if op == "between" and len(items) != 2:
                t.fail("value", f'op = "between" needs 2 values [low, high], got {len(items)}')
            values = tuple(
                _filter_value(t, f"value[{i}]", item, (*path, i)) for i, item in enumerate(items)
            )
            kinds = {_value_kind(v) for v in values}
            if len(kinds) > 1:
                t.fail("value", f"mixes value types ({', '.join(sorted(kinds))})")
            if op == "between":
                low, high = values
                if isinstance(low, RelativeDate) and isinstance(high, RelativeDate):
                    reversed_ = low.days > high.days
                elif isinstance(low, RelativeDate) or isinstance(high, RelativeDate):
                    reversed_ = False
                else:
                    reversed_ = low > high  # type: ignore[operator]
                if reversed_:
                    t.fail("value", "low is greater than high: the filter would match nothing")
            value = values
        else:
            if isinstance(raw, list):
                t.fail("value", f'op = "{op}" takes one value (use op = "in" for a list)')
            value = _filter_value(t, "value", raw, path)
    return Filter(column=column, op=op, value=value, line=t.ctx.line(t.path))


def _transform_params(t: _Table, transform: str) -> dict[str, object]:
    params: dict[str, object] = {}
    if transform == "constant":
        params["value"] = t.req_str("value")
    elif transform == "date_trunc":
        params["granularity"] = t.enum("granularity", GRANULARITIES)
    elif transform == "age_band":
        width = t.req_int("width", lo=1, hi=120)
        params["width"] = width
        top = t.opt_int("top_code", lo=width)
        if top is not None:
            params["top_code"] = top
    elif transform == "postcode_trunc":
        params["level"] = t.enum("level", POSTCODE_LEVELS)
    elif transform == "bucket":
        path = (*t.path, "edges")
        items = t.array("edges", t.required("edges"))
        cap = t.ctx.limits.max_bucket_edges
        if not 1 <= len(items) <= cap:
            t.fail("edges", f"needs 1 to {cap} edges, got {len(items)}")
        edges = tuple(t.number(f"edges[{i}]", v, at=(*path, i)) for i, v in enumerate(items))
        for i in range(1, len(edges)):
            if not edges[i - 1] < edges[i]:
                t.fail(f"edges[{i}]", "edges must be strictly increasing", at=(*path, i))
        params["edges"] = edges
        if "labels" in t.data:
            lpath = (*t.path, "labels")
            litems = t.array("labels", t.data["labels"])
            if len(litems) != len(edges):
                t.fail("labels", f"needs one label per edge ({len(edges)}), got {len(litems)}")
            labels = tuple(
                t.string(f"labels[{i}]", v, nonempty=True, at=(*lpath, i))
                for i, v in enumerate(litems)
            )
            if len(set(labels)) != len(labels):
                t.fail("labels", "labels must be unique")
            params["labels"] = labels
    elif transform == "top_code":
        top = t.req_int("max")
        params["max"] = top
        low = t.opt_int("min", hi=top - 1)
        if low is not None:
            params["min"] = low
        elif top < 0:  # without min, values below 0 are invalid: max must leave 0..max
            t.fail("max", f"must be at least 0 when no min is given, got {top}")
    elif transform == "map":
        raw = t.required("mapping")
        if not isinstance(raw, dict):
            t.fail("mapping", f"expected a table of strings, got {_type_name(raw)}")
        cap = t.ctx.limits.max_map_entries
        if not 1 <= len(raw) <= cap:
            t.fail("mapping", f"needs 1 to {cap} entries, got {len(raw)}")
        mapping: dict[str, str] = {}
        for k, v in raw.items():
            at = (*t.path, "mapping", k)
            t.string("mapping", k, at=at)  # keys become values too: same character rules
            mapping[k] = t.string(f"mapping.{_printable(k)}", v, at=at)
        params["mapping"] = MappingProxyType(mapping)
        default = t.opt_str("default")
        if default is not None:
            params["default"] = default
    elif transform == "mask":
        params["keep_first"] = t.opt_int("keep_first", lo=0) or 0
        params["keep_last"] = t.opt_int("keep_last", lo=0) or 0
        char = t.opt_str("char")
        if char is None:
            char = "*"
        elif len(char) != 1 or not char.isprintable() or char.isspace():
            t.fail("char", "must be exactly one visible character")
        params["char"] = char
    return params


def _parse_column(t: _Table) -> Column:
    name = t.req_str("name", pattern=_OUTPUT_NAME, shape="an output name ([a-z][a-z0-9_]*)")
    t.label = f'{t.label} "{name}"'
    source = t.req_str("source", pattern=_SQL_IDENT, shape="a plain SQL identifier")
    transform = t.enum("transform", TRANSFORMS)
    needed, optional = TRANSFORM_PARAMS[transform]
    allowed = _COLUMN_KEYS | needed | optional
    for key in t.data:
        if key not in allowed:
            takes = ", ".join(sorted(needed | optional)) or "no parameters"
            if any(key in n | o for n, o in TRANSFORM_PARAMS.values()):
                t.fail(
                    None,
                    f'key "{key}" is not a parameter of transform "{transform}"'
                    f" (it takes: {takes})",
                    at=(*t.path, key),
                )
            t.unknown(key, allowed)
    for key in sorted(needed):
        if key not in t.data:
            t.fail(None, f'missing required key "{key}" for transform "{transform}"')
    params = _transform_params(t, transform)
    on_invalid = t.enum("on_invalid", ON_INVALID, default="error")
    role = t.get("role")
    role = None if isinstance(role, _Missing) else t.enum("role", ROLES)
    justification = t.opt_str("justification", multiline=True, nonempty=True)
    return Column(
        name=name,
        source=source,
        transform=transform,
        params=MappingProxyType(params),
        on_invalid=cast("OnInvalid", on_invalid),
        role=role,
        justification=justification,
        line=t.ctx.line(t.path),
    )


def _parse_parties(root: _Table) -> tuple[tuple[Party, ...], tuple[Party, ...]]:
    """``[[recipients]]`` (at least one) and ``[[auditors]]``: names and age keys unique across
    both, and no more of them in all than ``Limits.max_recipients``."""
    names: dict[str, str] = {}
    ages: dict[str, str] = {}
    groups: list[tuple[Party, ...]] = []
    for key, required in (("recipients", True), ("auditors", False)):
        parties: list[Party] = []
        for t in root.tables(key, _TOP_TABLES[key], required=required):
            t.check_keys({"name", "age"}, required={"name", "age"})
            name = t.req_str("name", pattern=_PARTY_NAME, shape=_PARTY_SHAPE)
            if name in names:
                t.fail("name", f'duplicate name "{name}" (also {names[name]})')
            age = t.req_str("age")
            _check_age(t, "age", age)
            if age in ages:
                t.fail("age", f"the same age recipient is listed twice (also {ages[age]})")
            names[name] = ages[age] = t.label
            parties.append(Party(name=name, age=age))
        groups.append(tuple(parties))
    recipients, auditors = groups
    cap = root.ctx.limits.max_recipients
    if len(recipients) + len(auditors) > cap:
        root.fail("recipients", f"more than {cap} recipients and auditors in all")
    return recipients, auditors


def _parse_exporters(root: _Table) -> tuple[Exporter, ...]:
    """``[[exporters]]`` (at least one): unique names and SSH keys, optional age and ledger
    keys."""
    exporters: list[Exporter] = []
    seen_names: dict[str, str] = {}
    seen_keys: dict[SshPublicKey, str] = {}
    for t in root.tables("exporters", _TOP_TABLES["exporters"], required=True):
        t.check_keys({"name", "ssh", "age", "ledger"}, required={"name", "ssh"})
        name = t.req_str("name", pattern=_PARTY_NAME, shape=_PARTY_SHAPE)
        if name in seen_names:
            t.fail("name", f'duplicate exporter name "{name}" (also {seen_names[name]})')
        line = t.req_str("ssh")
        try:
            ssh = SshPublicKey.parse(line)
        except InvalidKeyError as exc:
            t.fail("ssh", f"not a usable ssh-ed25519 public key: {exc}")
        if ssh in seen_keys:
            t.fail("ssh", f"the same key is listed twice (also {seen_keys[ssh]})")
        age = t.opt_str("age")
        if age is not None:
            _check_age(t, "age", age)
        ledger = t.opt_str("ledger")
        if ledger is not None:
            try:
                _check_verifier_key(ledger)
            except ValueError as exc:
                t.fail("ledger", str(exc))
        seen_names[name] = seen_keys[ssh] = t.label
        exporters.append(Exporter(name=name, ssh=ssh, age=age, ledger=ledger))
    return tuple(exporters)


def _parse_privacy(t: _Table, columns: Sequence[Column]) -> Privacy:
    t.check_keys(
        {"quasi_identifiers", "k", "on_violation", "max_suppressed_fraction"},
        required={"quasi_identifiers", "k"},
    )
    path = (*t.path, "quasi_identifiers")
    items = t.array("quasi_identifiers", t.required("quasi_identifiers"))
    if not items:
        t.fail("quasi_identifiers", "must name at least one output column")
    names = {c.name for c in columns}
    qis: list[str] = []
    for i, item in enumerate(items):
        qi = t.string(f"quasi_identifiers[{i}]", item, at=(*path, i))
        if qi not in names:
            t.fail(
                "quasi_identifiers",
                f'"{_printable(qi)}" is not the name of a [[column]]',
                at=(*path, i),
            )
        if qi in qis:
            t.fail("quasi_identifiers", f'"{qi}" is listed twice', at=(*path, i))
        qis.append(qi)
    k = t.req_int("k", lo=2)
    on_violation = t.enum("on_violation", ON_VIOLATION, default="abort")
    fraction_raw = t.get("max_suppressed_fraction")
    fraction = Decimal(0)
    if not isinstance(fraction_raw, _Missing):
        number = t.number("max_suppressed_fraction", fraction_raw)
        fraction = Decimal(number)
        if not Decimal(0) <= fraction <= Decimal(1):
            t.fail("max_suppressed_fraction", f"must be between 0 and 1, got {fraction}")
    return Privacy(
        quasi_identifiers=tuple(qis),
        k=k,
        on_violation=cast("Literal['suppress', 'abort']", on_violation),
        max_suppressed_fraction=fraction,
    )


# --------------------------------------------------------------------------------------------
# Entry points
# --------------------------------------------------------------------------------------------


def _decode(raw: bytes, filename: str, max_bytes: int) -> str:
    if len(raw) > max_bytes:
        raise ApprovalError(
            f"{filename}: the approval is {len(raw)} bytes, more than the limit of {max_bytes}",
            hint="an approval is a small text file: is this the right file?",
        )
    if raw.startswith(_BOM):
        raise ApprovalError(
            f"{filename}:1: starts with a byte-order mark (U+FEFF)",
            hint="save the file as UTF-8 without a BOM",
        )
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = raw.count(b"\n", 0, exc.start) + 1
        raise ApprovalError(
            f"{filename}:{line}: not valid UTF-8 (byte {exc.start})",
            hint="approvals are UTF-8 text",
        ) from None


class _BadFloat(Exception):
    def __init__(self, literal: str) -> None:
        super().__init__(literal)
        self.literal = literal


def _parse_float(literal: str) -> Decimal:
    """tomllib's parse_float: the exact decimal as written (``0.05`` stays ``Decimal("0.05")``)."""
    try:
        return Decimal(literal)
    except ArithmeticError as exc:  # decimal.InvalidOperation: exponent beyond the context
        raise _BadFloat(literal) from exc


def _load_toml(text: str, filename: str) -> dict[str, object]:
    try:
        return tomllib.loads(text, parse_float=_parse_float)
    except _BadFloat as exc:
        pos = text.find(exc.literal)
        where = f"{filename}:{text.count(chr(10), 0, pos) + 1}" if pos >= 0 else filename
        raise ApprovalError(
            f"{where}: the number {_printable(exc.literal)} is out of range"
        ) from None
    except tomllib.TOMLDecodeError as exc:
        message = str(exc)
        match = _TOML_POSITION.search(message)
        if match is None:  # pragma: no cover - tomllib always gives a position
            raise ApprovalError(f"{filename}: invalid TOML: {message}") from None
        if match.group(1) is not None:
            where = f"{filename}:{match.group(1)}:{match.group(2)}"
        else:
            where = f"{filename}:{text.count(chr(10)) + 1}"
        raise ApprovalError(f"{where}: invalid TOML: {message[: match.start()]}") from None
    except RecursionError:
        raise ApprovalError(f"{filename}: invalid TOML: values nested too deeply") from None


def parse_approval(
    raw: bytes,
    *,
    max_bytes: int | None = None,
    limits: Limits = DEFAULT_LIMITS,
    filename: str = "approval.toml",
) -> Approval:
    """Parse and validate approval bytes strictly; raise ApprovalError with key path and line.

    ``raw`` must be UTF-8 without a BOM and at most ``max_bytes`` long (default:
    ``limits.max_approval_bytes``, 1 MiB).  ``filename`` only labels messages.  The returned
    Approval keeps ``raw`` unchanged: it is what the approver signed.  Pure: no I/O, no clock
    (whether the approval has expired is for the caller, who owns the clock).  The steps run
    in the order below, which is the order its errors are found in (the vectors pin it).
    """
    cap = limits.max_approval_bytes if max_bytes is None else max_bytes
    text = _decode(raw, filename, cap)
    root = _Table(_Ctx(text, filename, limits), _load_toml(text, filename), (), "")
    _check_top_level(root)
    about = _parse_about(root)
    source = _parse_source(root)
    row_cap, min_rows = _parse_limits(root)
    pseudonymisation = root.opt_table("pseudonymisation", "[pseudonymisation]")
    key_id, key_check, domain = _parse_pseudonymisation(pseudonymisation)
    parsed = _parse_columns(root)
    _check_pseudonym_use(pseudonymisation, parsed)
    columns = tuple(c for _, c in parsed)
    privacy_table = root.opt_table("privacy", "[privacy]")
    privacy = _parse_privacy(privacy_table, columns) if privacy_table is not None else None
    _check_quasi_identifier_roles(parsed, privacy)
    output_format = _parse_output(root)
    recipients, auditors = _parse_parties(root)
    exporters = _parse_exporters(root)
    witness = _parse_witness(root)
    owner = _parse_owner(root)
    conditions = _parse_conditions(root)
    return Approval(
        raw=raw,
        id=about.id,
        title=about.title,
        purpose=about.purpose,
        legal_basis=about.legal_basis,
        not_before=about.not_before,
        expires=about.expires,
        max_runs=about.max_runs,
        dataset=source.dataset,
        entity=source.entity,
        filters=source.filters,
        row_cap=row_cap,
        min_rows=min_rows,
        columns=columns,
        recipients=recipients,
        exporters=exporters,
        output_format=output_format,
        auditors=auditors,
        privacy=privacy,
        pseudonym_key_id=key_id,
        pseudonym_key_check=key_check,
        pseudonym_domain=domain,
        database_id=source.database_id,
        schema_sha256=source.schema_sha256,
        witness=witness,
        conditions=conditions,
        owner=owner,
    )


# --------------------------------------------------------------------------------------------
# The steps of parse_approval, in the order it runs them
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _About:
    """``[approval]``: what the approval is for, and when it may run."""

    id: str
    title: str
    purpose: str
    legal_basis: str
    not_before: datetime
    expires: datetime
    max_runs: int | None


@dataclass(frozen=True)
class _SourceTable:
    """``[source]``: which table is read, and which of its rows."""

    dataset: str
    entity: str
    database_id: str | None
    schema_sha256: str | None
    filters: tuple[Filter, ...]


def _check_top_level(root: _Table) -> None:
    """``schema`` names this format, and every other top-level key is a known table."""
    schema = root.required("schema")
    if schema != SCHEMA:
        shown = _printable(schema) if isinstance(schema, str) else _type_name(schema)
        root.fail("schema", f'must be "{SCHEMA}", got {shown}', hint="is this an approval file?")
    for key in root.data:
        if key != "schema" and key not in _TOP_TABLES:
            root.unknown(key, [*_TOP_TABLES, "schema"], " at the top level")


def _parse_about(root: _Table) -> _About:
    """``[approval]``: id, texts and the validity window (``expires`` not before
    ``not_before``)."""
    a = root.table("approval", "[approval]")
    a.check_keys(
        {"id", "title", "purpose", "legal_basis", "not_before", "expires", "max_runs"},
        required={"id", "title", "purpose", "legal_basis", "not_before", "expires"},
    )
    approval_id = a.req_str("id", pattern=_APPROVAL_ID, shape=_APPROVAL_ID_SHAPE)
    title = a.req_str("title", nonempty=True)
    purpose = a.req_str("purpose", multiline=True, nonempty=True)
    legal_basis = a.req_str("legal_basis", multiline=True, nonempty=True)
    not_before = a.offset_datetime("not_before")
    expires = a.offset_datetime("expires")
    if expires < not_before:
        a.fail("expires", f"{expires.isoformat()} is before not_before ({not_before.isoformat()})")
    max_runs = a.opt_int("max_runs", lo=1)
    return _About(approval_id, title, purpose, legal_basis, not_before, expires, max_runs)


def _parse_source(root: _Table) -> _SourceTable:
    """``[source]`` and its ``[[source.filter]]`` entries."""
    s = root.table("source", "[source]")
    s.check_keys(
        {"dataset", "entity", "database_id", "schema_sha256", "filter"},
        required={"dataset", "entity"},
    )
    ident = {"pattern": _SQL_IDENT, "shape": "a plain SQL identifier ([A-Za-z_][A-Za-z0-9_]*)"}
    dataset = s.req_str("dataset", **ident)
    entity = s.req_str("entity", **ident)
    database_id = s.opt_str("database_id", nonempty=True)
    schema_sha256 = s.opt_str("schema_sha256", pattern=_HEX64, shape="64 lower-case hex digits")
    filters = tuple(
        _parse_filter(t) for t in s.tables("filter", "[[source.filter]]", required=False)
    )
    return _SourceTable(dataset, entity, database_id, schema_sha256, filters)


def _parse_limits(root: _Table) -> tuple[int, int]:
    """``[limits]``: (row_cap, min_rows), row_cap within ``Limits.max_row_cap``."""
    lim = root.table("limits", "[limits]")
    lim.check_keys({"row_cap", "min_rows"}, required={"row_cap"})
    row_cap = lim.req_int("row_cap", lo=1, hi=root.ctx.limits.max_row_cap)
    min_rows = lim.opt_int("min_rows", lo=0) or 0
    if min_rows > row_cap:
        lim.fail("min_rows", f"{min_rows} is more than row_cap ({row_cap})")
    return row_cap, min_rows


def _parse_pseudonymisation(p: _Table | None) -> tuple[str | None, str | None, str | None]:
    """``[pseudonymisation]``, if present: (key_id, key_check, domain); else three Nones."""
    if p is None:
        return None, None, None
    p.check_keys({"key_id", "key_check", "domain"}, required={"key_id", "key_check"})
    key_id = p.req_str("key_id", pattern=_KEY_ID, shape="a key id ([A-Za-z0-9][A-Za-z0-9._-]*)")
    key_check = p.req_str("key_check", pattern=_HEX16, shape="16 lower-case hex digits")
    domain = p.opt_str("domain", nonempty=True)
    return key_id, key_check, domain


def _parse_columns(root: _Table) -> list[tuple[_Table, Column]]:
    """``[[column]]`` (at least one), output names unique; each with its table, for the
    cross-checks that follow."""
    parsed: list[tuple[_Table, Column]] = []
    seen: dict[str, str] = {}
    for t in root.tables("column", "[[column]]", required=True):
        column = _parse_column(t)
        if column.name in seen:
            t.fail("name", f"duplicate column name (also {seen[column.name]})")
        seen[column.name] = t.label
        parsed.append((t, column))
    return parsed


def _check_pseudonym_use(p: _Table | None, parsed: Sequence[tuple[_Table, Column]]) -> None:
    """``[pseudonymisation]`` is there exactly when some column uses ``pseudonym``."""
    users = [t for t, c in parsed if c.transform == "pseudonym"]
    if users and p is None:
        users[0].fail(
            "transform",
            'transform "pseudonym" needs a [pseudonymisation] table (key_id, key_check)',
            hint="pseudonym-key new KEY_ID prints the key_check",
        )
    if p is not None and not users:
        p.fail(None, 'no column uses transform = "pseudonym": remove this table')


def _check_quasi_identifier_roles(
    parsed: Sequence[tuple[_Table, Column]], privacy: Privacy | None
) -> None:
    """A column with role "quasi_identifier" is one that ``[privacy]`` counts."""
    listed = set(privacy.quasi_identifiers) if privacy is not None else set()
    for t, c in parsed:
        if c.role == "quasi_identifier" and c.name not in listed:
            t.fail(
                "role",
                'is "quasi_identifier" but [privacy] quasi_identifiers does not list this column',
            )


def _parse_output(root: _Table) -> Literal["csv", "jsonl"]:
    """``[output]``: the format, "csv" unless it says otherwise."""
    out = root.opt_table("output", "[output]")
    if out is None:
        return "csv"
    out.check_keys({"format"})
    return cast("Literal['csv', 'jsonl']", out.enum("format", OUTPUT_FORMATS, default="csv"))


def _parse_witness(root: _Table) -> Witness | None:
    """``[witness]``, if present: the owner's witness verifier key, required by default."""
    w = root.opt_table("witness", "[witness]")
    if w is None:
        return None
    w.check_keys({"key", "required"}, required={"key"})
    key = w.req_str("key")
    try:
        _check_verifier_key(key)
    except ValueError as exc:
        w.fail("key", str(exc))
    return Witness(key=key, required=w.boolean("required", default=True))


def _parse_owner(root: _Table) -> Party | None:
    """``[owner]``, if present: the data owner's name and age key."""
    o = root.opt_table("owner", "[owner]")
    if o is None:
        return None
    o.check_keys({"name", "age"}, required={"name", "age"})
    name = o.req_str("name", pattern=_PARTY_NAME, shape=_PARTY_SHAPE)
    age = o.req_str("age")
    _check_age(o, "age", age)
    return Party(name=name, age=age)


def _parse_conditions(root: _Table) -> Mapping[str, str]:
    """``[conditions]``: the texts given, of retention and onward_sharing (read-only)."""
    cond = root.opt_table("conditions", "[conditions]")
    conditions: dict[str, str] = {}
    if cond is not None:
        cond.check_keys({"retention", "onward_sharing"})
        for key in ("retention", "onward_sharing"):
            value = cond.opt_str(key, multiline=True, nonempty=True)
            if value is not None:
                conditions[key] = value
    return MappingProxyType(conditions)


# The example keys below were generated once for this template and their private halves thrown
# away: an unedited template parses, but nobody can run it or read what it would export.
_TEMPLATE = """\
# securexport approval (schema securexport.approval/1).  Strict: unknown keys, wrong types and
# bad identifiers are errors.  Edit every line marked REPLACE, then:
#     securexport approval check approval.toml
#     securexport approval sign approval.toml --as YOUR-KEY-NAME
# Whoever signs is accountable for it: the exact bytes of this file are signed and logged.
schema = "securexport.approval/1"

[approval]
id          = "APR-2026-0001"                # REPLACE: [A-Z0-9][A-Za-z0-9._-], up to 64
title       = "Describe the extract in one line"                       # REPLACE
purpose     = "Why the recipient needs this data and what they will do with it."  # REPLACE
legal_basis = "DPA 2018 Part 3 s.35"          # REPLACE
not_before  = 2026-01-01T00:00:00Z            # REPLACE; an offset (Z, +01:00) is required
expires     = 2026-03-31T23:59:59Z            # REPLACE; the window is inclusive
max_runs    = 3                               # optional; 1 = one-time; omit for no cap

[source]
dataset = "offenders"          # REPLACE: a table or view you maintain (plain identifier)
entity  = "offender_id"        # one person = one value; k counts people, not rows
# database_id   = "prod-ots-01"   # optional: must equal the source's securexport_database row
# schema_sha256 = "…"             # optional: pins the live schema (64 lower-case hex)

# Row filters; all must hold.  Values are bound as parameters, never spliced into SQL.
# op: eq ne lt le gt ge (one value), in (a list), between ([low, high]), is_null, not_null.
[[source.filter]]
column = "force_code"
op     = "eq"
value  = "WMP"

[[source.filter]]
column = "release_date"
op     = "ge"
value  = { relative_to = "run_date", days = -365 }   # the run's UTC date minus 365 days

[limits]
row_cap  = 5000                # more matching rows: abort, never truncate
min_rows = 10                  # fewer rows written: abort (small extracts re-identify)

# Needed only when a column uses transform = "pseudonym".
[pseudonymisation]
key_id    = "replace-me-key-id"    # REPLACE: securexport pseudonym-key new KEY_ID
key_check = "0000000000000000"     # REPLACE: printed by pseudonym-key new
# domain  = "shared-domain"        # optional; default: the approval id

# One [[column]] per output column; columns not listed are never read.
# Common keys: name (output, [a-z][a-z0-9_]*), source (column in the dataset), transform,
# on_invalid = "error" | "null" | "suppress_row" (default "error"),
# role = "sensitive" | "quasi_identifier" | "identifier" | "direct_identifier" | "other",
# justification = "why this column is needed".
# Transforms and their parameters:
#   keep · null · pseudonym                     (no parameters)
#   constant        value = "text"
#   date_trunc      granularity = "year" | "quarter" | "month"
#   age_band        width = 1..120, top_code = N (optional, >= width)
#   postcode_trunc  level = "area" | "district" | "sector"
#   bucket          edges = [18, 25, 35], labels = ["18-24", "25-34", "35+"] (optional)
#   top_code        max = 30, min = 0 (optional)
#   map             mapping = { "M" = "male", "F" = "female" }, default = "other" (optional)
#   mask            keep_first = 0, keep_last = 0, char = "*"
[[column]]
name          = "offender"
source        = "offender_id"
transform     = "pseudonym"
role          = "identifier"
justification = "Links this month's extract to last month's without revealing the id."

[[column]]
name        = "birth_year"
source      = "date_of_birth"
transform   = "date_trunc"
granularity = "year"
role        = "quasi_identifier"

[[column]]
name      = "district"
source    = "postcode"
transform = "postcode_trunc"
level     = "district"
role      = "quasi_identifier"

[[column]]
name      = "convictions"
source    = "conviction_count"
transform = "top_code"
max       = 30
role      = "sensitive"

[privacy]
quasi_identifiers       = ["birth_year", "district"]
k                       = 5
on_violation            = "suppress"   # or "abort" (the default)
max_suppressed_fraction = 0.05         # beyond this share of rows suppressed: abort

[output]
format = "csv"                 # "csv" (RFC 4180, UTF-8) or "jsonl"

# Who may decrypt: age X25519 recipients (age-keygen, or securexport keys show NAME).
[[recipients]]
name = "replace-me-recipient"
age  = "age12mr0xr8zyx0qmkwnaglmzmpchdzft8dsncad3khv4nv4pqztvqgqy55ec9"   # REPLACE

# Optional: auditors receive the payload key too and are shown as auditors.
# [[auditors]]
# name = "dpo-office"
# age  = "age1…"

# Who may run this export: their ssh-ed25519 signing key (securexport keys show NAME).
[[exporters]]
name = "replace-me-exporter"
ssh  = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIFI96zQ6hQPFAtTYG9Ptq0fa5pm04tdOnr51XD55ypJn"  # REPLACE
# age    = "age1…"                     # optional: to receive the pseudonym key
# ledger = "name+0123abcd+AQ…"         # optional: the exporter's ledger verifier key

# Optional: the data owner's witness cosigns each export's checkpoint (DESIGN.md §12).
# [witness]
# key      = "example.org/witness+0123abcd+AQ…"
# required = true

[conditions]
retention      = "Delete 12 months after receipt."          # REPLACE
onward_sharing = "No onward sharing without the owner's written consent."   # REPLACE
"""


def approval_template() -> str:
    """A complete, commented example approval for ``approval init``.

    It parses as it stands (the placeholder keys are real but their private halves are gone);
    every line marked REPLACE must be edited before signing.
    """
    return _TEMPLATE


def transform_version(column: Column) -> str:
    """The transform with its version, as the manifest records it, e.g. ``postcode_trunc@1``."""
    version = TRANSFORM_VERSIONS.get(column.transform)
    if version is None:
        where = f" (line {column.line})" if column.line is not None else ""
        raise ApprovalError(f"column {column.name!r}{where}: {column.transform}: unknown transform")
    return f"{column.transform}@{version}"
