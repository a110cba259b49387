"""The data path: rows from one snapshot, through the compiled transforms, into the payload.

Two passes over one snapshot: :func:`count_pass` counts matching rows (row cap), entities per
quasi-identifier class (k) and invalid rows; :func:`write_rows` streams the same rows again
into the encrypted entry, dropping suppressed classes.  Memory grows with the number of
classes and entities, never with the row payload.  Errors name a row number and a column,
never a value.
"""

from __future__ import annotations

import csv
import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from securexport import transforms
from securexport.approval import Approval
from securexport.errors import PolicyError
from securexport.privacy import ClassCounter, PrivacyOutcome, evaluate
from securexport.privacy import check as check_privacy
from securexport.source import BuiltQuery, Snapshot


@dataclass
class CompiledPlan:
    approval: Approval
    query: BuiltQuery
    columns: list[Callable[[object], object]]
    source_index: list[int]
    entity_index: int
    qi_positions: list[int]  # positions in approval.columns
    pass1_positions: list[int]  # columns evaluated in the counting pass


def compile_plan(approval: Approval, query: BuiltQuery, ctx: transforms.RunContext) -> CompiledPlan:
    selected = list(query.selected)
    names = [c.name for c in approval.columns]
    qi = [names.index(q) for q in approval.privacy.quasi_identifiers] if approval.privacy else []
    pass1 = sorted(
        set(qi) | {i for i, c in enumerate(approval.columns) if c.on_invalid == "suppress_row"}
    )
    return CompiledPlan(
        approval=approval,
        query=query,
        columns=[transforms.compile_column(c, ctx) for c in approval.columns],
        source_index=[selected.index(c.source) for c in approval.columns],
        entity_index=selected.index(approval.entity),
        qi_positions=qi,
        pass1_positions=pass1,
    )


def _invalid(exc: transforms.InvalidValueError, row_number: int) -> PolicyError:
    return PolicyError(f"row {row_number}: {exc.message}", hint=exc.hint)


@dataclass(frozen=True)
class Counts:
    matching: int
    invalid_suppressed: int
    outcome: PrivacyOutcome | None


def count_pass(snapshot: Snapshot, plan: CompiledPlan, progress: Any = None) -> Counts:
    approval = plan.approval
    counter = ClassCounter()
    matching = 0
    invalid = 0
    for batch in snapshot.stream(plan.query):
        for row in batch:
            matching += 1
            if matching > approval.row_cap:
                raise PolicyError(
                    f"more than row_cap={approval.row_cap} rows match approval {approval.id}; "
                    "nothing was exported",
                    hint="the data owner must narrow the filters or raise the cap",
                )
            values: dict[int, object] = {}
            suppressed = False
            for pos in plan.pass1_positions:
                try:
                    value = plan.columns[pos](row[plan.source_index[pos]])
                except transforms.InvalidValueError as exc:
                    raise _invalid(exc, matching) from None
                if value is transforms.SUPPRESS_ROW:
                    suppressed = True
                    break
                values[pos] = value
            if suppressed:
                invalid += 1
                counter.add_invalid_row()
                continue
            if plan.qi_positions:
                counter.add(tuple(values[p] for p in plan.qi_positions), row[plan.entity_index])
        if progress is not None:
            progress.update(len(batch))
    outcome = evaluate(counter, approval.privacy) if approval.privacy else None
    return Counts(matching=matching, invalid_suppressed=invalid, outcome=outcome)


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


class _CsvSink:
    """csv.writer needs an object with write(); this one forwards to the encrypted entry."""

    def __init__(self, entry: Any) -> None:
        self.write = entry.write


def write_rows(
    snapshot: Snapshot,
    plan_: CompiledPlan,
    outcome: PrivacyOutcome | None,
    entry: Any,
    progress: Any,
) -> int:
    approval = plan_.approval
    names = [c.name for c in approval.columns]
    columns = list(zip(plan_.columns, plan_.source_index, strict=True))
    qi_positions = plan_.qi_positions
    small = outcome.small_classes if outcome is not None else frozenset()
    suppress = (
        bool(small) and approval.privacy is not None and approval.privacy.on_violation == "suppress"
    )
    suppress_marker = transforms.SUPPRESS_ROW
    to_text = transforms.to_text
    written = 0
    row_number = 0
    if approval.output_format == "csv":
        writer = csv.writer(_CsvSink(entry), lineterminator="\r\n")
        writer.writerow(names)
    for batch in snapshot.stream(plan_.query):
        out_batch: list[list[object]] = []
        for row in batch:
            row_number += 1
            try:
                values = [fn(row[idx]) for fn, idx in columns]
            except transforms.InvalidValueError as exc:
                raise _invalid(exc, row_number) from None
            if suppress_marker in values:
                continue
            if suppress and tuple(values[p] for p in qi_positions) in small:
                continue
            out_batch.append(values)
        if approval.output_format == "csv":
            try:
                writer.writerows([[to_text(v) for v in values] for values in out_batch])
            except transforms.InvalidValueError as exc:
                raise _invalid(exc, row_number) from None
        else:
            lines = [
                json.dumps(
                    dict(zip(names, [transforms.to_json_value(v) for v in values], strict=True)),
                    ensure_ascii=False,
                    separators=(",", ":"),
                )
                for values in out_batch
            ]
            if lines:
                entry.write("\n".join(lines) + "\n")
        entry.add_rows(len(out_batch))
        written += len(out_batch)
        if progress is not None:
            progress.update(len(batch))
    return written
