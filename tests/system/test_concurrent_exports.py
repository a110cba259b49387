"""Eight exporting processes at once, each running real exports into one ledger.

Not appends of dummy manifests (tests/ledger/test_log.py does those): each process runs
``api.export`` end to end (source read, payload, key file, signed manifest, ledger append,
receipt, rename), all of one approval, so they race for its run numbers.  A process that loses
the race re-signs its manifest for the next free run inside the ledger's transaction; under a
``max_runs`` cap the surplus exports are refused (exit 3) and leave nothing behind.

Afterwards: every export committed once, no gaps, no fork, the full ``ledger verify`` (tree,
checkpoints, each manifest's signature and approval) clean, every bundle verifies with its
receipt, and every entry's bundle is recorded as written.
"""

from __future__ import annotations

import dataclasses
import multiprocessing
import traceback
import uuid
from pathlib import Path
from typing import Any

import pytest

from securexport import api
from securexport.errors import PolicyError
from tests.support.world import World

PROCESSES = 8


def _exporter(world: World, approval: Path, worker: int, count: int, queue: Any) -> None:
    """One exporting process: ``count`` real exports, each reported as (bundle, run) or refusal."""
    outcomes: list[tuple[str, Any]] = []
    try:
        for i in range(count):
            out = world.root / f"w{worker}-{i}.sxb"
            try:
                result = api.export(world.exporter, approval, world.source_url, "analyst", out)
                outcomes.append(("ok", (str(result.bundle), result.run, result.ledger_index)))
            except PolicyError as exc:
                outcomes.append(("refused", (exc.exit_code, str(exc), out.exists())))
    except BaseException:  # reported to the parent, which fails the test with it
        outcomes.append(("crash", traceback.format_exc()))
    queue.put((worker, outcomes))


def _run_concurrently(world: World, approval: Path, per_process: int) -> list[tuple[str, Any]]:
    ctx = multiprocessing.get_context("fork")  # the world (keys, homes) is inherited as is
    queue = ctx.Queue()
    procs = [
        ctx.Process(target=_exporter, args=(world, approval, w, per_process, queue))
        for w in range(PROCESSES)
    ]
    for p in procs:
        p.start()
    results = [queue.get(timeout=600) for _ in procs]
    for p in procs:
        p.join(timeout=60)
    assert [p.exitcode for p in procs] == [0] * PROCESSES
    outcomes = [o for _, outs in sorted(results) for o in outs]
    crashes = [detail for kind, detail in outcomes if kind == "crash"]
    assert not crashes, crashes[0]
    return outcomes


def _check_ledger_and_bundles(world: World, oks: list[tuple[str, int, int]]) -> None:
    entries = api.ledger_entries(world.exporter)
    n = len(oks)
    assert [e.index for e in entries] == list(range(n))  # no gaps
    assert sorted(e.run for e in entries) == list(range(1, n + 1))  # each run once
    assert len({e.export_id for e in entries}) == n
    assert {e.bundle for e in entries} == {"written"}
    # Each process's own view (run, index) is what the ledger holds, and what its bundle says.
    by_index = {e.index: e for e in entries}
    for bundle, run, index in oks:
        assert by_index[index].run == run
        manifest = api.inspect(Path(bundle)).manifest
        assert manifest.run == run
        assert manifest.export_id == by_index[index].export_id
    # The full audit: tree, every checkpoint, every manifest signature and its approval.
    report = api.ledger_verify(world.exporter)
    assert (report.size, report.entries_checked, report.checkpoints_checked) == (n, n, n)
    assert report.missing_bundles == ()
    # Receipts made under contention still prove inclusion, offline (a sample: each costs ~0.1 s).
    for bundle, _run, index in oks[:: max(1, n // 8)]:
        assert api.verify(world.recipient, Path(bundle)).ledger_index == index


def test_8_processes_25_real_exports_each_on_sqlite(world: World) -> None:
    approval = world.write_approval(max_runs=None)
    outcomes = _run_concurrently(world, approval, 25)
    assert [kind for kind, _ in outcomes] == ["ok"] * (PROCESSES * 25)
    _check_ledger_and_bundles(world, [detail for _, detail in outcomes])


def test_concurrent_exports_stop_exactly_at_max_runs(world: World) -> None:
    """8 × 4 attempts against max_runs = 20: exactly 20 bundles; 12 refusals, nothing left."""
    approval = world.write_approval(max_runs=20)
    outcomes = _run_concurrently(world, approval, 4)
    oks = [detail for kind, detail in outcomes if kind == "ok"]
    refused = [detail for kind, detail in outcomes if kind == "refused"]
    assert (len(oks), len(refused)) == (20, 12)
    for exit_code, message, left in refused:
        assert exit_code == 3 and "has used all 20 of its runs" in message and not left
    assert not [p for p in world.root.iterdir() if ".partial" in p.name]
    assert len(list(world.root.glob("w*.sxb"))) == 20
    _check_ledger_and_bundles(world, oks)


@pytest.mark.postgres
def test_8_processes_25_real_exports_each_on_postgres(world: World, postgres_server: Any) -> None:
    url = postgres_server.create_database(f"concurrent_{uuid.uuid4().hex[:12]}")
    world.exporter = dataclasses.replace(world.exporter, ledger_url=url)
    world.ledger_vkey = api.ledger_verifier_key(world.exporter)  # the team ledger's origin
    approval = world.write_approval(max_runs=None)
    outcomes = _run_concurrently(world, approval, 25)
    assert [kind for kind, _ in outcomes] == ["ok"] * (PROCESSES * 25)
    _check_ledger_and_bundles(world, [detail for _, detail in outcomes])


def test_a_lost_run_race_is_re_signed_not_refused(world: World, monkeypatch: Any) -> None:
    """Deterministic version of the race: another export commits run 1 while ours reads."""
    from securexport.policy import authorise as policy

    approval = world.write_approval(max_runs=None)
    real_next_run = policy.next_run
    # Our export believes it is run 1, while run 1 is already logged by someone else.
    world.export(approval)
    monkeypatch.setattr(policy, "next_run", lambda a, used: real_next_run(a, used - 1))
    result = world.export(approval)
    assert result.run == 2
    manifest = api.inspect(result.bundle).manifest
    assert manifest.run == 2  # the signed manifest, re-made for run 2
    api.verify(world.recipient, result.bundle)  # its signature and receipt hold
    assert [e.run for e in api.ledger_entries(world.exporter)] == [1, 2]
    assert api.ledger_verify(world.exporter).entries_checked == 2
