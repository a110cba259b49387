"""What the ledger's stores and its facade share: the entry record, the names the tables use,
the DB-API surface the stores need, and the ledger's verification error.

Apart from securexport.ledger.log so that the stores, which build :class:`Entry` rows and check
the stored tree state, need not import the facade that opens them.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol

from securexport.errors import VerificationError

SCHEMA_VERSION = "securexport.ledger/1"
KIND_EXPORT = "export"
BUSY_TIMEOUT_SECONDS = 60.0

# Bundle status (attachments, outside the tree): who committed an entry, and whether its
# bundle was then written.  An entry whose writer is gone and whose bundle was never recorded
# is an orphan: the export was interrupted between the commit and the rename (DESIGN.md §8.3).
WRITER = "writer.json"
BUNDLE_OUTCOME = "bundle.json"  # {"status": "written" | "failed", "at": …}, once per export


class LedgerVerificationError(VerificationError):
    """The ledger failed verification; ``index`` names the first bad entry when there is one."""

    def __init__(self, message: str, *, index: int | None = None, hint: str | None = None) -> None:
        super().__init__(message, hint=hint)
        self.index = index


@dataclass(frozen=True)
class Entry:
    """One logged export.  ``leaf`` is the exact signed manifest bytes (the Merkle leaf data).

    Only ``leaf`` is covered by the tree; the other columns are an index over it, so a
    ``check_entry`` callback must cross-check them against the manifest.
    """

    index: int
    kind: str
    export_id: str
    approval_id: str
    approval_sha256: str
    run: int
    created_at: str
    leaf: bytes
    signature: bytes
    leaf_hash: bytes


class Cursor(Protocol):
    def fetchone(self) -> Any: ...
    def fetchall(self) -> list[Any]: ...
    def fetchmany(self, size: int = ...) -> list[Any]: ...


class Connection(Protocol):
    """What the stores use of a DB-API connection: ``sqlite3.Connection`` or the PostgreSQL
    store's psycopg wrapper."""

    def execute(self, sql: str, parameters: Any = ..., /) -> Cursor: ...
    def executemany(self, sql: str, parameters: Any, /) -> Any: ...
    def close(self) -> None: ...


def first_line(exc: BaseException) -> str:
    """A driver error's first line, the part worth showing the user."""
    lines = str(exc).strip().splitlines()
    first = lines[0] if lines else type(exc).__name__
    # SQLite reports a full disk (or a file size limit) as one of these two.
    if first in ("disk I/O error", "database or disk is full"):
        return f"{first} (is the disk full or failing?)"
    return first
