"""make bench: securexport's data path against the plain tools, measured in one run.

    .venv/bin/python scripts/bench.py [--rows 1000000] [--repeat 3] [--no-postgres]
                                      [--memory-check]

Builds (and caches under bench-output/) a synthetic offender table of about ``--rows`` rows,
sets up an owner, an exporter and a recipient with the default file key store (scrypt log_n
18: each command unlocks its key once, which is part of the fixed cost DESIGN.md §9 talks
about), signs an approval with 5 transforms and a k check over every row, then runs each step
as a fresh child process and reads its peak RSS with ``os.wait4`` (that child and the children
it waited for; for a shell pipeline, the largest of its processes).

The machine's speed drifts by 10-40% from minute to minute (a shared VM), so the core steps
(export, its baseline, plan, verify, decrypt, its baselines) run ``--repeat`` rounds, one of
each step per round, interleaved: each figure is the median of its rounds (the range is
printed beside it; peak RSS is the largest of any round), and each ratio is printed per round
too.

Printed, each next to its baseline measured in the same run:

- export (SQLite, PostgreSQL) vs ``sqlite3 -csv … | 7z a -tzip -mem=AES256 -si`` over the same
  projected columns;
- plan (against the export), verify, decrypt vs ``age -d`` + ``7z x`` (with a plaintext
  identity file, and with the recipient's own passphrase-protected key file), and where
  decrypt's time goes;
- ``securexport --version`` start-up time;
- ``--memory-check``: export and decrypt at --rows and at 5 × --rows, and the peak RSS ratios.

If scripts/bench_ledger.py exists, its output lines are appended.
"""

from __future__ import annotations

import argparse
import dataclasses
import io
import json
import os
import platform
import shlex
import shutil
import statistics
import subprocess
import sys
import time
import zipfile
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

OUT = ROOT / "bench-output"
SX = [str(ROOT / ".venv" / "bin" / "securexport")]
EPISODES_PER_PERSON = 1.24  # synthetic.iter_rows: 80% one row, 16% two, 4% three
PASSWORD = "bench-baseline-password-not-secret"
PROJECTED = ("offender_id", "date_of_birth", "postcode", "conviction_count", "release_date")

COLUMNS = """
[[column]]
name      = "offender"
source    = "offender_id"
transform = "pseudonym"
role      = "identifier"

[[column]]
name        = "birth_year"
source      = "date_of_birth"
transform   = "date_trunc"
granularity = "year"

[[column]]
name       = "district"
source     = "postcode"
transform  = "postcode_trunc"
level      = "area"
on_invalid = "null"

[[column]]
name      = "convictions"
source    = "conviction_count"
transform = "top_code"
max       = 30
role      = "sensitive"

[[column]]
name        = "release_quarter"
source      = "release_date"
transform   = "date_trunc"
granularity = "quarter"

[privacy]
quasi_identifiers = ["birth_year", "district", "release_quarter"]
k = 5
on_violation = "suppress"
max_suppressed_fraction = 0.5
"""


@dataclass
class Measure:
    name: str
    wall: float
    rss_kb: int
    rows: int | None = None
    nbytes: int | None = None
    data_kb: int | None = None  # peak RSS after the key unlocks (the data path), if measured
    worker_kb: int = 0  # peak RSS of the export's second reading process, if there was one
    walls: list[float] = dataclasses.field(default_factory=list)  # every round's wall time

    def rss_text(self) -> str:
        if not self.rss_kb:
            return "-"
        text = f"{self.rss_kb / 1024:,.0f}"
        if self.data_kb is not None:
            data = f"{self.data_kb / 1024:,.0f}"
            if self.worker_kb:
                data = f"{data} + {self.worker_kb / 1024:,.0f}"
            text = f"{data} (whole process {text})"
        return text

    @property
    def data_path_kb(self) -> int:
        """Both reading processes' peaks added (an overcount: they share pages)."""
        return (self.data_kb or 0) + self.worker_kb

    def cells(self) -> list[str]:
        rows_s = f"{self.rows / self.wall:,.0f}" if self.rows else "-"
        mb_s = f"{self.nbytes / self.wall / 1e6:,.1f}" if self.nbytes else "-"
        wall = f"{self.wall:.2f}" if self.wall else "-"
        spread = f"{min(self.walls):.2f}-{max(self.walls):.2f}" if len(self.walls) > 1 else "-"
        return [self.name, wall, spread, rows_s, mb_s, self.rss_text()]


def median_of(rounds: list[Measure]) -> Measure:
    """One figure for a step run in several rounds: the median wall time, the largest peak
    RSS of any round, every round's wall time kept for the range."""
    first = rounds[0]
    data = [m.data_kb for m in rounds if m.data_kb is not None]
    return dataclasses.replace(
        first,
        wall=statistics.median(m.wall for m in rounds),
        rss_kb=max(m.rss_kb for m in rounds),
        data_kb=max(data) if data else None,
        worker_kb=max(m.worker_kb for m in rounds),
        walls=[m.wall for m in rounds],
    )


def ratio_note(label: str, num: list[Measure], den: list[Measure], target: str) -> str:
    per_round = " ".join(f"{a.wall / b.wall:.2f}" for a, b in zip(num, den, strict=True))
    median = statistics.median(m.wall for m in num) / statistics.median(m.wall for m in den)
    each = f"; per round: {per_round}" if len(num) > 1 else ""
    return f"{label} = {median:.2f} (target {target}; medians{each})"


def run(
    argv: list[str] | str, *, env: dict[str, str] | None = None, shell: bool = False
) -> Measure:
    """Run one fresh child; wall time and its peak RSS (from wait4), failing loudly."""
    start = time.perf_counter()
    proc = subprocess.Popen(
        ["/bin/bash", "-o", "pipefail", "-c", argv] if shell else argv,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    out_r, err_r = proc.stdout, proc.stderr
    assert out_r is not None and err_r is not None
    out, err = out_r.read(), err_r.read()
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - start
    proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode != 0:
        cmd = argv if isinstance(argv, str) else shlex.join(argv)
        raise SystemExit(f"bench: {cmd} failed ({proc.returncode}):\n{err.decode()[-2000:]}")
    m = Measure("", wall, int(usage.ru_maxrss))
    m.stdout = out  # type: ignore[attr-defined]
    return m


# ------------------------------------------------------------------------------ set-up


def ensure_db(rows: int) -> Path:
    from securexport.synthetic import make_offenders_db

    path = OUT / f"offenders-{rows}.db"
    if not path.exists():
        people = round(rows / EPISODES_PER_PERSON)
        print(f"bench: building {path.name} ({people} people)…", file=sys.stderr, flush=True)
        tmp = path.with_suffix(".tmp")
        tmp.unlink(missing_ok=True)
        make_offenders_db(tmp, people=people, seed=2026)
        tmp.rename(path)
    return path


def count_rows(db: Path) -> int:
    import sqlite3

    with sqlite3.connect(f"file:{db}?mode=ro", uri=True) as conn:
        return int(conn.execute("SELECT count(*) FROM offenders").fetchone()[0])


@dataclass
class Setup:
    root: Path
    env: dict[str, str]
    approval: Path
    homes: dict[str, Path]
    identity_file: Path


def make_setup(root: Path, row_cap: int) -> Setup:
    """Owner, exporter and recipient homes with default (log_n 18) key files; a signed approval."""
    from securexport import api
    from securexport.environment import Environment, Home
    from securexport.home.keystore import KeyStore
    from securexport.home.truststore import TrustStore

    if root.exists():
        shutil.rmtree(root)
    root.mkdir(parents=True, mode=0o700)
    passphrase = root / "passphrase"
    passphrase.write_text("bench passphrase\n")
    passphrase.chmod(0o600)
    now = datetime.now(UTC)

    def env_for(role: str) -> Environment:
        return Environment(
            home=Home(root / role).ensure(),
            now=lambda: now,
            stdin_isatty=False,
            stderr=io.StringIO(),
            interactive=False,
            passphrase_file=str(passphrase),
            keystore="file",
        )

    envs = {role: env_for(role) for role in ("owner", "exporter", "recipient")}
    ids = {role: KeyStore(e).create_identity(role) for role, e in envs.items()}
    for e in envs.values():
        TrustStore(e.home).add("owner", ids["owner"].signing_key.to_line("owner"), "approver")
    key_check = KeyStore(envs["owner"]).create_pseudonym_key("bench-key")
    ledger_vkey = api.ledger_verifier_key(envs["exporter"])
    not_before = f"{now.year - 1}-01-01T00:00:00Z"
    expires = f"{now.year + 1}-12-31T23:59:59Z"
    text = f'''schema = "securexport.approval/1"

[approval]
id          = "APR-BENCH-0001"
title       = "Benchmark extract"
purpose     = "Measure the data path."
legal_basis = "DPA 2018 Part 3 s.35"
not_before  = {not_before}
expires     = {expires}

[source]
dataset = "offenders"
entity  = "offender_id"

[limits]
row_cap  = {row_cap}
min_rows = 1

[pseudonymisation]
key_id    = "bench-key"
key_check = "{key_check}"
{COLUMNS}
[output]
format = "csv"

[[recipients]]
name = "recipient"
age  = "{ids["recipient"].age_recipient}"

[[exporters]]
name   = "exporter"
ssh    = "{ids["exporter"].signing_key.to_line()}"
age    = "{ids["exporter"].age_recipient}"
ledger = "{ledger_vkey}"
'''
    approval = root / "approval.toml"
    approval.write_text(text)
    api.sign_approval(envs["owner"], approval, "owner")
    blob = api.export_pseudonym_key(
        envs["owner"], "bench-key", ids["exporter"].age_recipient, approval
    )
    KeyStore(envs["exporter"]).import_pseudonym_key(blob)
    identity_file = root / "recipient-identity.txt"
    fd = os.open(identity_file, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as fh:
        fh.write(str(KeyStore(envs["recipient"]).age_identity("recipient")) + "\n")
    child_env = dict(os.environ)
    child_env.update(
        SECUREXPORT_PASSPHRASE_FILE=str(passphrase),
        SECUREXPORT_KEYSTORE="file",
        PYTHONDONTWRITEBYTECODE="1",
    )
    child_env.pop("SECUREXPORT_HOME", None)
    homes = {role: e.home.path for role, e in envs.items()}
    return Setup(root, child_env, approval, homes, identity_file)


# ------------------------------------------------------------------------------ steps


def sx(setup: Setup, role: str, *args: str) -> list[str]:
    return [*SX, "--home", str(setup.homes[role]), "-q", *args]


KEY_UNLOCKS = ("pseudonym_key", "signing_key", "ledger_signing_key", "age_identity")


def _child_measured(report: Path, argv: list[str]) -> None:
    """Run the CLI in this process; split its peak RSS into key unlock and data path.

    The KeyStore methods that unlock keys (scrypt log_n 18, ~256 MB each, DESIGN.md §9) are
    wrapped *here only*: after each unlock the kernel's high-water mark is reset (writing "5"
    to /proc/self/clear_refs), so VmHWM at exit is the peak after the last unlock: the data
    path.  The peak before the reset is the key-unlock baseline.
    """
    import atexit
    import functools

    from securexport.home.keystore import KeyStore

    state = {"unlock_kb": 0}

    def hwm_kb() -> int:
        with open("/proc/self/status") as fh:
            for line in fh:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1])
        return 0

    def wrap(name: str) -> None:
        original = getattr(KeyStore, name)

        @functools.wraps(original)
        def unlock(self: KeyStore, *args: object, **kwargs: object) -> object:
            got = original(self, *args, **kwargs)
            state["unlock_kb"] = max(state["unlock_kb"], hwm_kb())
            with open("/proc/self/clear_refs", "w") as fh:
                fh.write("5")
            return got

        setattr(KeyStore, name, unlock)

    for name in KEY_UNLOCKS:
        wrap(name)

    # A large export reads in two processes (securexport.parallel): the worker reports its
    # own peak, which is added to this process's data-path peak below.
    from securexport.data import parallel

    finish = parallel.ParallelRead.finish

    @functools.wraps(finish)
    def finish_and_note(self: parallel.ParallelRead, *args: Any, **kwargs: Any) -> Any:
        got = finish(self, *args, **kwargs)
        state["worker_kb"] = self.worker_peak_kb
        return got

    parallel.ParallelRead.finish = finish_and_note  # type: ignore[method-assign]

    def write_report() -> None:
        report.write_text(
            json.dumps(
                {
                    "unlock_kb": state["unlock_kb"],
                    "data_kb": hwm_kb(),
                    "worker_kb": state.get("worker_kb", 0),
                }
            )
        )

    atexit.register(write_report)
    from securexport.cli import main as cli_main

    cli_main(argv)


def run_measured(setup: Setup, role: str, *args: str) -> tuple[Measure, int]:
    """As ``run(sx(...))``, with the data-path peak RSS; also returns the key-unlock peak."""
    report = setup.root / "rss-report.json"
    report.unlink(missing_ok=True)
    argv = ["--home", str(setup.homes[role]), "-q", *args]
    m = run([sys.executable, __file__, "--child-measured", str(report), *argv], env=setup.env)
    got = json.loads(report.read_text())
    m.data_kb = int(got["data_kb"])
    m.worker_kb = int(got.get("worker_kb", 0))
    # clear_refs also resets the ru_maxrss that wait4 reports: the whole-process peak is the
    # larger of the two halves.
    m.rss_kb = max(m.rss_kb, int(got["unlock_kb"]), m.data_kb)
    return m, int(got["unlock_kb"])


def decrypt_measured(setup: Setup, bundle: Path, name: str) -> Measure:
    """``decrypt`` with its data-path peak RSS (after the key-file unlock) measured apart."""
    out_dir = setup.root / "decrypted"
    shutil.rmtree(out_dir, ignore_errors=True)
    m, _ = run_measured(
        setup, "recipient", "decrypt", str(bundle), "--as", "recipient", "-o", str(out_dir)
    )
    shutil.rmtree(out_dir, ignore_errors=True)
    m.name = name
    return m


def export(setup: Setup, url: str, name: str) -> tuple[Measure, Path, dict[str, object]]:
    bundle = setup.root / f"{name}.sxb"
    bundle.unlink(missing_ok=True)
    args = ["export", str(setup.approval), "--source", url, "--as", "exporter", "-o", str(bundle)]
    m, unlock_kb = run_measured(setup, "exporter", *args)
    with zipfile.ZipFile(bundle) as zf:
        manifest = json.loads(zf.read("manifest.json"))
    m.name = name
    m.rows = int(manifest["records"]["written"])
    m.nbytes = int(manifest["files"][0]["bytes"])
    manifest["_unlock_kb"] = unlock_kb
    return m, bundle, manifest


def baseline_export(db: Path, work: Path, rows: int, nbytes: int) -> Measure:
    out = work / "baseline.zip"
    out.unlink(missing_ok=True)
    select = f"SELECT {', '.join(PROJECTED)} FROM offenders"
    cmd = (
        f"sqlite3 -csv -header {shlex.quote(str(db))} {shlex.quote(select)} | "
        f"7z a -tzip -mem=AES256 -p{PASSWORD} -si{shlex.quote('offenders.csv')} "
        f"{shlex.quote(str(out))} >/dev/null"
    )
    m = run(cmd, shell=True)
    m.name, m.rows, m.nbytes = "  baseline: sqlite3 -csv | 7z a AES256", rows, nbytes
    return m


def projected_csv_bytes(db: Path) -> int:
    select = f"SELECT {', '.join(PROJECTED)} FROM offenders"
    cmd = f"sqlite3 -csv -header {shlex.quote(str(db))} {shlex.quote(select)} | wc -c"
    return int(run(cmd, shell=True).stdout.decode().strip())  # type: ignore[attr-defined]


def baseline_decrypt(setup: Setup, bundle: Path, rows: int, nbytes: int) -> Measure:
    work = setup.root / "baseline-decrypt"
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir()
    with zipfile.ZipFile(bundle) as zf:
        zf.extract("payload.zip", work)
        zf.extract("payload.key.age", work)
    ident, key = shlex.quote(str(setup.identity_file)), shlex.quote(str(work / "payload.key.age"))
    cmd = (
        f'pw=$(age -d -i {ident} {key}) && 7z x -y -p"$pw" '
        f"-o{shlex.quote(str(work / 'out'))} {shlex.quote(str(work / 'payload.zip'))} >/dev/null"
    )
    m = run(cmd, shell=True)
    m.name, m.rows, m.nbytes = "  baseline: age -d + 7z x", rows, nbytes
    return m


def baseline_decrypt_keyfile(setup: Setup, bundle: Path, rows: int, nbytes: int) -> Measure:
    """``age -d -i`` with the recipient's own passphrase-protected key file (the file
    securexport unlocks: scrypt log_n 18), the passphrase typed at age's prompt through a pty,
    then ``7z x``: the baseline doing the same key unlock as ``securexport decrypt``.  Run
    after :func:`baseline_decrypt`, which extracts the two members."""
    from tests.support.agetool import run_with_tty

    work = setup.root / "baseline-decrypt"
    shutil.rmtree(work / "out", ignore_errors=True)
    key_file = setup.homes["recipient"] / "keys" / "recipient.age-key.age"
    passphrase = (setup.root / "passphrase").read_text().strip().encode()
    cmd = (
        f"pw=$(age -d -i {shlex.quote(str(key_file))} "
        f'{shlex.quote(str(work / "payload.key.age"))}) && 7z x -y -p"$pw" '
        f"-o{shlex.quote(str(work / 'out'))} {shlex.quote(str(work / 'payload.zip'))} >/dev/null"
    )
    start = time.perf_counter()
    code, transcript = run_with_tty(["/bin/bash", "-o", "pipefail", "-c", cmd], passphrase)
    wall = time.perf_counter() - start
    if code != 0:
        raise SystemExit(f"bench: {cmd} failed ({code}): {transcript[-500:]!r}")
    return Measure("  baseline: age -d -i KEY FILE + 7z x", wall, 0, rows, nbytes)


def core_round(setup: Setup, url: str, db: Path, rows: int, csv_bytes: int) -> dict[str, Measure]:
    """One round of the repeated steps, each measured once, in a fixed order."""
    got: dict[str, Measure] = {}
    exp, bundle, manifest = export(setup, url, "export (SQLite)")
    got["export"] = exp
    got["unlock"] = Measure("unlock", 0.0, int(manifest["_unlock_kb"]))  # type: ignore[call-overload]
    got["baseline export"] = baseline_export(db, setup.root, rows, csv_bytes)

    plan = run(
        sx(setup, "owner", "approval", "plan", str(setup.approval), "--source", url),
        env=setup.env,
    )
    plan.name, plan.rows = "approval plan (SQLite)", rows
    got["plan"] = plan

    ver = run(sx(setup, "recipient", "verify", str(bundle)), env=setup.env)
    ver.name = "verify"
    ver.nbytes = bundle.stat().st_size
    got["verify"] = ver

    out_dir = setup.root / "decrypted"
    shutil.rmtree(out_dir, ignore_errors=True)
    dec = run(
        sx(setup, "recipient", "decrypt", str(bundle), "--as", "recipient", "-o", str(out_dir)),
        env=setup.env,
    )
    dec.name, dec.rows, dec.nbytes = "decrypt", exp.rows, exp.nbytes
    got["decrypt"] = dec
    got["baseline decrypt"] = baseline_decrypt(setup, bundle, exp.rows or 0, exp.nbytes or 0)
    got["baseline decrypt, key file"] = baseline_decrypt_keyfile(
        setup, bundle, exp.rows or 0, exp.nbytes or 0
    )
    return got


DECRYPT_PHASES = (
    ("verify", "verify the bundle (signatures, trust, hashes, receipt; no key needed)"),
    ("unlock_wait", "wait for the key-file unlock after verifying"),
    ("unwrap", "unwrap the payload password (age X25519)"),
    ("extract", "extract payload.zip (AES-256, HMAC, inflate) and hash the plaintext"),
    ("content", "hold every cell against its transform, recompute k (DESIGN.md §8.4)"),
)


def _child_decrypt_phases(report: Path, argv: list[str]) -> None:
    """Run ``decrypt`` in this process with a clock around each of its phases."""
    import atexit
    import functools

    started = time.perf_counter()
    from securexport import api
    from securexport._crypto import agefile
    from securexport.bundle import container as bundle_mod
    from securexport.bundle import plaintext as content
    from securexport.home import keystore as keys

    spent: dict[str, float] = {}

    def timed(owner: Any, name: str, phase: str) -> None:
        original = getattr(owner, name)

        @functools.wraps(original)
        def clocked(*args: Any, **kwargs: Any) -> Any:
            t = time.perf_counter()
            if phase == "verify":
                spent.setdefault("verify_entered", t - started)
            try:
                return original(*args, **kwargs)
            finally:
                spent[phase] = spent.get(phase, 0.0) + time.perf_counter() - t

        setattr(owner, name, clocked)

    timed(api, "_verify_open", "verify")
    timed(keys.BackgroundUnlock, "result", "unlock_wait")
    timed(keys.KeyStore, "age_identity", "unlock_thread")
    timed(agefile, "decrypt", "unwrap")
    timed(bundle_mod, "extract_payload", "extract")
    timed(content, "check_plaintext", "content")

    def write_report() -> None:
        spent["in_process"] = time.perf_counter() - started
        report.write_text(json.dumps(spent))

    atexit.register(write_report)
    from securexport.cli import main as cli_main

    cli_main(argv)


def decrypt_phases(setup: Setup, bundle: Path) -> list[str]:
    """Lines saying where one decrypt's wall time goes."""
    report = setup.root / "decrypt-phases.json"
    report.unlink(missing_ok=True)
    out_dir = setup.root / "decrypted"
    shutil.rmtree(out_dir, ignore_errors=True)
    argv = ["--home", str(setup.homes["recipient"]), "-q", "decrypt", str(bundle)]
    argv += ["--as", "recipient", "-o", str(out_dir)]
    m = run([sys.executable, __file__, "--child-decrypt-phases", str(report), *argv], env=setup.env)
    spent = json.loads(report.read_text())
    lines = [f"decrypt, where one run's {m.wall:.2f} s go (clocks inside the process):"]
    startup = m.wall - spent["in_process"] + spent.get("verify_entered", 0.0)
    lines.append(
        f"  {startup:5.2f} s  interpreter start-up, imports, command line, opening the bundle"
    )
    accounted = startup
    for key, text in DECRYPT_PHASES:
        accounted += spent.get(key, 0.0)
        lines.append(f"  {spent.get(key, 0.0):5.2f} s  {text}")
    lines.append(f"  {m.wall - accounted:5.2f} s  the rest (output directory, rename, exit)")
    lines.append(
        f"  (the key-file unlock itself, scrypt log_n 18, took {spent.get('unlock_thread', 0.0):.2f}"
        " s on a thread while the bundle verified)"
    )
    return lines


def postgres_url(db: Path, rows: int) -> tuple[dict[str, str], str]:
    """Start a throwaway server and load ``db`` into it, in a child (the parent stays small)."""
    print(f"bench: loading {rows} rows into PostgreSQL…", file=sys.stderr, flush=True)
    got = run([sys.executable, __file__, "--child-pg-start", str(db)])
    info = json.loads(got.stdout)  # type: ignore[attr-defined]
    return info, info["url"]


def _child_pg_start(db: Path) -> None:
    from securexport.synthetic import load_into_postgres
    from tests.support.pg import start_postgres

    server = start_postgres()
    url = server.create_database("bench")
    load_into_postgres(db, url)
    server.psql("VACUUM ANALYZE offenders", dbname="bench")
    info = {"root": str(server.root), "bindir": str(server.bindir), "port": str(server.port)}
    print(json.dumps({**info, "url": url}))


def _stop_pg(info: dict[str, str]) -> None:
    from tests.support.pg import PgServer

    PgServer(Path(info["root"]), Path(info["bindir"]), int(info["port"])).stop()


def version_startup() -> Measure:
    best: Measure | None = None
    for _ in range(5):
        m = run([*SX, "--version"])
        if best is None or m.wall < best.wall:
            best = m
    assert best is not None
    best.name = "securexport --version (best of 5)"
    return best


def print_table(rows: list[Measure]) -> None:
    head = ["step", "wall s", "range s", "rows/s", "MB/s", "peak RSS MB"]
    cells = [head] + [m.cells() for m in rows]
    widths = [max(len(r[i]) for r in cells) for i in range(len(head))]
    line = "| " + " | ".join(h.ljust(w) for h, w in zip(head, widths, strict=True)) + " |"
    print(line)
    print("| " + " | ".join("-" * w for w in widths) + " |")
    for r in cells[1:]:
        left = r[0].ljust(widths[0])
        rest = [c.rjust(w) for c, w in zip(r[1:], widths[1:], strict=True)]
        print("| " + " | ".join([left, *rest]) + " |")


def machine() -> str:
    cpu = "?"
    with open("/proc/cpuinfo") as fh:
        for line in fh:
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    with open("/proc/meminfo") as fh:
        mem_kb = int(fh.readline().split()[1])
    return (
        f"{os.cpu_count()} CPUs ({cpu}), {mem_kb / 1024 / 1024:.1f} GiB RAM, "
        f"{platform.system()} {platform.release()}, Python {platform.python_version()}"
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=1_000_000, help="table size (1000000)")
    parser.add_argument(
        "--repeat", type=int, default=3, help="rounds of the core steps; medians are printed (3)"
    )
    parser.add_argument("--no-postgres", action="store_true", help="skip the PostgreSQL export")
    parser.add_argument(
        "--memory-check",
        action="store_true",
        help="also export 5 x --rows and print the peak RSS ratio",
    )
    parser.add_argument("--child-setup", nargs=2, help=argparse.SUPPRESS)
    parser.add_argument("--child-pg-start", type=Path, help=argparse.SUPPRESS)
    raw = sys.argv[1:] if argv is None else argv
    if raw[:1] == ["--child-measured"]:
        _child_measured(Path(raw[1]), raw[2:])
        return 0
    if raw[:1] == ["--child-decrypt-phases"]:
        _child_decrypt_phases(Path(raw[1]), raw[2:])
        return 0
    args = parser.parse_args(argv)
    if args.child_setup:
        s = make_setup(Path(args.child_setup[0]), int(args.child_setup[1]))
        print(json.dumps({"env": s.env, "homes": {k: str(v) for k, v in s.homes.items()}}))
        return 0
    if args.child_pg_start:
        _child_pg_start(args.child_pg_start)
        return 0
    # Everything heavy (the 1M-row database, log_n 18 key files, the PostgreSQL load) happens
    # in children: a child's peak RSS starts at its parent's, so the parent must stay small.
    OUT.mkdir(exist_ok=True)
    run(
        [
            sys.executable,
            "-c",
            f"import sys; sys.path.insert(0, {str(ROOT)!r}); "
            f"from scripts.bench import ensure_db; ensure_db({args.rows})",
        ]
    )
    db = OUT / f"offenders-{args.rows}.db"
    rows = count_rows(db)
    root = OUT / "run"
    got = json.loads(
        run([sys.executable, __file__, "--child-setup", str(root), str(10 * rows)]).stdout  # type: ignore[attr-defined]
    )
    setup = Setup(
        root,
        got["env"],
        root / "approval.toml",
        {k: Path(v) for k, v in got["homes"].items()},
        root / "recipient-identity.txt",
    )
    url = f"sqlite:///{db}"
    results: list[Measure] = []
    notes: list[str] = []

    results.append(version_startup())
    csv_bytes = projected_csv_bytes(db)
    rounds: dict[str, list[Measure]] = {}
    for n in range(args.repeat):
        print(f"bench: round {n + 1} of {args.repeat}…", file=sys.stderr, flush=True)
        for key, m in core_round(setup, url, db, rows, csv_bytes).items():
            rounds.setdefault(key, []).append(m)
    exp = median_of(rounds["export"])
    results.append(exp)
    results.append(median_of(rounds["baseline export"]))
    unlock = Measure(
        "  of which: key unlocks (3 x scrypt log_n 18)",
        0.0,
        max(m.rss_kb for m in rounds["unlock"]),
    )
    results.append(unlock)
    notes.append(
        ratio_note("export / baseline", rounds["export"], rounds["baseline export"], "<= 1.5")
    )
    notes.append(
        f"export data-path peak RSS = {exp.data_path_kb / 1024:,.0f} MB (target < 200; "
        f"both processes' peaks added: {(exp.data_kb or 0) / 1024:,.0f} + "
        f"{exp.worker_kb / 1024:,.0f}); key-unlock baseline = {unlock.rss_kb / 1024:,.0f} MB"
    )

    if not args.no_postgres:
        server, pg_url = postgres_url(db, rows)
        try:
            pg, _, _ = export(setup, pg_url, "export (PostgreSQL)")
            results.append(pg)
        finally:
            _stop_pg(server)

    for key in ("plan", "verify", "decrypt", "baseline decrypt", "baseline decrypt, key file"):
        results.append(median_of(rounds[key]))
    notes.append(ratio_note("plan / export", rounds["plan"], rounds["export"], "< 0.33"))
    notes.append(
        ratio_note("decrypt / baseline", rounds["decrypt"], rounds["baseline decrypt"], "<= 1.5")
    )
    notes.append(
        ratio_note(
            "decrypt / baseline with the same key file",
            rounds["decrypt"],
            rounds["baseline decrypt, key file"],
            "none",
        )
    )
    phases = decrypt_phases(setup, setup.root / "export (SQLite).sxb")

    if args.memory_check:
        big_rows = 5 * args.rows
        run(
            [
                sys.executable,
                "-c",
                f"import sys; sys.path.insert(0, {str(ROOT)!r}); "
                f"from scripts.bench import ensure_db; ensure_db({big_rows})",
            ]
        )
        big_db = OUT / f"offenders-{big_rows}.db"
        big, big_bundle, _ = export(
            setup, f"sqlite:///{big_db}", f"export (SQLite, {big_rows:,} rows)"
        )
        results.append(big)
        notes.append(
            f"data-path peak RSS {big_rows:,} / {args.rows:,} rows = "
            f"{big.data_path_kb / (exp.data_path_kb or 1):.3f} (target <= 1.15); whole process "
            f"{big.rss_kb / exp.rss_kb:.3f}"
        )
        # Decrypt's memory at both sizes, its data path split from the key unlock as above.
        small_dec = decrypt_measured(setup, setup.root / "export (SQLite).sxb", "decrypt")
        big_dec = decrypt_measured(setup, big_bundle, f"decrypt ({big_rows:,} rows)")
        small_dec.rows, big_dec.rows = exp.rows, big.rows
        small_dec.nbytes, big_dec.nbytes = exp.nbytes, big.nbytes
        results.append(big_dec)
        notes.append(
            f"decrypt data-path peak RSS {big_rows:,} / {args.rows:,} rows = "
            f"{(big_dec.data_kb or 0) / (small_dec.data_kb or 1):.3f} "
            f"({(small_dec.data_kb or 0) / 1024:,.0f} MB, {(big_dec.data_kb or 0) / 1024:,.0f} MB); "
            f"whole process {big_dec.rss_kb / small_dec.rss_kb:.3f}"
        )

    print(f"machine: {machine()}")
    print(f"table: offenders, {rows:,} rows; approval: 5 transforms, k = 5 (suppress)")
    print()
    print_table(results)
    print()
    for note in notes:
        print(note)
    print()
    for line in phases:
        print(line)
    ledger_bench = ROOT / "scripts" / "bench_ledger.py"
    if ledger_bench.exists():
        got = subprocess.run(
            [sys.executable, str(ledger_bench)], capture_output=True, text=True, check=False
        )
        print()
        print(got.stdout.rstrip() or f"bench_ledger.py failed: {got.stderr[-500:]}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
