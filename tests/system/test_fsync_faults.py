"""fsync errors (EIO: a failing disk, or write-back hitting a full one) at every fsync.

Each ``os.fsync`` an export or a decrypt makes is failed in turn.  Each time: exit 7 with a
one-line message, no bundle / output directory and no ``.partial`` left, and the ledger still
sound; an entry committed before the failure is reported as missing its bundle.
"""

from __future__ import annotations

import errno
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from securexport import api
from securexport.errors import FileError
from tests.support.world import World


def _fsync_failing_at(monkeypatch: pytest.MonkeyPatch, fail_at: int | None) -> list[int]:
    """Patch os.fsync: the ``fail_at``-th call (0-based) raises EIO; returns the call log."""
    real = os.fsync
    calls: list[int] = []

    def fsync(fd: Any) -> None:
        calls.append(fd)
        if len(calls) - 1 == fail_at:
            raise OSError(errno.EIO, os.strerror(errno.EIO))
        real(fd)

    monkeypatch.setattr(os, "fsync", fsync)
    return calls


def _count_fsyncs(monkeypatch: pytest.MonkeyPatch, run: Callable[[], object]) -> int:
    calls = _fsync_failing_at(monkeypatch, None)
    run()
    monkeypatch.undo()
    return len(calls)


def _left(root: Path, stem: str) -> list[str]:
    return sorted(p.name for p in root.iterdir() if p.name.startswith(stem))


def test_an_fsync_error_anywhere_in_an_export_is_exit_7_and_leaves_nothing(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    approval = world.write_approval(max_runs=None)
    n = _count_fsyncs(
        monkeypatch,
        lambda: api.export(
            world.exporter, approval, world.source_url, "analyst", world.root / "ok.sxb"
        ),
    )
    assert n >= 3  # the payload, the bundle, the directory after the rename
    for k in range(n):
        out = world.root / f"eio-{k}.sxb"
        before = len(api.ledger_entries(world.exporter))
        _fsync_failing_at(monkeypatch, k)
        with pytest.raises(FileError) as info:
            api.export(world.exporter, approval, world.source_url, "analyst", out)
        monkeypatch.undo()
        assert info.value.exit_code == 7
        message = str(info.value)
        assert "\n" not in message and "Input/output error" in message, message
        assert _left(world.root, f"eio-{k}.") == [], f"fsync #{k}: something was left"
        entries = api.ledger_entries(world.exporter)
        # Either nothing was logged, or the entry's bundle is reported missing (an orphan).
        assert len(entries) in (before, before + 1)
        if len(entries) == before + 1:
            assert entries[-1].bundle == "missing"
        api.ledger_verify(world.exporter)  # raises unless the ledger verifies
    # Some faults came after the commit (the bundle's own fsyncs), some before (the payload's).
    states = [e.bundle for e in api.ledger_entries(world.exporter)]
    assert states[0] == "written" and "missing" in states
    assert len(states) - 1 < n  # and at least one fault came before anything was logged


def test_an_fsync_error_anywhere_in_a_decrypt_is_exit_7_and_leaves_nothing(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    bundle = world.export().bundle
    n = _count_fsyncs(
        monkeypatch, lambda: api.decrypt(world.recipient, bundle, "force", world.root / "ok")
    )
    assert n >= 2  # each plaintext file, the directory after the rename
    for k in range(n):
        out = world.root / f"plain-{k}"
        _fsync_failing_at(monkeypatch, k)
        with pytest.raises(FileError) as info:
            api.decrypt(world.recipient, bundle, "force", out)
        monkeypatch.undo()
        assert info.value.exit_code == 7
        assert "Input/output error" in str(info.value)
        assert _left(world.root, f"plain-{k}") == [], f"fsync #{k}: something was left"
