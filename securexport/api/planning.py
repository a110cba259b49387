"""The plan: what an export would do, shown to the data owner, writing no data."""

from __future__ import annotations

import os
from dataclasses import dataclass
from datetime import UTC, date
from pathlib import Path
from typing import Any

from securexport.api.approvals import load_for_run
from securexport.data import parallel, pipeline, transforms
from securexport.data.source import open_source
from securexport.environment import Environment
from securexport.errors import PolicyError
from securexport.limits import DEFAULT_LIMITS, Limits
from securexport.policy.approval import Approval, RelativeDate


def _plan_warnings(approval: Approval) -> list[str]:
    warnings: list[str] = []
    qis = set(approval.privacy.quasi_identifiers) if approval.privacy else set()
    for col in approval.columns:
        if (
            col.name not in qis
            and col.role != "sensitive"
            and col.transform not in ("null", "constant")
        ):
            warnings.append(
                f'column {col.name!r} is neither a quasi-identifier nor marked role = "sensitive"'
            )
    identifying = {approval.entity} | {
        c.source
        for c in approval.columns
        if c.role in ("identifier", "direct_identifier") or c.transform == "pseudonym"
    }
    for flt in approval.filters:
        if (
            flt.column in identifying
            and flt.value is not None
            and not isinstance(flt.value, RelativeDate)
        ):
            warnings.append(
                f"filter on identifying column {flt.column!r} compares it with a literal value, "
                "which sits in the clear approval"
            )
    kept_text = [c.name for c in approval.columns if c.transform in ("keep", "mask", "map")]
    if kept_text and approval.output_format == "csv":
        warnings.append(
            f"columns {', '.join(kept_text)} are written as they are: a cell starting with =, +, - "
            "or @ is a spreadsheet formula to Excel; recipients must import the CSV as text"
        )
    days = (approval.expires - approval.not_before).days
    if days > 92:
        warnings.append(f"the approval is valid for {days} days (more than 92)")
    return warnings


@dataclass(frozen=True)
class PlanReport:
    approval_id: str
    approval_sha256: str
    signer: str
    run_date: date
    sql: str
    matching_rows: int
    row_cap: int
    invalid_suppressed_rows: int
    suppressed_rows: int
    written_rows: int
    min_rows: int
    k: int | None
    k_achieved: int | None
    histogram: dict[int, int]
    suppressed_classes: int
    suppressed_fraction: str | None
    verdict: str  # "ok" or the refusal message
    warnings: list[str]

    def to_json(self) -> dict[str, Any]:
        return {
            "approval": {
                "id": self.approval_id,
                "sha256": self.approval_sha256,
                "signer": self.signer,
            },
            "run_date": self.run_date.isoformat(),
            "query": self.sql,
            "records": {
                "matching": self.matching_rows,
                "row_cap": self.row_cap,
                "invalid_suppressed": self.invalid_suppressed_rows,
                "suppressed": self.suppressed_rows,
                "written": self.written_rows,
                "min_rows": self.min_rows,
            },
            "k": self.k,
            "k_achieved": self.k_achieved,
            "class_sizes": {str(size): n for size, n in sorted(self.histogram.items())},
            "suppressed_classes": self.suppressed_classes,
            "suppressed_fraction": self.suppressed_fraction,
            "verdict": self.verdict,
            "warnings": self.warnings,
        }


def plan(
    env: Environment,
    approval_path: Path,
    source_url: str,
    limits: Limits = DEFAULT_LIMITS,
    *,
    parallel_min_rows: int | None = None,
) -> PlanReport:
    """Show the data owner what an export would do, writing no data.

    Large tables are counted by two processes, as :func:`export` reads them.

    Needs no pseudonym key: class sizes do not change under a keyed one-to-one mapping, so a
    throwaway key stands in.  A refusal (row cap, k, min rows) is reported, not raised.
    """
    signed, _raw, _sig = load_for_run(env, approval_path, limits)
    approval = signed.approval
    now = env.now()
    run_date = now.astimezone(UTC).date()
    ctx = transforms.RunContext(
        run_date=run_date, pseudonym_key=os.urandom(32), pseudonym_domain=approval.domain
    )
    with open_source(source_url) as source:
        live = source.table_columns(approval.dataset)
        compiled = pipeline.prepare(approval, live, run_date, ctx)
        query = compiled.query
        verdict = "ok"
        counts = pipeline.Counts(0, 0, None)
        with source.snapshot() as snapshot:
            try:
                counting = parallel.start(
                    source,
                    snapshot,
                    compiled,
                    live,
                    run_date,
                    Path(os.curdir),  # no spool: counting writes nothing
                    max_cell_chars=limits.max_cell_bytes,
                    min_rows=parallel.MIN_ROWS if parallel_min_rows is None else parallel_min_rows,
                    counting=True,
                )
                try:
                    counts = counting.finish_count()
                finally:
                    counting.abandon()
                pipeline.check_counts(approval, counts)
            except PolicyError as exc:
                verdict = exc.message
    outcome = counts.outcome
    warnings = _plan_warnings(approval)
    if now > approval.expires or now < approval.not_before:
        warnings.append("the approval is outside its validity window now")
    return PlanReport(
        approval_id=approval.id,
        approval_sha256=approval.sha256,
        signer=signed.signer_name,
        run_date=run_date,
        sql=query.sql,
        matching_rows=counts.matching,
        row_cap=approval.row_cap,
        invalid_suppressed_rows=counts.invalid_suppressed,
        suppressed_rows=outcome.suppressed_rows - outcome.invalid_rows if outcome else 0,
        written_rows=pipeline.written_rows(counts),
        min_rows=approval.min_rows,
        k=approval.privacy.k if approval.privacy else None,
        k_achieved=outcome.k_achieved if outcome else None,
        histogram=dict(outcome.histogram) if outcome else {},
        suppressed_classes=outcome.suppressed_classes if outcome else 0,
        suppressed_fraction=str(outcome.suppressed_fraction) if outcome else None,
        verdict=verdict,
        warnings=warnings,
    )
