"""G. Faults: kill -9, SIGINT and SIGTERM at each export stage, disk full, read-only output,
two exports racing for one name, and what the next run says about leftovers.

Everything runs the real CLI in a subprocess (tests/support/cli_process.py), whose Environment
the suite builds: ``SECUREXPORT_TEST_CRASH_AT`` names the stage and
``SECUREXPORT_TEST_CRASH_SIGNAL`` the signal the process sends itself there (both read by the
suite's launcher, never by the product).  Decrypt has no stages: a tiny driver wraps one
extraction step, in the child only, to signal mid-extract.
"""

from __future__ import annotations

import os
import resource
import subprocess
import sys
from pathlib import Path

import pytest

from securexport.environment import STAGES
from tests.adversarial.harness import REPO, Ctx, run_case, subprocess_env
from tests.adversarial.registry import Case, RecordProperty, case, params
from tests.support.cli import CLI_PROCESS, CRASH_SIGNAL_VAR, CRASH_VAR

DRIVER = """
import os, signal, sys
stage, sig = sys.argv[1], getattr(signal, sys.argv[2])
import securexport.bundle.container as container
original = container._extract_one
def extract_one(*args, **kwargs):
    original(*args, **kwargs)
    if stage == "during-extract":
        os.kill(os.getpid(), sig)
container._extract_one = extract_one
from securexport.cli import main
from tests.support.cli import suite_environment
main(sys.argv[3:], environment=suite_environment)
"""


def _run(
    ctx: Ctx,
    args: list[str],
    role: str,
    *,
    stage: str | None = None,
    sig: str | None = None,
    fsize: int | None = None,
) -> subprocess.CompletedProcess[str]:
    env = subprocess_env(ctx, role)

    def limit() -> None:
        if fsize is not None:
            resource.setrlimit(resource.RLIMIT_FSIZE, (fsize, fsize))

    if stage == "during-extract":
        cmd = [sys.executable, "-c", DRIVER, stage, sig or "SIGKILL", *args]
    else:
        if stage:
            env[CRASH_VAR] = stage
            env[CRASH_SIGNAL_VAR] = sig or "SIGKILL"
        cmd = [*CLI_PROCESS, *args]
    proc = subprocess.run(
        cmd,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        cwd=REPO,
        preexec_fn=limit,
    )
    ctx.streams += [proc.stdout, proc.stderr]
    ctx.messages.append(proc.stderr)
    return proc


def _export_args(ctx: Ctx, out: Path) -> list[str]:
    return [
        "export",
        str(ctx.approval),
        "--source",
        ctx.world.source_url,
        "--as",
        "analyst",
        "-o",
        str(out),
    ]


def _partials(out: Path) -> list[Path]:
    return sorted(
        p
        for p in out.parent.iterdir()
        if p.name.startswith(out.name) and p.name.endswith(".partial")
    )


def _register_kill(stage: str) -> None:
    @case(
        "G",
        f"kill9-export-{stage}",
        -9,
        f"kill -9 at export stage `{stage}`: no bundle, no plaintext in any file left; the next "
        "run names and removes the partials and writes a bundle that verifies",
        via="subprocess",
    )
    def run(ctx: Ctx) -> int:
        out = ctx.root / "killed.sxb"
        ctx.outputs.append(out)
        code = _run(ctx, _export_args(ctx, out), "exporter", stage=stage, sig="SIGKILL").returncode
        # Right after the kill, the full scan: no final output, no partial but the killed run's
        # own, and the canary in no file at all (partials, spools, ledger, homes) nor any stream.
        leftovers = _partials(out)
        ctx.allow_partials.update(leftovers)
        problems = ctx.leftovers()
        assert not problems, f"after kill -9 at {stage}: {problems}"
        _recover(ctx, out, leftovers)
        # The new bundle is the asked-for output of a successful run; everything else is held to
        # the usual end-of-case scan, with no .partial allowed any more.
        ctx.outputs.remove(out)
        ctx.allow_partials.clear()
        return code


def _recover(ctx: Ctx, out: Path, leftovers: list[Path]) -> None:
    """The next run names each leftover partial as it removes it, exports, and verifies."""
    again = _run(ctx, _export_args(ctx, out), "exporter")
    assert again.returncode == 0, again.stderr
    for path in leftovers:
        assert f"removed {path}, left by an interrupted run" in again.stderr, again.stderr
    assert not _partials(out), _partials(out)
    assert ctx.verify(out) == 0, ctx.messages


def _register_signal(stage: str, sig: str) -> None:
    @case(
        "G",
        f"{sig.lower()}-export-{stage}",
        130,
        f"{sig} at export stage `{stage}`: exit 130, no bundle and no .partial",
        via="subprocess",
        message="error: interrupted; partial output removed",
    )
    def run(ctx: Ctx) -> int:
        out = ctx.root / "interrupted.sxb"
        ctx.outputs.append(out)
        return _run(ctx, _export_args(ctx, out), "exporter", stage=stage, sig=sig).returncode


for _stage in STAGES:
    _register_kill(_stage)
    _register_signal(_stage, "SIGINT")
    _register_signal(_stage, "SIGTERM")


@case(
    "G",
    "sigint-decrypt-during-extract",
    130,
    "SIGINT while decrypting: no DIR and no DIR.partial",
    via="subprocess",
    message="error: interrupted; partial output removed",
)
def _decrypt_int(ctx: Ctx) -> int:
    args = ["decrypt", str(ctx.bundle), "--as", "force", "-o", str(ctx.out)]
    return _run(ctx, args, "recipient", stage="during-extract", sig="SIGINT").returncode


def _bulk_up(ctx: Ctx) -> None:
    """Make the payload larger than the limit below (the ledger's WAL index needs 32 KiB)."""
    import sqlite3

    from tests.adversarial.harness import CANARY

    with sqlite3.connect(ctx.world.db_path) as conn:
        conn.execute("UPDATE offenders SET prison = ? || hex(randomblob(300))", (CANARY,))
    conn.close()


@case(
    "G",
    "disk-full-export",
    7,
    "export under RLIMIT_FSIZE = 48 KiB (a full disk) while writing the payload: exit 7, no partial",
    via="subprocess",
    message="cannot write the scratch file: no space left on the device",
)
def _full_export(ctx: Ctx) -> int:
    _bulk_up(ctx)
    ctx.bundle  # noqa: B018 - the ledger exists already
    out = ctx.root / "full.sxb"
    ctx.outputs.append(out)
    return _run(ctx, _export_args(ctx, out), "exporter", fsize=48 << 10).returncode


@case(
    "G",
    "disk-full-ledger",
    7,
    "export under RLIMIT_FSIZE = 8 KiB, failing as the ledger opens",
    via="subprocess",
    # sqlite reports the file size limit as a generic I/O error
    message=r"cannot open the ledger \S+/ledger\.db: disk I/O error \(is the disk full or failing\?\)",
)
def _full_ledger(ctx: Ctx) -> int:
    ctx.bundle  # noqa: B018
    out = ctx.root / "full.sxb"
    ctx.outputs.append(out)
    return _run(ctx, _export_args(ctx, out), "exporter", fsize=8192).returncode


@case(
    "G",
    "disk-full-decrypt",
    7,
    "decrypt under RLIMIT_FSIZE = 4 KiB: exit 7, no DIR, no DIR.partial",
    via="subprocess",
    message=r"cannot write \S+/extract\.partial/data/offenders\.csv: no space left on the device",
)
def _full_decrypt(ctx: Ctx) -> int:
    args = ["decrypt", str(ctx.bundle), "--as", "force", "-o", str(ctx.out)]
    return _run(ctx, args, "recipient", fsize=4096).returncode


@case(
    "G",
    "read-only-output-dir",
    7,
    "export into a directory that cannot be written",
    via="subprocess",
    message=r"cannot create a scratch file in \S+: Permission denied",
)
def _read_only(ctx: Ctx) -> int:
    if os.geteuid() == 0:
        target = Path("/sys") / "securexport-adversarial.sxb"  # not writable even by root
    else:
        locked = ctx.root / "locked"
        locked.mkdir(mode=0o500)
        ctx.planted.add(locked)
        target = locked / "out.sxb"
    code = _run(ctx, _export_args(ctx, target), "exporter").returncode
    assert not target.exists()
    return code


@case(
    "G",
    "concurrent-exports-one-name",
    7,
    "two exports race for one output name: one wins, the other fails cleanly",
    via="subprocess",
    # the loser finds the winner's .partial being written, or the finished bundle
    message=r"race\.sxb(\.partial is being written by another run| exists already)",
)
def _race(ctx: Ctx) -> int:
    ctx.bundle  # noqa: B018
    out = ctx.root / "race.sxb"
    env = subprocess_env(ctx, "exporter")
    cmd = [*CLI_PROCESS, *_export_args(ctx, out)]
    procs = [
        subprocess.Popen(
            cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=REPO
        )
        for _ in range(2)
    ]
    results = [(p.wait(timeout=120), *p.communicate()) for p in procs]
    for _, stdout, stderr in results:
        ctx.streams += [stdout, stderr]
    codes = sorted(r[0] for r in results)
    assert codes[0] == 0 and out.exists(), results
    loser = next(r for r in results if r[0] != 0)
    ctx.messages.append(loser[2])
    ctx.allow_output = True
    assert not _partials(out)
    return codes[1]


@pytest.mark.parametrize("case", params("G"))
def test_case(case: Case, ctx: Ctx, record_property: RecordProperty) -> None:
    record_property("adversarial_case", case.id)
    run_case(case, ctx)


def test_sigkill_and_signals_cover_every_stage() -> None:
    from tests.adversarial.registry import CASES

    for stage in STAGES:
        for kind in ("kill9", "sigint", "sigterm"):
            assert f"G-{kind}-export-{stage}" in CASES, (kind, stage)
