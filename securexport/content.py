"""Holding decrypted plaintext against its approval (DESIGN.md §8.4).

A recipient checks that the exporter put no more into the payload than was approved: the header
is exactly the approved column names, the row count is the manifest's (never above the row cap),
every cell is something its transform can produce, and k holds.  Errors name a row number and a
column, never a value.
"""

from __future__ import annotations

import csv
import json
from collections import defaultdict
from collections.abc import Callable, Iterator
from pathlib import Path

from securexport import transforms
from securexport.approval import Approval
from securexport.errors import VerificationError
from securexport.limits import DEFAULT_LIMITS

Row = list[str | None]


def _csv_rows(path: Path) -> Iterator[Row]:
    # The csv module refuses fields above 128 KiB by default, but an export writes cells up to
    # Limits.max_cell_bytes: without this a legitimate bundle with a large cell would not open.
    if csv.field_size_limit() < DEFAULT_LIMITS.max_cell_bytes:
        csv.field_size_limit(DEFAULT_LIMITS.max_cell_bytes)
    with open(path, encoding="utf-8", newline="") as fh:
        for row in csv.reader(fh, strict=True):
            yield [cell if cell != "" else None for cell in row]


def _jsonl_rows(path: Path, names: list[str]) -> Iterator[Row]:
    yield list(names)  # JSONL has no header line: object keys are checked per row
    with open(path, encoding="utf-8") as fh:
        for number, line in enumerate(fh, start=1):
            try:
                obj = json.loads(line)
            except json.JSONDecodeError as exc:
                raise VerificationError(f"payload row {number} is not valid JSON") from exc
            if not isinstance(obj, dict) or list(obj) != names:
                raise VerificationError(
                    f"payload row {number} does not have exactly the approved columns"
                )
            yield [
                None if v is None else (v if isinstance(v, str) else json.dumps(v))
                for v in obj.values()
            ]


def check_plaintext(path: Path, approval: Approval, expected_rows: int) -> dict[str, object]:
    """Check one decrypted data file; return what was checked (rows, k recomputed)."""
    names = [col.name for col in approval.columns]
    validators: list[Callable[[str | None], bool]] = [
        transforms.cell_validator(col) for col in approval.columns
    ]
    rows = _csv_rows(path) if approval.output_format == "csv" else _jsonl_rows(path, names)
    try:
        header = next(rows)
    except StopIteration:
        raise VerificationError("payload file is empty: no header row") from None
    except (csv.Error, UnicodeDecodeError) as exc:
        raise VerificationError("payload file is not valid UTF-8 CSV") from exc
    if header != names:
        raise VerificationError("payload header is not exactly the approved column names")

    privacy = approval.privacy
    qi_index = [names.index(q) for q in privacy.quasi_identifiers] if privacy else []
    entity_col = next(
        (
            i
            for i, col in enumerate(approval.columns)
            if col.source == approval.entity and col.transform in ("pseudonym", "keep")
        ),
        None,
    )
    # Class -> distinct entities (when the entity is in the output) or row count (otherwise,
    # which can only overstate k: documented in docs/formats.md).
    class_entities: dict[tuple[str | None, ...], set[str | None]] = defaultdict(set)
    class_rows: dict[tuple[str | None, ...], int] = defaultdict(int)

    count = 0
    try:
        for count, row in enumerate(rows, start=1):
            if count > expected_rows or count > approval.row_cap:
                raise VerificationError(
                    "payload holds more rows than the manifest states or the approval allows"
                )
            if len(row) != len(names):
                raise VerificationError(
                    f"payload row {count} has {len(row)} fields, expected {len(names)}"
                )
            for index, (cell, ok) in enumerate(zip(row, validators, strict=True)):
                if not ok(cell):
                    raise VerificationError(
                        f"payload row {count}, column {names[index]!r}: value is not what "
                        f"transform {approval.columns[index].transform} produces"
                    )
            if privacy:
                key = tuple(row[i] for i in qi_index)
                if entity_col is not None:
                    class_entities[key].add(row[entity_col])
                else:
                    class_rows[key] += 1
    except (csv.Error, UnicodeDecodeError) as exc:
        raise VerificationError(f"payload row {count + 1} is not valid UTF-8 CSV") from exc
    if count != expected_rows:
        raise VerificationError(
            f"payload holds {count} rows but the manifest states {expected_rows}"
        )
    k_found: int | None = None
    sizes = [len(m) for m in class_entities.values()] or list(class_rows.values())
    if privacy and sizes:
        k_found = min(sizes)
        if k_found < privacy.k:
            raise VerificationError(
                f"payload breaks k-anonymity: a class of size {k_found} is below k={privacy.k}"
            )
    return {"rows": count, "k_recomputed": k_found, "entity_counted": entity_col is not None}
