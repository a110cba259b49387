"""No plaintext is ever written during an export: every byte every process writes is seen.

tests/api/test_exporting.py::test_no_plaintext_on_disk scans the files left after a run; it cannot
see a file that was deleted, never named (O_TMPFILE spools), or written and then overwritten.
Here the export runs under ``strace -f``, which records every write of the process and of any
child it forks (write, pwrite64, writev, pwritev, sendfile, copy_file_range …) with the full
buffer, and every file it creates.  A canary planted in the source rows must appear in none of
those buffers, nor across the boundary of two writes to one file; ``TMPDIR`` and
``SQLITE_TMPDIR`` point at an empty directory that must stay empty.

The same tracer run on ``decrypt`` must find the canary (decrypt writes the plaintext on
purpose), so the detector is shown to work on this very trace format.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from collections import defaultdict
from pathlib import Path

import pytest

from tests.support.cli import CLI_PROCESS, SCRYPT_VAR
from tests.support.world import World

WRITE_CALLS = "write,pwrite64,writev,pwritev,pwritev2,sendfile,sendmsg,sendto,copy_file_range"
# strace -xx prints every byte as \xNN; -y names the file behind each descriptor.
# A nameless file (O_TMPFILE, unlinked) shows as <path>(deleted).
_CALL = re.compile(r"^(?:\[pid\s+)?(\d+)\]?\s*(\w+)\((\d+)(?:<([^>]*)>(?:\(deleted\))?)?,(.*)$")
_ANY_WRITE = re.compile(r"^\d+\s+(?:" + WRITE_CALLS.replace(",", "|") + r")\(")
_BYTES = re.compile(r'"((?:\\x[0-9a-f]{2})*)"')
_CREATE = re.compile(r'open(?:at)?\(.*?"([^"]+)", [^)]*(?:O_CREAT|O_TMPFILE)')


def _strace(argv: list[str], env: dict[str, str], trace: Path) -> subprocess.CompletedProcess[str]:
    if shutil.which("strace") is None:
        pytest.fail("strace is missing: scripts/install-system-deps.sh installs it")
    probe = subprocess.run(
        ["strace", "-f", "-qq", "-e", "trace=none", "true"], capture_output=True, text=True
    )
    if probe.returncode != 0 and "ptrace" in probe.stderr.lower():
        # A sandbox that forbids ptrace (seccomp, gVisor): the tracer cannot run at all here.
        pytest.skip(f"this machine forbids ptrace: {probe.stderr.strip()[:200]}")
    assert probe.returncode == 0, probe.stderr
    cmd = ["strace", "-f", "-qq", "-xx", "-y", "-s", "16777216", "-o", str(trace)]
    cmd += ["-e", f"trace={WRITE_CALLS},open,openat,creat"]
    return subprocess.run(
        cmd + argv, env=env, capture_output=True, text=True, timeout=600, check=False
    )


def _unescape(text: str) -> str:
    """strace -xx escapes every byte of paths too."""
    return re.sub(r"\\x([0-9a-f]{2})", lambda m: chr(int(m.group(1), 16)), text)


def _writes(trace: Path) -> tuple[dict[str, bytearray], list[bytes], list[str]]:
    """(bytes written per file, each single buffer, files created) from an strace log."""
    per_file: dict[str, bytearray] = defaultdict(bytearray)
    buffers: list[bytes] = []
    created: list[str] = []
    with trace.open() as fh:
        for line in fh:
            if (found := _CREATE.search(line)) and "= -1" not in line:
                created.append(_unescape(found.group(1)))
                continue
            call = _CALL.match(line)
            if call is None:
                assert not _ANY_WRITE.match(line), f"unparsed write: {line[:200]}"
                continue
            if call.group(2) not in WRITE_CALLS.split(","):
                continue
            target = _unescape(call.group(4)) if call.group(4) else f"fd {call.group(3)}"
            for chunk in _BYTES.findall(call.group(5)):
                data = bytes.fromhex(chunk.replace("\\x", ""))
                buffers.append(data)
                per_file[target] += data
    return per_file, buffers, created


def _cli(world: World, env_role: str) -> tuple[list[str], dict[str, str]]:
    home = getattr(world, env_role).home.path
    env = {
        k: v for k, v in os.environ.items() if not k.startswith("SECUREXPORT_") or k == SCRYPT_VAR
    }
    env["SECUREXPORT_KEYSTORE"] = "file"
    env["SECUREXPORT_PASSPHRASE_FILE"] = str(getattr(world, env_role).passphrase_file)
    return [*CLI_PROCESS, "--home", str(home)], env


def test_export_writes_no_plaintext_anywhere(world: World, tmp_path: Path) -> None:
    needle, approval = world.plant_canary()
    scratch = tmp_path / "tmpdir"
    scratch.mkdir()
    out = world.root / "traced.sxb"

    argv, env = _cli(world, "exporter")
    env["TMPDIR"] = env["SQLITE_TMPDIR"] = str(scratch)
    argv += ["export", str(approval), "--source", world.source_url, "--as", "analyst"]
    trace = tmp_path / "export.strace"
    done = _strace([*argv, "-o", str(out)], env, trace)
    assert done.returncode == 0, done.stderr
    assert out.exists()

    per_file, buffers, created = _writes(trace)
    assert len(buffers) > 50  # the trace really holds the run's writes
    assert any(str(out) in target for target in per_file)  # … including the bundle's
    leaked = [target for target, data in per_file.items() if needle in data]
    assert not leaked, f"canary written to {leaked}"
    assert not any(needle in b for b in buffers)
    assert needle not in done.stdout.encode() and needle not in done.stderr.encode()
    # Nothing was created in TMPDIR / SQLite's temp directory, and nothing named outside the
    # output directory and the exporter's home (the spool is nameless, beside the output).
    assert list(scratch.iterdir()) == []
    allowed = (str(world.root) + os.sep, str(world.exporter.home.path) + os.sep)
    stray = [
        p
        for p in created
        if p != str(world.root)  # O_TMPFILE names only the directory
        and not p.startswith(allowed)
        and not p.startswith("/dev/")
    ]
    assert not stray, f"files created outside the output directory and home: {stray}"

    # The detector works: decrypt writes the plaintext, and the same parsing finds it.
    argv, env = _cli(world, "recipient")
    trace = tmp_path / "decrypt.strace"
    opened = _strace(
        [*argv, "decrypt", str(out), "--as", "force", "-o", str(world.root / "plain")], env, trace
    )
    assert opened.returncode == 0, opened.stderr
    per_file, _, _ = _writes(trace)
    assert [t for t, data in per_file.items() if needle in data and "offenders.csv" in t]
