"""securexport.parallel: the export's read split between two processes, same bytes.

PostgreSQL (a shared snapshot by id) is covered in tests/system/test_postgres_export.py; here the
SQLite source, the decisions to stay in one process, and a worker that fails.
"""

from __future__ import annotations

import os
import sqlite3
from pathlib import Path
from typing import Any

import pytest

from securexport import api
from securexport.data import parallel
from securexport.errors import PolicyError
from tests.support.world import World

ONE, TWO = 10**12, 1


def _decrypt(world: World, bundle: Path) -> bytes:
    out = bundle.with_suffix(".out")
    api.decrypt(world.recipient, bundle, "force", out)
    (data,) = (out / "data").iterdir()
    return data.read_bytes()


def _export(
    world: World, approval: Path, processes: int, url: str | None = None
) -> tuple[api.ExportResult, bytes]:
    world.counter += 1
    out = world.root / f"bundle-{world.counter}.sxb"
    result = api.export(
        world.exporter, approval, url or world.source_url, "analyst", out,
        parallel_min_rows=processes,
    )  # fmt: skip
    return result, _decrypt(world, out)


def _reaped(pids: list[int]) -> bool:
    """Every worker we forked has exited and was waited for (no zombie, nothing running).
    (Other children of this test process, such as a database server, do not count.)"""
    for pid in pids:
        try:
            os.waitpid(pid, os.WNOHANG)
        except ChildProcessError:
            continue  # already reaped by securexport
        return False
    return bool(pids)


def test_two_processes_give_the_bytes_of_one(world: World, forks: list[int]) -> None:
    approval = world.write_approval(filters="")
    serial, serial_plain = _export(world, approval, ONE)
    assert forks == []
    split, split_plain = _export(world, approval, TWO)
    assert len(forks) == 1
    assert split_plain == serial_plain
    assert split.manifest["records"] == serial.manifest["records"]
    assert serial.manifest["records"]["suppressed"] > 0  # small classes dropped in both parts
    assert _reaped(forks)


def test_a_failed_worker_is_replaced_by_a_read_here(
    world: World, forks: list[int], monkeypatch: pytest.MonkeyPatch
) -> None:
    approval = world.write_approval(filters="")
    _, serial_plain = _export(world, approval, ONE)

    def crash(*args: Any, **kwargs: Any) -> None:
        os._exit(3)  # dies before reporting anything

    monkeypatch.setattr(parallel, "_run_worker", crash)
    result, plain = _export(world, approval, TWO)
    assert len(forks) == 1
    assert plain == serial_plain
    assert result.rows_written > 100
    assert _reaped(forks)


def test_wal_mode_sqlite_reads_in_one_process(world: World, forks: list[int]) -> None:
    """In WAL mode a writer may commit between the two processes' reads: no split."""
    with sqlite3.connect(world.db_path) as conn:
        assert conn.execute("PRAGMA journal_mode=WAL").fetchone()[0] == "wal"
    conn.close()
    approval = world.write_approval()
    result, _ = _export(world, approval, TWO)
    assert forks == []
    assert result.rows_written > 100


def test_a_failing_first_part_stops_the_worker(world: World, forks: list[int]) -> None:
    approval = world.write_approval(filters="", row_cap=10)
    with pytest.raises(PolicyError, match="row_cap=10"):
        _export(world, approval, TWO)
    assert len(forks) == 1
    assert _reaped(forks)
    assert not list(world.root.glob("*.partial"))


def test_row_cap_counts_both_parts(world: World) -> None:
    """Each part is under the cap, together they are over it: refused."""
    approval = world.write_approval(filters="")
    serial, _ = _export(world, approval, ONE)
    cap = serial.matching_rows - 1
    capped = world.write_approval(filters="", row_cap=cap)
    with pytest.raises(PolicyError, match=f"row_cap={cap}"):
        _export(world, capped, TWO)
    exact = world.write_approval(filters="", row_cap=serial.matching_rows)
    result, _ = _export(world, exact, TWO)
    assert result.matching_rows == serial.matching_rows


def _with_null_entities(world: World) -> str:
    """A copy of the world's table where every 40th row has a NULL entity."""
    db = world.root / "null-entities.db"
    with sqlite3.connect(db) as conn:
        conn.execute("ATTACH DATABASE ? AS src", (str(world.db_path),))
        conn.execute("CREATE TABLE offenders AS SELECT * FROM src.offenders")
        conn.execute("UPDATE offenders SET offender_id = NULL WHERE rowid % 40 = 0")
        conn.execute("CREATE INDEX offenders_offender_id ON offenders (offender_id)")
    conn.close()
    return f"sqlite:///{db}"


def test_null_entities_keep_their_place(world: World, forks: list[int]) -> None:
    """NULL entities are a part of their own, first on SQLite, as in one process."""
    url = _with_null_entities(world)
    approval = world.write_approval(filters="")
    serial, serial_plain = _export(world, approval, ONE, url)
    split, split_plain = _export(world, approval, TWO, url)
    assert len(forks) == 1
    assert split_plain == serial_plain
    assert split.manifest["records"] == serial.manifest["records"]
    first_rows = serial_plain.split(b"\r\n")[1:4]
    assert all(row.startswith(b",") for row in first_rows)  # NULL pseudonym: empty, first
    report_one = api.plan(world.owner, approval, url, parallel_min_rows=ONE)
    report_two = api.plan(world.owner, approval, url, parallel_min_rows=TWO)
    assert report_one == report_two
    assert report_two.written_rows == serial.rows_written


def test_a_worker_dies_with_its_parent(tmp_path: Path) -> None:
    """PR_SET_PDEATHSIG: a worker whose parent is killed (kill -9) does not read on alone."""
    import signal
    import time

    pid_file = tmp_path / "worker.pid"
    parent = os.fork()
    if parent == 0:  # the "export": forks a worker like parallel.start, then waits
        worker = os.fork()
        if worker == 0:
            parallel._die_with_parent()
            pid_file.write_text(str(os.getpid()))
            time.sleep(60)
            os._exit(0)
        time.sleep(60)
        os._exit(0)
    deadline = time.monotonic() + 10
    while not pid_file.exists() or not pid_file.read_text():
        assert time.monotonic() < deadline
        time.sleep(0.01)
    worker = int(pid_file.read_text())
    os.kill(parent, signal.SIGKILL)
    os.waitpid(parent, 0)
    deadline = time.monotonic() + 10
    while Path(f"/proc/{worker}").exists() and "Z" not in _state(worker):
        assert time.monotonic() < deadline, "the worker outlived its parent"
        time.sleep(0.01)


def _state(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return "Z"


def test_spools_hold_no_plaintext(
    world: World, forks: list[int], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Every spool, this process's and the worker's, is read back from disk before it is
    replayed: a canary from the source is in none of them, yet in the decrypted payload."""
    import hashlib

    from securexport.data.spool import Spool

    canary = "CANARY-" + hashlib.sha256(os.urandom(16)).hexdigest()[:20]
    with sqlite3.connect(world.db_path) as conn:
        conn.execute("UPDATE offenders SET notes = ?, full_name = ?", (canary, canary))
    conn.close()
    columns = (
        '[[column]]\nname = "notes"\nsource = "notes"\ntransform = "keep"\nrole = "sensitive"\n'
        '[[column]]\nname = "name"\nsource = "full_name"\ntransform = "keep"\nrole = "sensitive"\n'
    )
    approval = world.write_approval(columns=columns, privacy="", pseudonym=False, filters="")
    on_disk: list[int] = []
    replay = Spool.replay

    def read_the_disk_then_replay(self: Spool) -> Any:
        self.flush()
        fd = self._file.fileno()
        data = os.pread(fd, os.fstat(fd).st_size, 0)
        assert canary.encode() not in data
        on_disk.append(len(data))
        return replay(self)

    monkeypatch.setattr(Spool, "replay", read_the_disk_then_replay)
    result, plain = _export(world, approval, TWO)
    assert len(forks) == 1
    assert len(on_disk) == 3 and sum(1 for n in on_disk if n > 10_000) == 2  # both halves
    assert plain.count(canary.encode()) == 2 * result.rows_written
