"""Reading an export's rows in two processes, one snapshot, identical output.

The read is CPU-bound Python (transforms, HMACs, counting, CSV), so on a machine with two or
more cores a large export splits its rows at an entity value near the middle of the table:
this process reads the entities before it (and the rows with a NULL entity, a range of their
own), a forked worker process the rest, each part into its own encrypted spool
(:mod:`securexport.spool`).  Concatenated, the parts are exactly the rows of the one-process
query in the same order, and since an entity lies wholly in one part, the class sizes of the
parts add up (:func:`securexport.pipeline.combine`).  ``approval plan`` counts the same way.

Both processes read the same data: on PostgreSQL the worker opens this process's snapshot
by id (``pg_export_snapshot`` / ``SET TRANSACTION SNAPSHOT``; not on a hot standby, which
cannot export one); on SQLite only outside WAL mode, where this process's open read
transaction blocks every writer until the worker has read.  Otherwise, for small tables, for an entity column that is neither text nor integer,
or with one core, the export reads in one process.

The worker is forked before any other thread starts (the caller's background key unlock
starts after :func:`start`), shares nothing it writes with this process but its spool file,
dies with this process (``PR_SET_PDEATHSIG``) and always leaves through ``os._exit``.  If it
fails in any way, this process reads its part again itself: errors then name the same rows
as a one-process read would, and a worker that crashed costs only time.
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
import pickle
import signal
import sys
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any, Literal, TypeVar

from securexport.data import entities, pipeline
from securexport.data.source import EntityPart, Snapshot, Source, build_query
from securexport.data.spool import Spool

_T = TypeVar("_T")
MIN_ROWS = 200_000  # below this a second process costs more than it saves
_SPLIT_TYPES = frozenset({"text", "integer"})  # entity types compared alike in SQL and order


@dataclass
class _Worker:
    pid: int
    result_fd: int
    spool: Spool | None
    plan: pipeline.CompiledPlan
    peak_kb: int = 0  # the worker's own peak RSS, as it reported it

    def kill(self) -> None:
        with contextlib.suppress(OSError):
            os.kill(self.pid, signal.SIGKILL)
        self._reap()

    def _reap(self) -> None:
        with contextlib.suppress(OSError):
            os.close(self.result_fd)
        with contextlib.suppress(ChildProcessError, OSError):
            os.waitpid(self.pid, 0)

    def result(self) -> pipeline.PartRead | None:
        """The worker's part, or None if it failed (the caller then reads it itself)."""
        chunks = []
        try:
            while chunk := os.read(self.result_fd, 1 << 20):
                chunks.append(chunk)
        except OSError:
            chunks = []
        self._reap()
        try:
            message = pickle.loads(b"".join(chunks))  # noqa: S301 - our own child's bytes
        except Exception:  # noqa: BLE001 - a crashed worker; read the part here instead
            return None
        if not isinstance(message, tuple) or message[0] != "ok":
            return None
        _, part, records, spooled_bytes, peak_kb = message
        if self.spool is not None:
            self.spool.adopt(int(records), int(spooled_bytes))
        self.peak_kb = int(peak_kb)
        return part if isinstance(part, pipeline.PartRead) else None


def _die_with_parent(parent: int | None = None) -> None:
    """SIGKILL this process when its parent dies (Linux); leave at once if it already has."""
    if sys.platform.startswith("linux"):
        import ctypes

        pr_set_pdeathsig = 1
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(pr_set_pdeathsig, signal.SIGKILL, 0, 0, 0)
    if parent is not None and os.getppid() != parent:  # it died before prctl took effect
        os._exit(1)


def _peak_rss_kb() -> int:
    with contextlib.suppress(OSError), open("/proc/self/status") as fh:
        for line in fh:
            if line.startswith("VmHWM:"):
                return int(line.split()[1])
    return 0


def _run_worker(
    parent: int,
    write_fd: int,
    source: Source,
    shared: str | None,
    plan: pipeline.CompiledPlan,
    spool: Spool | None,
    collector: entities.EntityCollector | None,
    max_cell_chars: int,
) -> None:
    """In the forked child: read (or only count) the second part, report, leave without
    cleanup."""
    message: tuple[Any, ...] = ("failed",)
    try:
        _die_with_parent(parent)
        signal.signal(signal.SIGINT, signal.SIG_IGN)  # the parent decides, and kills us
        with source.snapshot(shared) as snapshot:
            if spool is None:
                part = pipeline.count_part(snapshot, plan)
            else:
                part = pipeline.read_part(snapshot, plan, spool, None, collector, max_cell_chars)
        records, nbytes = 0, 0
        if spool is not None:
            spool.flush()
            records, nbytes = len(spool), spool.bytes
        message = ("ok", part, records, nbytes, _peak_rss_kb())
    except BaseException:  # noqa: BLE001, S110 - reported as a failure; the parent re-reads
        pass
    try:
        data = pickle.dumps(message, protocol=pickle.HIGHEST_PROTOCOL)
        view = memoryview(data)
        while view:
            view = view[os.write(write_fd, view) :]
    finally:
        os._exit(0)


@dataclass(frozen=True)
class _Layout:
    """The parts of a split read, in output order: ``before`` (read here), ``worker`` (read
    by the worker), ``after`` (read here, once the worker's part is in); ``shared``: the
    snapshot id the worker opens (PostgreSQL)."""

    before: list[pipeline.CompiledPlan]
    worker: pipeline.CompiledPlan
    after: list[pipeline.CompiledPlan]
    shared: str | None


def _layout(
    snapshot: Snapshot,
    plan: pipeline.CompiledPlan,
    live: dict[str, str],
    run_date: date,
    min_rows: int,
    counting: bool,
) -> _Layout | None:
    """How to split the read, or None when it should stay in one process.

    Entities before the middle one are read here, the rest by the worker; NULL entities form
    a third part (NULL sorts first on SQLite, last on PostgreSQL), read here: ``x IS NULL OR
    x < s`` would make SQLite scan the whole index instead of a range.
    """
    approval = plan.approval
    if not hasattr(os, "fork") or len(os.sched_getaffinity(0)) < 2:
        return None
    if live.get(approval.entity) not in _SPLIT_TYPES:
        return None
    driver = snapshot.driver
    if driver == "sqlite" and not snapshot.sqlite_stable_for_readers():
        return None
    total = snapshot.table_rows(approval.dataset)
    if total < max(min_rows, 2):
        return None
    split = snapshot.entity_split(approval.dataset, approval.entity, total // 2)
    if split is None or isinstance(split, bool) or not isinstance(split, str | int):
        return None
    shared = snapshot.share()
    if driver == "postgresql" and shared is None:
        return None  # a hot standby: the worker could not see this snapshot
    needed = sorted({approval.columns[p].source for p in plan.pass1_positions})

    def part(kind: Literal["null", "below", "from"]) -> pipeline.CompiledPlan:
        query = build_query(
            approval,
            live,
            run_date,
            limit=approval.row_cap + 1,
            count_sources=needed if counting else None,
            entity_part=EntityPart(kind, split),
        )
        changed = {"count_query": query} if counting else {"query": query}
        return dataclasses.replace(plan, **changed)  # type: ignore[arg-type]

    if driver == "sqlite":
        return _Layout([part("null"), part("below")], part("from"), [], None)
    return _Layout([part("below")], part("from"), [part("null")], shared)


@dataclass
class ParallelRead:
    """A started read: :meth:`finish` reads this process's parts and collects the worker's."""

    snapshot: Snapshot
    plan: pipeline.CompiledPlan
    spool_dir: Path
    worker: _Worker | None
    layout: _Layout | None
    collector: entities.EntityCollector | None
    max_cell_chars: int
    worker_peak_kb: int = 0

    def _parts(
        self,
        read: Callable[[pipeline.CompiledPlan, int], _T],
        matching: Callable[[_T], int],
        progress: Any,
    ) -> list[_T]:
        """Every part in output order: ``read(plan, rows_before)`` here, the worker's part
        from the worker (or, if it failed, read here too)."""
        layout = self.layout
        if layout is None:
            return [read(self.plan, 0)]
        done: list[_T] = []
        rows = 0
        for plan in layout.before:
            done.append(read(plan, rows))
            rows += matching(done[-1])
        worker, self.worker = self.worker, None
        assert worker is not None
        got = worker.result()
        self.worker_peak_kb = worker.peak_kb
        if got is None:  # the worker failed: read its part here (errors name the same rows)
            if worker.spool is not None:
                worker.spool.close()
            done.append(read(worker.plan, rows))
        else:
            done.append(self._adopt(worker, got))
            if progress is not None:
                progress.update(got.matching)
        rows += matching(done[-1])
        for plan in layout.after:
            done.append(read(plan, rows))
            rows += matching(done[-1])
        return done

    def _adopt(self, worker: _Worker, part: pipeline.PartRead) -> Any:
        return part if worker.spool is None else (worker.spool, part)

    def finish(self, progress: Any = None) -> pipeline.ReadResult:
        spools: list[Spool] = []

        def read(plan: pipeline.CompiledPlan, rows_before: int) -> tuple[Spool, pipeline.PartRead]:
            spool = Spool(self.spool_dir)
            spools.append(spool)
            part = pipeline.read_part(
                self.snapshot,
                plan,
                spool,
                progress,
                self.collector,
                self.max_cell_chars,
                rows_before=rows_before,
            )
            return spool, part

        try:
            parts = self._parts(read, lambda got: got[1].matching, progress)
            return pipeline.combine(self.plan.approval, parts)
        except BaseException:
            self.abandon()
            for spool in spools:
                spool.close()
            raise

    def finish_count(self, progress: Any = None) -> pipeline.Counts:
        """As :meth:`finish` for ``approval plan``: count the parts, write nothing."""

        def count(plan: pipeline.CompiledPlan, rows_before: int) -> pipeline.PartRead:
            return pipeline.count_part(self.snapshot, plan, progress, rows_before=rows_before)

        try:
            parts = self._parts(count, lambda got: got.matching, progress)
            return pipeline.combine_counts(self.plan.approval, parts)
        except BaseException:
            self.abandon()
            raise

    def abandon(self) -> None:
        if self.worker is not None:
            self.worker.kill()
            if self.worker.spool is not None:
                self.worker.spool.close()
            self.worker = None


def start(
    source: Source,
    snapshot: Snapshot,
    plan: pipeline.CompiledPlan,
    live: dict[str, str],
    run_date: date,
    spool_dir: Path,
    *,
    collector: entities.EntityCollector | None = None,
    max_cell_chars: int,
    min_rows: int = MIN_ROWS,
    counting: bool = False,
) -> ParallelRead:
    """Split the read and fork the worker for its part, when that pays (see module doc).
    Call before starting any thread; then :meth:`ParallelRead.finish` (or, with
    ``counting``, :meth:`ParallelRead.finish_count`)."""
    layout = _layout(snapshot, plan, live, run_date, min_rows, counting)
    if layout is None:
        return ParallelRead(snapshot, plan, spool_dir, None, None, collector, max_cell_chars)
    spool = None if counting else Spool(spool_dir)
    read_fd, write_fd = os.pipe()
    sys.stdout.flush()
    sys.stderr.flush()
    parent = os.getpid()
    pid = os.fork()
    if pid == 0:  # the worker
        os.close(read_fd)
        _run_worker(
            parent, write_fd, source, layout.shared, layout.worker, spool, collector, max_cell_chars
        )
    os.close(write_fd)
    worker = _Worker(pid, read_fd, spool, layout.worker)
    return ParallelRead(snapshot, plan, spool_dir, worker, layout, collector, max_cell_chars)
