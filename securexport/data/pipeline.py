"""The data path: rows from one snapshot, through the compiled transforms, into the payload.

The export reads the source once, in one snapshot: :func:`read_part` transforms every row,
counts matching rows (row cap), entities per quasi-identifier class (k) and invalid rows, and
seals each formatted batch into an encrypted spool (:mod:`securexport.spool`) with each row's
length and class; :func:`combine` decides which classes are too small, and :func:`replay`
streams the spool into the encrypted entry without them.  A large read is split by entity
between two processes (:mod:`securexport.parallel`), each with its own spool.  ``approval
plan`` only counts (:func:`count_part`, over a narrower query).  Memory grows with the number
of classes, never with the rows: the query orders rows by entity, so distinct entities are
counted one entity at a time (:class:`~securexport.privacy.EntityRunCounter`).  Errors name a
row number and a column, never a value.

Speed (docs/performance.md): rows are processed a batch at a time, column by column; a
transform whose output depends only on its input's value is memoised per column (bounded), so
repeated dates and codes cost one dictionary lookup; postcodes go through one regular
expression per batch; the CSV of a batch is formatted in one call; and deflate + AES-256 + the
HMACs run in a writer thread (zlib and the AES code release the GIL) during the replay.
Output bytes are exactly those of the row-at-a-time path, which still runs for a batch that
holds an invalid value, so errors name the same row and column.
"""

from __future__ import annotations

import csv
import io
import json
import queue
import struct
import threading
from array import array
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date
from itertools import accumulate, compress, repeat
from operator import and_, is_, itemgetter
from typing import Any

from securexport.data import entities, transforms
from securexport.data.privacy import QI, EntityRunCounter, PrivacyOutcome, evaluate
from securexport.data.privacy import check as check_privacy
from securexport.data.source import BuiltQuery, Snapshot, build_query
from securexport.data.spool import Spool
from securexport.errors import PolicyError
from securexport.limits import DEFAULT_LIMITS
from securexport.policy.approval import Approval


@dataclass
class CompiledPlan:
    approval: Approval
    query: BuiltQuery  # the export's query (the manifest records it)
    columns: list[Callable[[object], object]]
    source_index: list[int]  # per column: its source's position in a row of ``query``
    entity_index: int
    qi_positions: list[int]  # positions in approval.columns
    pass1_positions: list[int]  # columns the count needs (quasi-identifiers, suppress_row)
    memo: list[dict[object, object] | None] = field(default_factory=list)  # per column
    int_memo: list[dict[object, object] | None] = field(default_factory=list)  # per column
    count_query: BuiltQuery | None = None  # plan's counting query (default: ``query``)
    count_source_index: list[int] = field(default_factory=list)  # as source_index, count_query
    count_entity_index: int = 0
    batch: list[transforms.BatchTransform | None] = field(default_factory=list)  # per column


def _pass1_positions(approval: Approval) -> tuple[list[int], list[int]]:
    names = [c.name for c in approval.columns]
    qi = [names.index(q) for q in approval.privacy.quasi_identifiers] if approval.privacy else []
    pass1 = sorted(
        set(qi) | {i for i, c in enumerate(approval.columns) if c.on_invalid == "suppress_row"}
    )
    return qi, pass1


def compile_plan(
    approval: Approval,
    query: BuiltQuery,
    ctx: transforms.RunContext,
    count_query: BuiltQuery | None = None,
) -> CompiledPlan:
    selected = list(query.selected)
    qi, pass1 = _pass1_positions(approval)
    counted = list((count_query or query).selected)
    fns = [transforms.compile_column(c, ctx) for c in approval.columns]
    return CompiledPlan(
        approval=approval,
        query=query,
        columns=fns,
        source_index=[selected.index(c.source) for c in approval.columns],
        entity_index=selected.index(approval.entity),
        qi_positions=qi,
        pass1_positions=pass1,
        memo=[{} if c.transform in _MEMOISED else None for c in approval.columns],
        int_memo=[{} if c.transform in _INT_MEMOISED else None for c in approval.columns],
        count_query=count_query,
        count_source_index=[
            counted.index(c.source) if c.source in counted else -1 for c in approval.columns
        ],
        count_entity_index=counted.index(approval.entity),
        batch=[
            transforms.compile_batch(c, fn) for c, fn in zip(approval.columns, fns, strict=True)
        ],
    )


def prepare(
    approval: Approval,
    live: Mapping[str, str],
    run_date: date,
    ctx: transforms.RunContext,
) -> CompiledPlan:
    """The export query, the (narrower, entity-ordered) counting query and the transforms.

    Both queries select the same rows (same filters, LIMIT row_cap + 1); the counting query
    reads only the entity and the columns the count needs, ordered by the entity alone.
    """
    query = build_query(approval, live, run_date, limit=approval.row_cap + 1)
    _, pass1 = _pass1_positions(approval)
    needed = {approval.columns[p].source for p in pass1}
    count_query = build_query(
        approval, live, run_date, limit=approval.row_cap + 1, count_sources=sorted(needed)
    )
    return compile_plan(approval, query, ctx, count_query)


# Transforms whose output depends only on the input value (and the approval): memoised.
# pseudonym is left out (one value per entity: a cache would only grow); keep/null/constant
# cost nothing.  Only keys of these exact types are stored: a value equal to a str, a date or
# None is of the same type, so a lookup never returns another type's result (1.0 == 1, and
# Decimal("1.0") == Decimal("1") would, which is why numbers are not stored).
_MEMOISED = frozenset(
    {"date_trunc", "age_band", "postcode_trunc", "bucket", "top_code", "map", "mask"}
)
# Transforms that take numbers also get a memo of exact ints (see _apply).  The others take
# dates or text: an int is invalid there, and checking each batch's types would cost more.
_INT_MEMOISED = frozenset({"bucket", "top_code", "map", "mask"})
_MEMO_TYPES: frozenset[type] = frozenset({str, date, type(None)})
_INT_TYPES: frozenset[type] = frozenset({int, type(None)})
_MEMO_LIMIT = 1 << 16  # entries per column; beyond it misses are computed, not stored
_MISS = object()
_BATCH = 10_000  # rows per batch: per-batch costs vanish, memory stays a few MB


def _apply(
    fn: Callable[[object], object],
    memo: dict[object, object] | None,
    values: Sequence[object],
    int_memo: dict[object, object] | None = None,
) -> list[object]:
    """``[fn(v) for v in values]``, memoised; InvalidValueError propagates.

    ``memo`` stores str, date and None keys only, so a lookup with any value can only hit a
    key of the value's own type.  ``int_memo`` stores exact ints (and None) and is used only
    for a batch whose values are all exact ints or None: ``True``, ``1.0`` or ``Decimal(1)``
    never look it up (they equal ``1`` but may give another output).
    """
    if memo is None:
        return [fn(v) for v in values]
    if int_memo is not None and set(map(type, values)) <= _INT_TYPES:
        memo, store = int_memo, _INT_TYPES
    else:
        store = _MEMO_TYPES
    try:
        out = list(map(memo.get, values, repeat(_MISS)))
    except TypeError:  # an unhashable value (a PostgreSQL array, say)
        return [fn(v) for v in values]
    misses = out.count(_MISS)
    if misses and len(memo) >= _MEMO_LIMIT and misses * 2 > len(out):
        # The memo is full and mostly misses (many distinct values, e.g. postcodes): nothing
        # can be stored, so computing every value beats a Python loop over the misses.
        return list(map(fn, values))
    if misses:
        # the misses' positions, found in C (a Python loop over every value costs more)
        for i in compress(range(len(out)), map(is_, out, repeat(_MISS))):
            v = values[i]
            got = out[i] = fn(v)
            if type(v) in store and len(memo) < _MEMO_LIMIT:
                memo[v] = got
    return out


def _pseudonyms(fn: Callable[[object], object], values: Sequence[object]) -> list[object]:
    """Consecutive rows of one entity share a pseudonym (rows come ordered by entity)."""
    out: list[object] = []
    append = out.append
    prev: object = _MISS
    prev_out: object = None
    for v in values:
        if v != prev or type(v) is not type(prev):
            prev, prev_out = v, fn(v)
        append(prev_out)
    return out


def _invalid(exc: transforms.InvalidValueError, row_number: int) -> PolicyError:
    return PolicyError(f"row {row_number}: {exc.message}", hint=exc.hint)


@dataclass(frozen=True)
class Counts:
    matching: int
    invalid_suppressed: int
    outcome: PrivacyOutcome | None


def _source_columns(batch: list[Any], width: int) -> list[list[object]]:
    """A batch of rows as columns (``list(map(itemgetter(i), batch))``: C speed, unlike
    ``zip(*batch)``, which makes one iterator per row)."""
    return [list(map(itemgetter(i), batch)) for i in range(width)] if batch else []


def _columns(
    plan: CompiledPlan,
    by_source: list[list[object]],
    positions: Sequence[int],
    source_index: Sequence[int],
) -> dict[int, list[object]]:
    """Output values of the columns at ``positions`` for a batch, column by column."""
    out: dict[int, list[object]] = {}
    for pos in positions:
        values = by_source[source_index[pos]]
        fn = plan.columns[pos]
        batch_fn = plan.batch[pos] if plan.batch else None
        if batch_fn is not None and (got := batch_fn(values)) is not None:
            out[pos] = got
        elif plan.approval.columns[pos].transform == "pseudonym":
            out[pos] = _pseudonyms(fn, values)
        else:
            out[pos] = _apply(fn, plan.memo[pos], values, plan.int_memo[pos])
    return out


def _count_rows_slowly(
    plan: CompiledPlan, batch: list[Any], first_row: int, counter: EntityRunCounter
) -> int:
    """Row-at-a-time counting of one batch (names the failing row and column)."""
    invalid = 0
    for n, row in enumerate(batch, first_row):
        values: dict[int, object] = {}
        suppressed = False
        for pos in plan.pass1_positions:
            try:
                value = plan.columns[pos](row[plan.count_source_index[pos]])
            except transforms.InvalidValueError as exc:
                raise _invalid(exc, n) from None
            if value is transforms.SUPPRESS_ROW:
                suppressed = True
                break
            values[pos] = value
        if suppressed:
            invalid += 1
            counter.add_invalid_row()
            continue
        counter.add_rows(
            [row[plan.count_entity_index]], [tuple(values[p] for p in plan.qi_positions)]
        )
    return invalid


def count_part(
    snapshot: Snapshot, plan: CompiledPlan, progress: Any = None, rows_before: int = 0
) -> PartRead:
    """Count one part's rows (row cap, invalid rows, entities per class), writing nothing.

    Reads the narrow counting query (the entity and the columns the count needs).
    ``rows_before``: rows of the parts before this one (row numbers, row cap).
    """
    approval = plan.approval
    counter = EntityRunCounter()
    matching = 0
    invalid = 0
    suppress_marker = transforms.SUPPRESS_ROW
    may_suppress = any(
        approval.columns[p].on_invalid == "suppress_row" for p in plan.pass1_positions
    )
    count_query = plan.count_query or plan.query
    width = len(count_query.selected)
    for batch in snapshot.stream(count_query, batch_size=_BATCH):
        first_row = rows_before + matching + 1
        matching += len(batch)
        if rows_before + matching > approval.row_cap:
            raise _over_cap(approval)
        by_source = _source_columns(batch, width)
        try:
            cols = _columns(plan, by_source, plan.pass1_positions, plan.count_source_index)
        except transforms.InvalidValueError:
            invalid += _count_rows_slowly(plan, batch, first_row, counter)
        else:
            entities = by_source[plan.count_entity_index]
            qis: list[tuple[object, ...]] = (
                list(zip(*(cols[p] for p in plan.qi_positions), strict=True))
                if plan.qi_positions
                else [()] * len(batch)
            )
            if may_suppress:
                keep = [
                    not any(cols[p][i] is suppress_marker for p in plan.pass1_positions)
                    for i in range(len(batch))
                ]
                dropped = keep.count(False)
                if dropped:
                    invalid += dropped
                    for _ in range(dropped):
                        counter.add_invalid_row()
                    entities = [e for e, k in zip(entities, keep, strict=True) if k]
                    qis = [q for q, k in zip(qis, keep, strict=True) if k]
            counter.add_rows(entities, qis)
        if progress is not None:
            progress.update(len(batch))
    return PartRead(matching, invalid, 0, counter.state(), {})


def combine_counts(approval: Approval, parts: Sequence[PartRead]) -> Counts:
    """The counts over every part: the parts hold disjoint entities, so class sizes add."""
    counter = EntityRunCounter()
    for part in parts:
        counter.absorb(*part.counter_state)
    matching = sum(p.matching for p in parts)
    if matching > approval.row_cap:
        raise _over_cap(approval)
    outcome = evaluate(counter, approval.privacy) if approval.privacy else None
    return Counts(matching, sum(p.invalid for p in parts), outcome)


def written_rows(counts: Counts) -> int:
    if counts.outcome is not None:
        return counts.outcome.written_rows
    return counts.matching - counts.invalid_suppressed


def check_counts(approval: Approval, counts: Counts) -> None:
    if counts.outcome is not None and approval.privacy is not None:
        check_privacy(counts.outcome, approval.privacy)
    written = written_rows(counts)
    if written < approval.min_rows:
        raise PolicyError(
            f"only {written} rows would be written, below min_rows={approval.min_rows}; "
            "nothing was exported"
        )


class _WriterThread:
    """Runs ``entry.write`` (UTF-8 encoding, HMAC, deflate, AES, file writes) off the main
    thread, so it overlaps with reading and transforming the next batches.  At most
    ``depth`` batches wait (memory stays bounded); the first error is re-raised in the caller."""

    def __init__(self, entry: Any, depth: int = 4) -> None:
        self._entry = entry
        self._queue: queue.Queue[bytes | None] = queue.Queue(maxsize=depth)
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, name="securexport-payload", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while (data := self._queue.get()) is not None:
            if self._error is None:
                try:
                    self._entry.write_bytes(data)
                except BaseException as exc:  # noqa: BLE001 - handed to the caller
                    self._error = exc

    def _check(self) -> None:
        if self._error is not None:
            raise self._error

    def write(self, data: bytes) -> None:
        self._check()
        self._queue.put(data)

    def finish(self) -> None:
        """Wait for every queued batch; raise the writer's error, if any."""
        self._queue.put(None)
        self._thread.join()
        self._check()

    def abandon(self) -> None:
        """Stop after the queued batches without raising (the caller is failing already)."""
        self._error = self._error or RuntimeError("abandoned")
        self._queue.put(None)
        self._thread.join()


def _transform_rows_slowly(
    plan: CompiledPlan, batch: list[Any], first_row: int
) -> list[list[object]]:
    """Row-at-a-time transforms of one batch (names the failing row and column)."""
    columns = list(zip(plan.columns, plan.source_index, strict=True))
    rows: list[list[object]] = []
    for n, row in enumerate(batch, first_row):
        try:
            rows.append([fn(row[idx]) for fn, idx in columns])
        except transforms.InvalidValueError as exc:
            raise _invalid(exc, n) from None
    return rows


# A spooled batch (securexport.spool): its rows' output text, with what the replay needs to
# drop the rows of classes found too small at the end of the pass.
_RECORD_HEAD = struct.Struct(">IBB")  # rows, has class ids, has entity digests
_U32 = "I"
assert array(_U32).itemsize == 4
_DIGEST = entities.DIGEST_BYTES


@dataclass
class _Batch:
    lengths: array[int]  # characters of each row's text
    class_ids: array[int] | None
    digests: bytes | None  # entities.EntityCollector digests, one per row
    text: bytes  # UTF-8

    def pack(self) -> bytes:
        n = len(self.lengths)
        parts = [
            _RECORD_HEAD.pack(n, self.class_ids is not None, self.digests is not None),
            self.lengths.tobytes(),
        ]
        if self.class_ids is not None:
            parts.append(self.class_ids.tobytes())
        if self.digests is not None:
            parts.append(self.digests)
        parts.append(self.text)
        return b"".join(parts)

    @classmethod
    def unpack(cls, record: bytes) -> _Batch:
        n, has_classes, has_digests = _RECORD_HEAD.unpack_from(record)
        at = _RECORD_HEAD.size

        def take_u32() -> array[int]:
            nonlocal at
            out = array(_U32)
            out.frombytes(record[at : at + 4 * n])
            at += 4 * n
            return out

        lengths = take_u32()
        class_ids = take_u32() if has_classes else None
        digests = None
        if has_digests:
            digests = record[at : at + _DIGEST * n]
            at += _DIGEST * n
        return cls(lengths, class_ids, digests, record[at:])


@dataclass
class PartRead:
    """One part of the rows, read into its spool (the export reads one or two parts)."""

    matching: int
    invalid: int
    spooled: int
    counter_state: tuple[dict[QI, int], dict[QI, int], int] = field(repr=False)
    class_ids: dict[QI, int] = field(repr=False)  # class → its id in this part's spool


@dataclass(frozen=True)
class ReadResult:
    """What the read of the source found; the formatted rows wait in the parts' spools."""

    counts: Counts
    spooled_rows: int  # rows formatted (matching rows less those dropped as invalid)
    parts: list[tuple[Spool, PartRead]] = field(repr=False)  # in output order

    def small_class_ids(self, part: PartRead) -> frozenset[int]:
        """Ids, in ``part``'s spool, of the classes the replay drops (suppress mode)."""
        outcome = self.counts.outcome
        if outcome is None or not outcome.small_classes or outcome.suppressed_classes == 0:
            return frozenset()
        ids = part.class_ids
        return frozenset(ids[q] for q in outcome.small_classes if q in ids)

    def close(self) -> None:
        for spool, _ in self.parts:
            spool.close()


def combine(approval: Approval, parts: Sequence[tuple[Spool, PartRead]]) -> ReadResult:
    """The read of every part, counts combined (:func:`combine_counts`)."""
    counts = combine_counts(approval, [p for _, p in parts])
    return ReadResult(counts, sum(p.spooled for _, p in parts), list(parts))


def _over_cap(approval: Approval) -> PolicyError:
    return PolicyError(
        f"more than row_cap={approval.row_cap} rows match approval {approval.id}; "
        "nothing was exported",
        hint="the data owner must narrow the filters or raise the cap",
    )


def _check_cell_lengths(
    columns: Sequence[list[object]],
    positions: Sequence[int],
    names: Sequence[str],
    rows: tuple[int, int],
    max_cell_chars: int,
) -> None:
    for p in positions:
        if max((len(v) for v in columns[p] if isinstance(v, str)), default=0) > max_cell_chars:
            raise PolicyError(
                f"rows {rows[0]}-{rows[1]}, column {names[p]!r}: a value is longer "
                f"than the cell limit of {max_cell_chars} characters; nothing was exported"
            )


def read_part(
    snapshot: Snapshot,
    plan_: CompiledPlan,
    spool: Spool,
    progress: Any = None,
    collector: entities.EntityCollector | None = None,
    max_cell_chars: int = DEFAULT_LIMITS.max_cell_bytes,
    rows_before: int = 0,
) -> PartRead:
    """Read ``plan_.query``'s rows once: transform, count and format every row.

    Rows stream in the export query's order (entity first); each batch is transformed column
    by column, its classes counted (:class:`~securexport.privacy.EntityRunCounter`), its
    output formatted and sealed into ``spool`` with each row's length and class, so that
    :func:`replay` can drop the classes found too small once every row has been counted.
    A cell longer than ``max_cell_chars`` aborts the export: a recipient's decrypt refuses
    such cells (``Limits.max_cell_bytes``), so it must never be written.  ``rows_before``:
    rows of the parts before this one (for row numbers in errors and the row cap).
    """
    approval = plan_.approval
    names = [c.name for c in approval.columns]
    qi_positions = plan_.qi_positions
    counter = EntityRunCounter()
    track_classes = approval.privacy is not None and approval.privacy.on_violation == "suppress"
    class_ids: dict[QI, int] = {}
    may_suppress_row = any(c.on_invalid == "suppress_row" for c in approval.columns)
    # Only kept values need their text form; every other transform writes str or None.
    keep_positions = [i for i, c in enumerate(approval.columns) if c.transform == "keep"]
    # keep and mask are the only transforms whose output length follows the source value.
    long_positions = [i for i, c in enumerate(approval.columns) if c.transform in ("keep", "mask")]
    csv_out = approval.output_format == "csv"
    matching = invalid = spooled = 0
    for batch in snapshot.stream(plan_.query, batch_size=_BATCH):
        n = len(batch)
        first_row, last_row = rows_before + matching + 1, rows_before + matching + n
        matching += n
        if rows_before + matching > approval.row_cap:
            raise _over_cap(approval)
        columns, entities = _transform_batch(plan_, batch, first_row)
        # Rows with a value dropped by on_invalid = "suppress_row" are not counted in any class.
        if may_suppress_row:
            columns, entities, dropped = _drop_suppressed_rows(columns, entities)
            invalid += dropped
            for _ in range(dropped):
                counter.add_invalid_row()
        count = len(entities)
        qis: list[QI] = (
            list(zip(*(columns[p] for p in qi_positions), strict=True))
            if qi_positions
            else [()] * count
        )
        counter.add_rows(entities, qis)
        ids = _class_ids(class_ids, qis) if track_classes else None
        _check_cell_lengths(columns, long_positions, names, (first_row, last_row), max_cell_chars)
        if csv_out:
            lengths, chunk = _csv_text(columns, keep_positions, last_row)
        else:
            lengths, chunk = _jsonl_text(columns, names)
        digests = b"".join(map(collector.digest_of, entities)) if collector is not None else None
        if count:
            spool.append(_Batch(lengths, ids, digests, chunk.encode("utf-8")).pack())
        spooled += count
        if progress is not None:
            progress.update(n)
    return PartRead(matching, invalid, spooled, counter.state(), class_ids)


# read_part's steps, once per batch (every per-row loop is in C or a comprehension, as above)


def _transform_batch(
    plan_: CompiledPlan, batch: list[Any], first_row: int
) -> tuple[list[list[object]], list[object]]:
    """A batch's output columns, and its entity values: column by column, or row by row when
    a value is invalid (so that the error names the same row and column as ever)."""
    by_source = _source_columns(batch, len(plan_.query.selected))
    all_positions = range(len(plan_.approval.columns))
    try:
        cols = _columns(plan_, by_source, all_positions, plan_.source_index)
        columns = [cols[p] for p in all_positions]
    except transforms.InvalidValueError:
        slow = _transform_rows_slowly(plan_, batch, first_row)
        columns = [list(map(itemgetter(p), slow)) for p in all_positions]
    return columns, by_source[plan_.entity_index]


def _drop_suppressed_rows(
    columns: list[list[object]], entity_values: list[object]
) -> tuple[list[list[object]], list[object], int]:
    """Without the rows holding a value that on_invalid = "suppress_row" dropped:
    (columns, entity values, how many rows were dropped)."""
    marker = transforms.SUPPRESS_ROW
    keep: list[bool] | None = None
    for c in columns:
        if marker in c:
            flags = [v is not marker for v in c]
            keep = flags if keep is None else list(map(and_, keep, flags))
    if keep is None:
        return columns, entity_values, 0
    kept = [list(compress(c, keep)) for c in columns]
    return kept, list(compress(entity_values, keep)), keep.count(False)


def _class_ids(class_ids: dict[QI, int], qis: list[QI]) -> array[int]:
    """Each row's class id in this part's spool; a class seen first gets the next id."""
    got = list(map(class_ids.get, qis))
    if None in got:
        for i, cid in enumerate(got):
            if cid is None:
                got[i] = class_ids.setdefault(qis[i], len(class_ids))
    return array(_U32, got)  # type: ignore[arg-type]


def _csv_text(
    columns: list[list[object]], keep_positions: Sequence[int], last_row: int
) -> tuple[array[int], str]:
    """A batch as CSV rows: (each row's length, the text).  ``columns`` at ``keep_positions``
    are replaced by their text form."""
    to_text = transforms.to_text
    for p in keep_positions:
        try:
            columns[p] = [to_text(v) for v in columns[p]]
        except transforms.InvalidValueError as exc:
            raise _invalid(exc, last_row) from None
    text = io.StringIO()
    # writerow returns what the buffer's write returned: the row's length.
    lengths = array(
        _U32,
        map(csv.writer(text, lineterminator="\r\n").writerow, zip(*columns, strict=True)),
    )
    return lengths, text.getvalue()


def _jsonl_text(columns: list[list[object]], names: Sequence[str]) -> tuple[array[int], str]:
    """A batch as JSON Lines: (each row's length, the text)."""
    lines = [
        json.dumps(
            dict(zip(names, [transforms.to_json_value(v) for v in values], strict=True)),
            ensure_ascii=False,
            separators=(",", ":"),
        )
        + "\n"
        for values in zip(*columns, strict=True)
    ]
    return array(_U32, map(len, lines)), "".join(lines)


def _drop_rows(batch: _Batch, small: frozenset[int]) -> tuple[bytes, int, bytes | None]:
    """The batch's text without the rows of ``small`` classes; (text, rows, digests)."""
    assert batch.class_ids is not None
    keep = [cid not in small for cid in batch.class_ids]
    text = batch.text.decode("utf-8")
    ends = list(accumulate(batch.lengths))
    starts = [0, *ends[:-1]]
    rows = [text[a:b] for a, b in compress(zip(starts, ends, strict=True), keep)]
    digests = None
    if batch.digests is not None:
        d = batch.digests
        digests = b"".join(
            d[i * _DIGEST : (i + 1) * _DIGEST] for i in compress(range(len(keep)), keep)
        )
    return "".join(rows).encode("utf-8"), len(rows), digests


def replay(
    plan_: CompiledPlan,
    result: ReadResult,
    entry: Any,
    progress: Any = None,
    collector: entities.EntityCollector | None = None,
) -> int:
    """Write the spooled batches of every part, in order, into the payload ``entry``,
    dropping the small classes.

    Deflate, AES-256 and the HMAC run in a writer thread (zlib and the AES code release the
    GIL) while the next batch is decrypted and filtered.  Returns the rows written.
    """
    approval = plan_.approval
    written = 0
    sink = _WriterThread(entry)
    try:
        if approval.output_format == "csv":
            header = io.StringIO()
            csv.writer(header, lineterminator="\r\n").writerow([c.name for c in approval.columns])
            sink.write(header.getvalue().encode("utf-8"))
        for spool, part in result.parts:
            small = result.small_class_ids(part)
            for record in spool.replay():
                batch = _Batch.unpack(record)
                count = len(batch.lengths)
                text, digests = batch.text, batch.digests
                if small and batch.class_ids is not None and not small.isdisjoint(batch.class_ids):
                    text, count, digests = _drop_rows(batch, small)
                if text:
                    sink.write(text)
                if collector is not None and digests is not None:
                    collector.add_digests(digests)
                entry.add_rows(count)
                written += count
                if progress is not None:
                    progress.update(len(batch.lengths))
    except BaseException:
        sink.abandon()
        raise
    sink.finish()
    return written
