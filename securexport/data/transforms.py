"""The minimisation transforms (DESIGN.md §5): pure functions, compiled once per column.

``compile_column`` turns one approved ``[[column]]`` into a function from a source value (as the
database driver returns it) to the output value.  Everything that depends only on the approval
is computed once there; the per-row path does the least work it can.

Rules every transform keeps:

- NULL in gives NULL out (``None``), except ``constant``, which writes its constant on every
  row: a constant column must carry no information, not even whether the source was NULL.
- ``keep`` returns the value unchanged; every other transform returns a ``str`` (or ``None``).
- A value a transform cannot use is *invalid*.  ``on_invalid`` decides: ``"error"`` raises
  :class:`InvalidValueError` (naming the column and the transform, never the value; the caller
  adds the row number with :meth:`InvalidValueError.at_row`), ``"null"`` gives ``None`` and
  ``"suppress_row"`` gives :data:`SUPPRESS_ROW`, telling the caller to drop the whole row.

``cell_validator`` is the decrypt-side counterpart (DESIGN.md §8.4): it says whether a cell read
back from the payload could have been produced by the column's transform.

Nothing here does I/O.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import math
import re
import uuid
from bisect import bisect_right
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime, time
from decimal import Decimal
from itertools import pairwise
from typing import Any, Final

from securexport.errors import ApprovalError, KeyUnavailableError, PolicyError
from securexport.policy.approval import Column

__all__ = [
    "SUPPRESS_ROW",
    "InvalidValueError",
    "RunContext",
    "cell_validator",
    "compile_column",
    "key_check",
    "make_pseudonymiser",
    "pseudonym_reference",
    "to_json_value",
    "to_text",
]

CompiledTransform = Callable[[object], object]
CellValidator = Callable[[str | None], bool]

KEY_CHECK_MESSAGE: Final = b"securexport/key-check/v1"
PSEUDONYM_LENGTH: Final = 26  # 128 bits in base32 without padding


@dataclass(frozen=True)
class RunContext:
    """What a transform may know about the run besides the approval."""

    run_date: date  # the UTC date the run started (age_band counts completed years at it)
    pseudonym_key: bytes | None  # needed only by ``pseudonym`` columns
    pseudonym_domain: str  # ``Approval.domain``


class _SuppressRow:
    """Type of :data:`SUPPRESS_ROW`; there is exactly one instance."""

    _instance: _SuppressRow | None = None

    def __new__(cls) -> _SuppressRow:
        if cls._instance is None:
            cls._instance = super().__new__(cls)
        return cls._instance

    def __repr__(self) -> str:
        return "SUPPRESS_ROW"

    def __reduce__(self) -> str:
        return "SUPPRESS_ROW"


SUPPRESS_ROW: Final = _SuppressRow()
"""Returned by a compiled transform for an invalid value when ``on_invalid = "suppress_row"``."""


class InvalidValueError(PolicyError):
    """A source value the column's transform cannot use, under ``on_invalid = "error"``.

    The message names the column and the transform, never the value.
    """

    def __init__(self, column: str, reason: str, *, row: int | None = None) -> None:
        where = f"column {column!r}" if row is None else f"row {row}, column {column!r}"
        super().__init__(
            f"{where}: {reason}",
            hint=(
                "correct the source data, or ask the data owner to set "
                'on_invalid = "null" or "suppress_row" for this column'
            ),
        )
        self.column = column
        self.reason = reason
        self.row = row

    def at_row(self, row: int) -> InvalidValueError:
        """The same error, naming the (1-based) row number of the query result."""
        return InvalidValueError(self.column, self.reason, row=row)


class _Invalid(Exception):
    """Raised inside a transform body; turned into the on_invalid outcome by the wrapper."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


# --------------------------------------------------------------------------- text forms


def _decimal_text(value: Decimal) -> str:
    """A Decimal without exponent notation (``1E+2`` → ``100``); NaN/Infinity as ``str``."""
    if not value.is_finite():
        return str(value)
    return format(value, "f")


def to_text(value: object, *, column: str = "?") -> str | None:
    """How an output value is written into a CSV cell; ``None`` means an empty field (NULL).

    str as is; bool ``true``/``false``; int ``str``; Decimal without exponent; float ``repr``;
    date/datetime/time ISO 8601 (``T`` separator); UUID in its hyphenated form.  Anything
    else (bytes in particular) raises :class:`InvalidValueError`.
    """
    if value is None:
        return None
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, Decimal):
        return _decimal_text(value)
    if isinstance(value, float):
        return repr(value)
    if isinstance(value, date | time):  # datetime is a date
        return value.isoformat()
    if isinstance(value, uuid.UUID):
        return str(value)
    raise InvalidValueError(column, f"a {type(value).__name__} value cannot be written as text")


JsonValue = str | int | float | bool | None


def to_json_value(value: object, *, column: str = "?") -> JsonValue:
    """How an output value is written into JSONL.

    Transformed values are already strings; kept values keep their JSON type where JSON has one
    (``None`` → null, bool, int, finite float); Decimal, dates and the rest become their
    :func:`to_text` string.  A non-finite float has no JSON form and raises.
    """
    if value is None or isinstance(value, str | bool | int):
        return value
    if isinstance(value, float):
        if not math.isfinite(value):
            raise InvalidValueError(column, "a non-finite number cannot be written as JSON")
        return value
    return to_text(value, column=column)


# --------------------------------------------------------------------------- parameters


def _bad_param(column: Column, message: str) -> ApprovalError:
    where = f" (line {column.line})" if column.line is not None else ""
    return ApprovalError(f"column {column.name!r}{where}: {column.transform}: {message}")


def _opt_int_param(column: Column, name: str) -> int | None:
    value = column.params.get(name)
    if value is None:
        return None
    if isinstance(value, Decimal) and value.is_finite() and value == value.to_integral_value():
        return int(value)
    if not isinstance(value, int) or isinstance(value, bool):
        raise _bad_param(column, f"parameter {name!r} must be an integer")
    return value


def _int_param(column: Column, name: str) -> int:
    value = _opt_int_param(column, name)
    if value is None:
        raise _bad_param(column, f"parameter {name!r} is required")
    return value


def _opt_str_param(column: Column, name: str) -> str | None:
    value = column.params.get(name)
    if value is None:
        return None
    if not isinstance(value, str):
        raise _bad_param(column, f"parameter {name!r} must be a string")
    return value


def _str_param(column: Column, name: str) -> str:
    value = _opt_str_param(column, name)
    if value is None:
        raise _bad_param(column, f"parameter {name!r} is required")
    return value


def _choice_param(column: Column, name: str, choices: tuple[str, ...]) -> str:
    value = _str_param(column, name)
    if value not in choices:
        raise _bad_param(column, f"parameter {name!r} must be one of {', '.join(choices)}")
    return value


def _decimal_of(column: Column, name: str, value: object) -> Decimal:
    if isinstance(value, bool):
        raise _bad_param(column, f"parameter {name!r} must hold numbers")
    if isinstance(value, int):
        return Decimal(value)
    if isinstance(value, Decimal) and value.is_finite():
        return value
    if isinstance(value, float) and math.isfinite(value):
        return Decimal(repr(value))
    raise _bad_param(column, f"parameter {name!r} must hold numbers")


# --------------------------------------------------------------------------- value readers

_ISO_DATETIME = re.compile(
    r"([0-9]{4})-([0-9]{2})-([0-9]{2})"
    r"(?:[T ]([0-9]{2}):([0-9]{2}):([0-9]{2})(?:\.[0-9]{1,9})?"
    r"(?:Z|[+-]([0-9]{2})(?::?([0-9]{2}))?)?)?"
)
_INT_TEXT = re.compile(r"-?[0-9]+")
_NUMBER_TEXT = re.compile(r"-?[0-9]+(?:\.[0-9]+)?")


def _as_date(value: object) -> date:
    """A date from a date, a datetime (its date as written) or ISO 8601 text."""
    if isinstance(value, datetime):
        return value.date()
    if isinstance(value, date):
        return value
    if isinstance(value, str):
        m = _ISO_DATETIME.fullmatch(value)
        if m is None:
            raise _Invalid("not an ISO 8601 date")
        year, month, day, hh, mm, ss, oh, om = m.groups()
        if (hh is not None and (int(hh) > 23 or int(mm) > 59 or int(ss) > 59)) or (
            oh is not None and (int(oh) > 23 or (om is not None and int(om) > 59))
        ):
            raise _Invalid("not an ISO 8601 date")
        try:
            return date(int(year), int(month), int(day))
        except ValueError:
            raise _Invalid("not a calendar date") from None
    raise _Invalid("not a date")


def _as_int(value: object) -> int:
    """An integer from int, an integral Decimal or float, or ``-?[0-9]+`` text."""
    if isinstance(value, bool):
        raise _Invalid("a boolean is not a number")
    if isinstance(value, int):
        return value
    if isinstance(value, Decimal):
        if value.is_finite() and value == value.to_integral_value():
            return int(value)
    elif isinstance(value, float):
        if value.is_integer():
            return int(value)
    elif isinstance(value, str) and _INT_TEXT.fullmatch(value):
        try:
            return int(value)
        except ValueError:  # beyond Python's digit limit for int()
            raise _Invalid("number too long") from None
    raise _Invalid("not an integer")


def _as_decimal(value: object) -> Decimal:
    """An exact number from int, finite Decimal or float, or ``-?[0-9]+(.[0-9]+)?`` text."""
    if isinstance(value, bool):
        raise _Invalid("a boolean is not a number")
    if isinstance(value, int):
        return Decimal(value)
    if isinstance(value, Decimal):
        if value.is_finite():
            return value
    elif isinstance(value, float):
        if math.isfinite(value):
            return Decimal(value)  # the float's exact binary value
    elif isinstance(value, str) and _NUMBER_TEXT.fullmatch(value):
        return Decimal(value)
    raise _Invalid("not a number")


def _as_text(value: object) -> str:
    """The text form of a value for map/mask: str as is, other scalars as :func:`to_text`."""
    if isinstance(value, str):
        return value
    try:
        text = to_text(value)
    except InvalidValueError:
        raise _Invalid(f"a {type(value).__name__} value has no text form") from None
    assert text is not None
    return text


# --------------------------------------------------------------------------- pseudonyms


def key_check(key: bytes) -> str:
    """The approval's ``key_check``: first 16 hex digits of HMAC-SHA-256(key, fixed message)."""
    return hmac.new(key, KEY_CHECK_MESSAGE, hashlib.sha256).hexdigest()[:16]


def _pseudonym_of_digest(digest: bytes) -> str:
    return base64.b32encode(digest[:16]).decode("ascii")[:PSEUDONYM_LENGTH].lower()


def pseudonym_reference(key: bytes, domain: str, text: str) -> str:
    """The pseudonym of ``text`` exactly as DESIGN.md §5 words it (the slow, obvious path)."""
    message = domain.encode("utf-8") + b"\x00" + text.encode("utf-8")
    return _pseudonym_of_digest(hmac.new(key, message, hashlib.sha256).digest())


# base32 (RFC 4648 alphabet, lower-cased) two symbols (10 bits) at a time.
_B32_ALPHABET: Final = "abcdefghijklmnopqrstuvwxyz234567"
_B32_PAIRS: Final = tuple(a + b for a in _B32_ALPHABET for b in _B32_ALPHABET)
_B32_TRIPLES: Final = tuple(a + b for a in _B32_PAIRS for b in _B32_ALPHABET)  # 15 bits


def make_pseudonymiser(key: bytes, domain: str) -> Callable[[str], str]:
    """A fast pseudonym function for one key and domain, equal to :func:`pseudonym_reference`.

    HMAC(K, m) = H((K' ^ opad) || H((K' ^ ipad) || m)).  The two padded key blocks, and the
    domain prefix of every message, are hashed once here; each value then costs two copies of
    a SHA-256 state and two short updates (DESIGN.md §9: 1.9x faster per row).  The base32
    step uses tables of 2 and 3 symbols (1024 and 32768 entries) instead of ``base64.b32encode`` (pure Python in 3.11, and
    slower than the HMAC itself).  Raises UnicodeEncodeError for text with lone surrogates.
    """
    block = hashlib.sha256().block_size
    if len(key) > block:
        key = hashlib.sha256(key).digest()
    padded = key.ljust(block, b"\x00")
    inner = hashlib.sha256(bytes(b ^ 0x36 for b in padded))
    inner.update(domain.encode("utf-8") + b"\x00")
    outer = hashlib.sha256(bytes(b ^ 0x5C for b in padded))
    pairs = _B32_PAIRS
    t = _B32_TRIPLES
    from_bytes = int.from_bytes

    def pseudonymise(text: str) -> str:
        i = inner.copy()
        i.update(text.encode("utf-8"))
        o = outer.copy()
        o.update(i.digest())
        n = from_bytes(o.digest()[:16], "big") << 2  # 130 bits: 2 + 8 x 3 symbols of 5 bits
        return "".join(
            (
                pairs[n >> 120],
                t[n >> 105 & 32767],
                t[n >> 90 & 32767],
                t[n >> 75 & 32767],
                t[n >> 60 & 32767],
                t[n >> 45 & 32767],
                t[n >> 30 & 32767],
                t[n >> 15 & 32767],
                t[n & 32767],
            )
        )

    return pseudonymise


def _pseudonym_text(value: object) -> str:
    """The text a value is pseudonymised as: str as is, integers in decimal, dates in ISO."""
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        raise _Invalid("a boolean cannot be pseudonymised")
    if isinstance(value, int):
        return str(value)
    if isinstance(value, Decimal | float):
        # NUMERIC/REAL identifiers: integral values give the same text as the integer.
        return str(_as_int(value))
    if isinstance(value, date | time):
        return value.isoformat()
    if isinstance(value, uuid.UUID):
        return str(value)
    raise _Invalid(f"a {type(value).__name__} value cannot be pseudonymised")


# --------------------------------------------------------------------------- transform bodies

Body = Callable[[object], object]
_KEEP_TYPES = (str, int, float, Decimal, date, time, uuid.UUID)  # bool is an int


def _body_keep(column: Column, ctx: RunContext) -> Body:
    def keep(value: object) -> object:
        if not isinstance(value, _KEEP_TYPES):
            raise _Invalid(f"a {type(value).__name__} value cannot be exported")
        if isinstance(value, float) and not math.isfinite(value):
            raise _Invalid("a non-finite number cannot be exported")
        return value

    return keep


def _body_null(column: Column, ctx: RunContext) -> Body:
    return lambda value: None


def _constant_text(column: Column) -> str:
    value = column.params.get("value")
    if value is None or isinstance(value, bytes | bytearray):
        raise _bad_param(column, "parameter 'value' must be a string, number, boolean or date")
    try:
        text = to_text(value, column=column.name)
    except InvalidValueError:
        raise _bad_param(column, "parameter 'value' has no text form") from None
    assert text is not None
    return text


def _body_constant(column: Column, ctx: RunContext) -> Body:
    text = _constant_text(column)
    return lambda value: text


def _body_pseudonym(column: Column, ctx: RunContext) -> Body:
    if ctx.pseudonym_key is None:
        raise KeyUnavailableError(
            f"column {column.name!r}: pseudonym needs the approval's pseudonym key",
            hint="import it with `securexport pseudonym-key import FILE`",
        )
    pseudonymise = make_pseudonymiser(ctx.pseudonym_key, ctx.pseudonym_domain)

    def pseudonym(value: object) -> str:
        text = _pseudonym_text(value)
        try:
            return pseudonymise(text)
        except UnicodeEncodeError:
            raise _Invalid("text is not valid Unicode") from None

    return pseudonym


_GRANULARITIES = ("year", "quarter", "month")


def _body_date_trunc(column: Column, ctx: RunContext) -> Body:
    granularity = _choice_param(column, "granularity", _GRANULARITIES)
    if granularity == "year":
        return lambda value: f"{_as_date(value).year:04d}"
    if granularity == "quarter":

        def quarter(value: object) -> str:
            d = _as_date(value)
            return f"{d.year:04d}-Q{(d.month - 1) // 3 + 1}"

        return quarter

    def month(value: object) -> str:
        d = _as_date(value)
        return f"{d.year:04d}-{d.month:02d}"

    return month


def _age_band_params(column: Column) -> tuple[int, int | None]:
    width = _int_param(column, "width")
    top = _opt_int_param(column, "top_code")
    if width < 1:
        raise _bad_param(column, "parameter 'width' must be at least 1")
    if top is not None and top < 1:
        raise _bad_param(column, "parameter 'top_code' must be at least 1")
    return width, top


def _age_band_label(age: int, width: int, top: int | None) -> str:
    if top is not None and age >= top:
        return f"{top}+"
    low = age - age % width
    high = low + width - 1
    if top is not None and high >= top:
        high = top - 1  # the band below the top code stops short of it: labels never overlap
    return f"{low}-{high}"


def _body_age_band(column: Column, ctx: RunContext) -> Body:
    width, top = _age_band_params(column)
    run = ctx.run_date
    run_md = (run.month, run.day)

    def age_band(value: object) -> str:
        born = _as_date(value)
        # Completed years; someone born on 29 February comes of age on 1 March in other years.
        age = run.year - born.year - (run_md < (born.month, born.day))
        if age < 0:
            raise _Invalid("date of birth after the run date")
        return _age_band_label(age, width, top)

    return age_band


_POSTCODE = re.compile(r"([A-Z]{1,2})([0-9][A-Z0-9]?)([0-9])([A-Z]{2})|(GIR)()(0)(AA)")
# The usual written form (upper case, at most one space, before the inward code) matched as it
# is: removing whitespace and upper-casing would not change it, and the inward code is always
# the last three characters, so the groups are those _POSTCODE finds in the normalised text.
_POSTCODE_WRITTEN = re.compile(r"([A-Z]{1,2})([0-9][A-Z0-9]?) ?([0-9])[A-Z]{2}")
_POSTCODE_LEVELS = ("area", "district", "sector")


def _body_postcode_trunc(column: Column, ctx: RunContext) -> Body:
    level = _choice_param(column, "level", _POSTCODE_LEVELS)
    match = _POSTCODE.fullmatch
    written = _POSTCODE_WRITTEN.fullmatch

    def postcode(value: object) -> str:
        if type(value) is str and (w := written(value)) is not None:
            if level == "area":
                return w[1]
            if level == "district":
                return w[1] + w[2]
            return f"{w[1]}{w[2]} {w[3]}"
        if not isinstance(value, str) or not value.isascii():
            raise _Invalid("not a postcode")
        m = match("".join(value.upper().split()))
        if m is None:
            raise _Invalid("not a UK postcode")
        g = m.groups()
        area, rest, sector = (g[0], g[1], g[2]) if g[0] is not None else (g[4], g[5], g[6])
        if level == "area":
            return area
        if level == "district":
            return area + rest
        return f"{area}{rest} {sector}"

    return postcode


# The written form again, one postcode per line of a batch joined with newlines; any other
# line matches the empty alternative (group ""), for the value-by-value path.  The group is
# the output at each level (area, district; sector adds its digit), as _POSTCODE_WRITTEN's.
_POSTCODE_LINES: Final[Mapping[str, re.Pattern[str]]] = {
    "area": re.compile(r"^(?:([A-Z]{1,2})[0-9][A-Z0-9]? ?[0-9][A-Z]{2}|.*)$", re.MULTILINE),
    "district": re.compile(r"^(?:([A-Z]{1,2}[0-9][A-Z0-9]?) ?[0-9][A-Z]{2}|.*)$", re.MULTILINE),
    "sector": re.compile(r"^(?:([A-Z]{1,2}[0-9][A-Z0-9]?) ?([0-9])[A-Z]{2}|.*)$", re.MULTILINE),
}

BatchTransform = Callable[[Sequence[object]], list[object] | None]
_EMPTY_FOR_NONE: Final[Mapping[object, str]] = {None: ""}


def _batch_postcode_trunc(column: Column, one: CompiledTransform) -> BatchTransform:
    level = _choice_param(column, "level", _POSTCODE_LEVELS)
    findall = _POSTCODE_LINES[level].findall

    def postcodes(values: Sequence[object]) -> list[object] | None:
        kinds = set(map(type, values))
        if not values or not kinds <= {str, type(None)}:
            return None
        # NULL becomes an empty line (no match: ``one`` gives NULL for it below)
        joined = "\n".join(map(_EMPTY_FOR_NONE.get, values, values))  # type: ignore[arg-type]
        if joined.count("\n") != len(values) - 1:
            return None  # a value holds a newline
        if joined.isascii():
            # ``one`` upper-cases ASCII text before matching: a lower-case postcode in the
            # written form gives the groups of its upper-case form (upper() keeps ASCII text
            # ASCII, one character for one, so the lines stay the values).
            joined = joined.upper()
        found: list[Any] = findall(joined)
        if len(found) != len(values):
            return None  # cannot happen (one match per line); be safe
        if level == "sector":
            found = [f"{d} {n}" if d else "" for d, n in found]
        # "" marks a value not in the written form: the value-by-value function decides
        # (NULL gives NULL without a call).
        return [
            got or (None if v is None else one(v)) for v, got in zip(values, found, strict=True)
        ]

    return postcodes


def compile_batch(column: Column, one: CompiledTransform) -> BatchTransform | None:
    """A whole-batch form of ``one`` (the column's :func:`compile_column`), for speed, or None.

    It returns ``[one(v) for v in values]`` (raising what ``one`` raises), or None when it
    cannot tell (the caller then runs ``one`` value by value).  Only postcode_trunc has one:
    one regular expression over a batch of postcodes in their written form, instead of a
    call per value; other values go through ``one``.
    """
    if column.transform == "postcode_trunc":
        return _batch_postcode_trunc(column, one)
    return None


def _bucket_params(column: Column) -> tuple[list[Decimal], tuple[str, ...]]:
    raw_edges = column.params.get("edges")
    if not isinstance(raw_edges, list | tuple) or not raw_edges:
        raise _bad_param(column, "parameter 'edges' must be a non-empty list of numbers")
    edges = [_decimal_of(column, "edges", e) for e in raw_edges]
    if any(a >= b for a, b in pairwise(edges)):
        raise _bad_param(column, "parameter 'edges' must be strictly increasing")
    raw_labels = column.params.get("labels")
    if raw_labels is not None:
        if (
            not isinstance(raw_labels, list | tuple)
            or len(raw_labels) != len(edges)
            or not all(isinstance(label, str) for label in raw_labels)
        ):
            raise _bad_param(column, "parameter 'labels' must be one string per edge")
        return edges, tuple(str(label) for label in raw_labels)
    if all(e == e.to_integral_value() for e in edges):
        ints = [int(e) for e in edges]
        labels = [f"{a}-{b - 1}" for a, b in pairwise(ints)]
        labels.append(f"{ints[-1]}+")
    else:
        texts = [_decimal_text(e) for e in edges]
        labels = [f"[{a},{b})" for a, b in pairwise(texts)]
        labels.append(f">={texts[-1]}")
    return edges, tuple(labels)


def _body_bucket(column: Column, ctx: RunContext) -> Body:
    edges, labels = _bucket_params(column)

    def bucket(value: object) -> str:
        i = bisect_right(edges, _as_decimal(value)) - 1
        if i < 0:
            raise _Invalid("below the first bucket edge")
        return labels[i]

    return bucket


def _top_code_params(column: Column) -> tuple[int, int | None]:
    high = _int_param(column, "max")
    low = _opt_int_param(column, "min")
    if low is None and high < 0:
        raise _bad_param(column, "parameter 'max' must not be negative")
    if low is not None and low > high:
        raise _bad_param(column, "parameter 'min' must not exceed 'max'")
    return high, low


def _body_top_code(column: Column, ctx: RunContext) -> Body:
    high, low = _top_code_params(column)
    above = f">{high}"
    below = f"<{low}" if low is not None else None

    def top_code(value: object) -> str:
        n = _as_int(value)
        if n > high:
            return above
        if low is None:
            if n < 0:
                raise _Invalid("negative value and no 'min' to code it")
        elif n < low:
            assert below is not None
            return below
        return str(n)

    return top_code


def _map_params(column: Column) -> tuple[dict[str, str], str | None]:
    mapping = column.params.get("mapping")
    if not isinstance(mapping, Mapping) or not all(
        isinstance(k, str) and isinstance(v, str) for k, v in mapping.items()
    ):
        raise _bad_param(column, "parameter 'mapping' must map strings to strings")
    return dict(mapping), _opt_str_param(column, "default")


def _body_map(column: Column, ctx: RunContext) -> Body:
    mapping, default = _map_params(column)

    def map_value(value: object) -> str:
        out = mapping.get(_as_text(value), default)
        if out is None:
            raise _Invalid("value not in the mapping and no default")
        return out

    return map_value


def _mask_params(column: Column) -> tuple[int, int, str]:
    first = _int_param(column, "keep_first")
    last = _int_param(column, "keep_last")
    char = _str_param(column, "char")
    if first < 0 or last < 0:
        raise _bad_param(column, "keep_first and keep_last must not be negative")
    if len(char) != 1:
        raise _bad_param(column, "parameter 'char' must be one character")
    return first, last, char


def _body_mask(column: Column, ctx: RunContext) -> Body:
    first, last, char = _mask_params(column)
    kept = first + last

    def mask(value: object) -> str:
        text = _as_text(value)
        n = len(text)
        if n <= kept:
            # Nothing would be hidden: hide everything rather than give the value away.
            return char * n
        return text[:first] + char * (n - kept) + text[n - last :]

    return mask


_BODIES: Final[Mapping[str, Callable[[Column, RunContext], Body]]] = {
    "keep": _body_keep,
    "null": _body_null,
    "constant": _body_constant,
    "pseudonym": _body_pseudonym,
    "date_trunc": _body_date_trunc,
    "age_band": _body_age_band,
    "postcode_trunc": _body_postcode_trunc,
    "bucket": _body_bucket,
    "top_code": _body_top_code,
    "map": _body_map,
    "mask": _body_mask,
}


def compile_column(column: Column, ctx: RunContext) -> CompiledTransform:
    """Compile one column's transform: source value in, output value out (see module doc).

    Raises ApprovalError for parameters the parser should have refused, and
    KeyUnavailableError for a pseudonym column without a key in ``ctx``.
    """
    factory = _BODIES.get(column.transform)
    if factory is None:
        raise _bad_param(column, "unknown transform")
    body = factory(column, ctx)
    name = column.name
    transform = column.transform
    on_invalid = column.on_invalid

    if transform == "constant":
        return body  # never invalid, and NULL in gives the constant too
    if on_invalid == "null":
        invalid_result: object = None
    elif on_invalid == "suppress_row":
        invalid_result = SUPPRESS_ROW
    elif on_invalid == "error":
        invalid_result = None
    else:
        raise _bad_param(column, "on_invalid must be error, null or suppress_row")
    raise_on_invalid = on_invalid == "error"

    def run(value: object) -> object:
        if value is None:
            return None
        try:
            return body(value)
        except _Invalid as exc:
            if raise_on_invalid:
                raise InvalidValueError(
                    name, f"{transform} cannot use the value ({exc.reason})"
                ) from None
            return invalid_result

    return run


# --------------------------------------------------------------------------- cell validators

_PSEUDONYM_CELL = re.compile(r"[a-z2-7]{25}[aeimquy4]")  # 128 bits: the last symbol ends in 00
_YEAR = r"(?!0000)[0-9]{4}"
_DATE_CELLS: Final[Mapping[str, re.Pattern[str]]] = {
    "year": re.compile(_YEAR),
    "quarter": re.compile(_YEAR + r"-Q[1-4]"),
    "month": re.compile(_YEAR + r"-(?:0[1-9]|1[0-2])"),
}
_DISTRICT = r"(?:[A-Z]{1,2}[0-9][A-Z0-9]?|GIR)"
_POSTCODE_CELLS: Final[Mapping[str, re.Pattern[str]]] = {
    "area": re.compile(r"[A-Z]{1,2}|GIR"),
    "district": re.compile(_DISTRICT),
    "sector": re.compile(_DISTRICT + r" [0-9]"),
}
_CANONICAL_INT = re.compile(r"-?(?:0|[1-9][0-9]*)")
_BAND = re.compile(r"(0|[1-9][0-9]*)-(0|[1-9][0-9]*)")


def _pattern_validator(pattern: re.Pattern[str]) -> CellValidator:
    match = pattern.fullmatch
    return lambda cell: cell is None or match(cell) is not None


def _age_band_validator(column: Column) -> CellValidator:
    width, top = _age_band_params(column)
    top_label = f"{top}+" if top is not None else None

    def valid(cell: str | None) -> bool:
        if cell is None or cell == top_label:
            return True
        m = _BAND.fullmatch(cell)
        if m is None:
            return False
        # The one label an age equal to the band's lower bound gets: this rejects bounds off
        # the width grid, wrong upper bounds, bands at or above the top code, leading zeros.
        return cell == _age_band_label(int(m.group(1)), width, top)

    return valid


def _top_code_validator(column: Column) -> CellValidator:
    high, low = _top_code_params(column)
    specials = {f">{high}"} | ({f"<{low}"} if low is not None else set())
    floor = 0 if low is None else low

    def valid(cell: str | None) -> bool:
        if cell is None or cell in specials:
            return True
        if cell == "-0" or _CANONICAL_INT.fullmatch(cell) is None:
            return False
        return floor <= int(cell) <= high

    return valid


def _mask_validator(column: Column) -> CellValidator:
    first, last, char = _mask_params(column)
    kept = first + last

    def valid(cell: str | None) -> bool:
        if cell is None:
            return True
        n = len(cell)
        hidden = cell if n <= kept else cell[first : n - last]
        return hidden.count(char) == len(hidden)

    return valid


def _set_validator(allowed: set[str], *, nullable: bool = True) -> CellValidator:
    frozen = frozenset(allowed)
    return lambda cell: nullable if cell is None else cell in frozen


def cell_validator(column: Column, *, run_date_unknown_ok: bool = True) -> CellValidator:
    """Whether a cell read back (``None`` = empty field/NULL) could come from the transform.

    The checks are on the shape of the output only, so they need neither the pseudonym key nor
    the run date (no v1 transform's set of possible outputs depends on the run date;
    ``run_date_unknown_ok`` is accepted for forward compatibility and changes nothing in v1).
    ``None`` is accepted for every transform except ``constant`` (which never writes NULL);
    ``null`` accepts only ``None``.  A CSV reader cannot tell an empty string from NULL, so
    callers reading CSV should pass ``None`` for an empty field.
    """
    del run_date_unknown_ok
    transform = column.transform
    if transform == "keep":
        return lambda cell: True
    if transform == "null":
        return lambda cell: cell is None
    if transform == "constant":
        text = _constant_text(column)
        # An empty constant reads back from CSV as an empty field.
        return lambda cell: cell == text or (cell is None and text == "")
    if transform == "pseudonym":
        return _pattern_validator(_PSEUDONYM_CELL)
    if transform == "date_trunc":
        return _pattern_validator(_DATE_CELLS[_choice_param(column, "granularity", _GRANULARITIES)])
    if transform == "postcode_trunc":
        return _pattern_validator(_POSTCODE_CELLS[_choice_param(column, "level", _POSTCODE_LEVELS)])
    if transform == "age_band":
        return _age_band_validator(column)
    if transform == "top_code":
        return _top_code_validator(column)
    if transform == "bucket":
        return _set_validator(set(_bucket_params(column)[1]))
    if transform == "map":
        mapping, default = _map_params(column)
        return _set_validator(set(mapping.values()) | ({default} if default is not None else set()))
    if transform == "mask":
        return _mask_validator(column)
    raise _bad_param(column, "unknown transform")


@dataclass(frozen=True)
class CellAlphabet:
    """A cell shape checkable a whole column at a time (see :func:`cell_alphabet`)."""

    length: int
    symbols: str
    last: str


def cell_alphabet(column: Column) -> CellAlphabet | None:
    """The batch form of :func:`cell_validator` for high-cardinality fixed-shape columns.

    When not ``None``, a non-empty cell passes :func:`cell_validator` exactly when it has
    ``length`` characters, all in ``symbols``, the last one also in ``last`` (empty/``None``
    cells pass).  v1: pseudonyms (``[a-z2-7]{25}[aeimquy4]``).
    """
    if column.transform == "pseudonym":
        return CellAlphabet(26, "abcdefghijklmnopqrstuvwxyz234567", "aeimquy4")
    return None
