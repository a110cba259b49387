"""The data owner's witness mirror: every entry of one log the witness has checked, and the
checkpoints it cosigned (``$SECUREXPORT_HOME/witness/<origin, percent-encoded>.db``, SQLite)."""

from __future__ import annotations

import contextlib
import sqlite3
from collections.abc import Iterator, Mapping
from pathlib import Path

from securexport._crypto import merkle
from securexport.errors import FileError
from securexport.fsutil import ensure_private_dir
from securexport.policy.manifest import Manifest

MIRROR_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS entries (
    idx             INTEGER PRIMARY KEY,
    export_id       TEXT NOT NULL UNIQUE,
    approval_id     TEXT NOT NULL,
    approval_sha256 TEXT NOT NULL,
    created_at      TEXT NOT NULL,
    leaf            BLOB NOT NULL,
    signature       BLOB NOT NULL,
    leaf_hash       BLOB NOT NULL
);
CREATE INDEX IF NOT EXISTS entries_approval ON entries (approval_sha256);
CREATE TABLE IF NOT EXISTS attachments (
    export_id TEXT NOT NULL, name TEXT NOT NULL, data BLOB NOT NULL,
    PRIMARY KEY (export_id, name)
);
CREATE TABLE IF NOT EXISTS checkpoints (
    size INTEGER PRIMARY KEY, root_hash BLOB NOT NULL, note TEXT NOT NULL,
    cosigned_at TEXT NOT NULL
);
"""


class Mirror:
    """Every entry of one log the witness has checked, and the checkpoints it cosigned."""

    def __init__(self, path: Path) -> None:
        ensure_private_dir(path.parent)
        try:
            self.conn = sqlite3.connect(str(path), timeout=60, isolation_level=None)
            self.conn.execute("PRAGMA synchronous = FULL")
            for statement in MIRROR_SCHEMA.split(";"):
                if statement.strip():
                    self.conn.execute(statement)
        except sqlite3.Error as exc:
            raise FileError(f"cannot open the witness mirror {path}: {exc}") from exc
        path.chmod(0o600)

    def close(self) -> None:
        self.conn.close()

    def latest(self) -> tuple[int, bytes, str] | None:
        row = self.conn.execute(
            "SELECT size, root_hash, note FROM checkpoints ORDER BY size DESC LIMIT 1"
        ).fetchone()
        return None if row is None else (int(row[0]), bytes(row[1]), str(row[2]))

    def leaf_hashes(self, limit: int) -> Iterator[bytes]:
        cursor = self.conn.execute(
            "SELECT leaf_hash FROM entries WHERE idx < ? ORDER BY idx", (limit,)
        )
        while rows := cursor.fetchmany(1024):
            for row in rows:
                yield bytes(row[0])

    def leaf_hash(self, index: int) -> bytes | None:
        row = self.conn.execute("SELECT leaf_hash FROM entries WHERE idx = ?", (index,)).fetchone()
        return None if row is None else bytes(row[0])

    def runs(self, approval_sha256: str) -> int:
        row = self.conn.execute(
            "SELECT COUNT(*) FROM entries WHERE approval_sha256 = ?", (approval_sha256,)
        ).fetchone()
        return int(row[0])

    def entry(self, export_id: str) -> tuple[int, bytes, bytes] | None:
        row = self.conn.execute(
            "SELECT idx, leaf, signature FROM entries WHERE export_id = ?", (export_id,)
        ).fetchone()
        return None if row is None else (int(row[0]), bytes(row[1]), bytes(row[2]))

    def export_ids(self) -> list[str]:
        return [str(r[0]) for r in self.conn.execute("SELECT export_id FROM entries ORDER BY idx")]

    def attachment(self, export_id: str, name: str) -> bytes | None:
        row = self.conn.execute(
            "SELECT data FROM attachments WHERE export_id = ? AND name = ?", (export_id, name)
        ).fetchone()
        return None if row is None else bytes(row[0])

    @contextlib.contextmanager
    def transaction(self) -> Iterator[None]:
        self.conn.execute("BEGIN IMMEDIATE")
        try:
            yield
        except BaseException:
            self.conn.execute("ROLLBACK")
            raise
        self.conn.execute("COMMIT")

    def add_entry(
        self,
        index: int,
        manifest: Manifest,
        signature: bytes,
        attachments: Mapping[str, bytes],
    ) -> None:
        """Store one checked entry and its attachments (inside :meth:`transaction`)."""
        self.conn.execute(
            "INSERT INTO entries (idx, export_id, approval_id, approval_sha256, "
            "created_at, leaf, signature, leaf_hash) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            (
                index,
                manifest.export_id,
                manifest.approval_id,
                manifest.approval_sha256,
                manifest.created_at,
                manifest.raw,
                signature,
                merkle.leaf_hash(manifest.raw),
            ),
        )
        for name, data in attachments.items():
            self.conn.execute(
                "INSERT INTO attachments (export_id, name, data) VALUES (?, ?, ?)",
                (manifest.export_id, name, data),
            )

    def add_checkpoint(self, size: int, root_hash: bytes, note: str, cosigned_at: str) -> None:
        """Record a checkpoint this witness cosigned (inside :meth:`transaction`)."""
        self.conn.execute(
            "INSERT OR IGNORE INTO checkpoints (size, root_hash, note, cosigned_at) "
            "VALUES (?, ?, ?, ?)",
            (size, root_hash, note, cosigned_at),
        )
