"""Approvals: strict parsing and validation (pure: bytes in, typed object out).

The model below is the contract every other module reads; the parser fills it.  See
DESIGN.md §5 and docs/formats.md.  Nothing here touches the network, the disk or a database.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import Decimal
from typing import Literal

from securexport._crypto.sshkey import SshPublicKey

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


class _NotImplementedParser(NotImplementedError):
    pass


def parse_approval(raw: bytes) -> Approval:
    """Parse and validate approval bytes strictly; raise ApprovalError with key path and line."""
    raise _NotImplementedParser("approval parser not written yet")


def approval_template() -> str:
    """A commented example approval for ``approval init``."""
    raise _NotImplementedParser("approval template not written yet")
