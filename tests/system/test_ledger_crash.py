"""Crash safety: ``kill -9`` at each stage of an export (DESIGN.md §8.2, §8.3).

The CLI runs in a subprocess (tests/support/cli_process.py) with ``SECUREXPORT_TEST_CRASH_AT=<stage>``
(read by the suite's launcher, which passes ``Environment.on_stage``) and dies by SIGKILL there: no ``finally``, no rollback.  After every crash:

- the ledger verifies (an interrupted append leaves no trace; a committed one is complete);
- no bundle exists without its ledger entry, and nothing with the bundle's name exists at all;
- what is left is named ``<out>.partial`` / ``<out>.payload.partial`` and is encrypted;
- the next export to the same name refuses and says why, and after the leftovers are removed it
  succeeds.

A crash after the ledger commit leaves an *orphan*: an entry (shown by ``ledger list`` and
audited by ``ledger verify``) whose bundle was never written.  It means the run died after
logging; it used one run of the approval, so the retry is the next run.
"""

from __future__ import annotations

import os
import signal
import subprocess
import zipfile
from pathlib import Path
from typing import Any

import pytest

from securexport import api
from securexport.environment import STAGES
from securexport.errors import SecurexportError
from tests.support.cli import CLI_PROCESS, CRASH_VAR, SCRYPT_VAR

BEFORE_COMMIT = ("after-count", "after-payload", "after-manifest-sign", "ledger-before-commit")
AFTER_COMMIT = ("after-ledger-commit", "before-rename")


def test_the_stages_are_the_hooks_stages() -> None:
    assert BEFORE_COMMIT + AFTER_COMMIT == STAGES


def cli(
    world: Any, *args: str, crash: str | None = None, ledger_url: str | None = None
) -> subprocess.CompletedProcess[str]:
    """``securexport ARGS`` as the exporter, in a fresh process."""
    env = {
        k: v for k, v in os.environ.items() if not k.startswith("SECUREXPORT_") or k == SCRYPT_VAR
    }
    env["SECUREXPORT_KEYSTORE"] = "file"
    env["SECUREXPORT_PASSPHRASE_FILE"] = str(world.exporter.passphrase_file)
    if crash is not None:
        env[CRASH_VAR] = crash
    argv = [*CLI_PROCESS, "--home", str(world.exporter.home.path)]
    if ledger_url is not None:
        argv += ["--ledger", ledger_url]
    argv += list(args)
    return subprocess.run(argv, env=env, capture_output=True, text=True, timeout=300, check=False)


def run_export(
    world: Any,
    approval: Path,
    out: Path,
    *,
    crash: str | None = None,
    ledger_url: str | None = None,
) -> subprocess.CompletedProcess[str]:
    args = ["export", str(approval), "--source", world.source_url, "--as", "analyst"]
    return cli(world, *args, "-o", str(out), crash=crash, ledger_url=ledger_url)


def leftovers(out: Path) -> list[str]:
    return sorted(p.name for p in out.parent.iterdir() if p.name.startswith(out.name))


def assert_no_bundle_without_its_entry(directory: Path, logged: set[str]) -> None:
    """Every file that opens as a bundle (whatever its name) is in the ledger."""
    for path in directory.iterdir():
        if not path.is_file() or path.name.endswith(".payload.partial"):
            continue
        try:
            export_id = api.inspect(path).manifest.export_id
        except SecurexportError:
            continue  # not a bundle (empty or incomplete .partial, approvals, the database)
        assert export_id in logged, f"{path.name} is a bundle that is not in the ledger"


def assert_payload_encrypted(path: Path) -> None:
    with zipfile.ZipFile(path) as payload:
        infos = payload.infolist()
    assert infos and all(info.flag_bits & 0x1 for info in infos)  # every entry encrypted


def crash_and_recover(world: Any, stage: str, ledger_url: str | None = None) -> None:
    approval = world.write_approval()
    out = world.root / "out.sxb"

    died = run_export(world, approval, out, crash=stage, ledger_url=ledger_url)
    assert died.returncode == -signal.SIGKILL, died.stderr
    assert not out.exists()
    entries = api.ledger_entries(world.exporter)
    committed = stage in AFTER_COMMIT
    assert len(entries) == (1 if committed else 0)
    report = api.ledger_verify(world.exporter)
    assert report.size == len(entries)
    assert_no_bundle_without_its_entry(world.root, {e.export_id for e in entries})

    # The ledger itself says the committed entry's bundle is missing (an orphan).
    assert [e.bundle for e in entries] == (["missing"] if committed else [])
    assert [m.index for m in report.missing_bundles] == ([0] if committed else [])
    listed = cli(world, "ledger", "list", ledger_url=ledger_url)
    assert listed.returncode == 0, listed.stderr
    assert ("bundle missing" in listed.stdout) == committed

    left = leftovers(out)
    if stage == "after-count":
        assert left == []  # nothing was created yet
    else:
        assert left == ["out.sxb.partial", "out.sxb.payload.partial"]
        assert_payload_encrypted(out.with_name("out.sxb.payload.partial"))

    # The next run removes the killed run's partials (no lock holds them), says so, and
    # reports the orphan of this approval; its run stays used.
    done = run_export(world, approval, out, ledger_url=ledger_url)
    assert done.returncode == 0, done.stderr
    for name in left:
        assert f"removed {world.root / name}, left by an interrupted run" in done.stderr
    orphan_warning = "run 1 of approval " in done.stderr and "has no bundle" in done.stderr
    assert orphan_warning == committed, done.stderr
    assert leftovers(out) == ["out.sxb"]
    verdict = api.verify(world.recipient, out)
    # A run that died after logging used its run: the orphan entry stays, the retry is next.
    assert verdict.ledger_index == (1 if committed else 0)
    assert api.inspect(out).manifest.run == (2 if committed else 1)
    entries = api.ledger_entries(world.exporter)
    assert [e.run for e in entries] == ([1, 2] if committed else [1])
    assert [e.bundle for e in entries] == (["missing", "written"] if committed else ["written"])
    assert api.ledger_verify(world.exporter).size == len(entries)
    bundles = {api.inspect(out).manifest.export_id}
    orphans = [e.export_id for e in entries if e.export_id not in bundles]
    assert len(orphans) == (1 if committed else 0)


@pytest.mark.parametrize("stage", STAGES)
def test_kill_9_at_each_stage_of_an_export(world, stage: str) -> None:  # type: ignore[no-untyped-def]
    crash_and_recover(world, stage)


@pytest.mark.postgres
@pytest.mark.parametrize("stage", ["ledger-before-commit", "after-ledger-commit"])
def test_kill_9_around_the_commit_on_postgres(world, postgres_server, stage: str) -> None:  # type: ignore[no-untyped-def]
    """The server rolls back a dead client's transaction and frees its lock."""
    url = postgres_server.create_database(f"crash_{stage.replace('-', '_')}_{os.getpid()}")
    world.exporter.ledger_url = url
    world.ledger_vkey = api.ledger_verifier_key(world.exporter)  # the team ledger's origin
    crash_and_recover(world, stage, ledger_url=url)
    with_lock = run_export(world, world.write_approval(), world.root / "again.sxb", ledger_url=url)
    assert with_lock.returncode == 0, with_lock.stderr
