"""The demo database: the synthetic offender-tracking SQLite file the README's tour exports from.

Every value in it is invented (securexport.synthetic); ``securexport demo-db`` calls this.
"""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from securexport import synthetic
from securexport.errors import FileError, UsageError


@dataclass(frozen=True)
class DemoDatabase:
    path: Path
    people: int
    rows: int
    seed: int
    database_id: str

    def to_json(self) -> dict[str, Any]:
        return {
            "path": str(self.path),
            "people": self.people,
            "rows": self.rows,
            "seed": self.seed,
            "database_id": self.database_id,
        }


def make_demo_db(path: Path, people: int = 30000, seed: int = 2026) -> DemoDatabase:
    """Write the synthetic database for ``people`` invented people to ``path``, a new SQLite
    file (an existing one is never replaced).  The same ``people`` and ``seed`` give the same
    rows."""
    if people < 0:
        raise UsageError(f"--people must be 0 or more, not {people}")
    # A dangling symlink too: SQLite would create the file it points to.
    if path.exists() or path.is_symlink():
        raise FileError(f"{path} exists already", hint="choose a new file name")
    try:
        info = synthetic.make_offenders_db(path, people=people, seed=seed)
    except (OSError, sqlite3.Error) as exc:
        raise FileError(f"cannot write {path}: {exc}") from exc
    return DemoDatabase(
        path=path,
        people=int(info["people"]),
        rows=int(info["rows"]),
        seed=seed,
        database_id=str(info["database_id"]),
    )
