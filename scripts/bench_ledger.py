#!/usr/bin/env python3
"""Ledger benchmark: append latency at N entries, and a full ``verify_all`` of N entries.

    python scripts/bench_ledger.py [--entries 100000] [--measure 1000] [--url URL | --postgres]

Builds a ledger of N entries through the real ``Ledger.append_export`` (one transaction, one
signed checkpoint per entry; manifests are dummy bytes of a real manifest's size, signed with a
real Ed25519 ledger key).  Durability is relaxed while building (SQLite ``synchronous = OFF``,
PostgreSQL ``synchronous_commit = off``) only to build quickly; the last ``--measure`` appends
run with the production settings and are timed one by one.  Then ``verify_all`` recomputes the
whole tree and checks every checkpoint signature (without the per-entry manifest checks, which
need real signed manifests; ``ledger verify`` adds about one SSHSIG check per entry).

Default: a temporary SQLite file.  ``--postgres`` starts a throwaway server (tests/support/pg.py,
as the tests do); ``--url`` uses a server you name (an empty database; no password in the URL).
Prints a Markdown table, like scripts/bench.py (which appends this script's output).
"""

from __future__ import annotations

import argparse
import contextlib
import statistics
import sys
import tempfile
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey  # noqa: E402

from securexport.ledger import Ledger, ledger_verifier_key  # noqa: E402

MANIFEST_BYTES = 3000  # a real manifest of the test world is about this size
RUNS_PER_APPROVAL = 12  # entries n..n+11 are runs 1..12 of one approval (a monthly extract)
NOW = datetime(2026, 6, 1, 12, 0, 0, tzinfo=UTC)


def dummy_manifest(n: int) -> bytes:
    head = f'{{"export_id":"bench-{n:08d}","pad":"'.encode()
    return head + b"x" * (MANIFEST_BYTES - len(head) - 2) + b'"}'


def append(led: Ledger, signer: Ed25519PrivateKey, n: int, runs: dict[int, int]) -> None:
    approval = n // RUNS_PER_APPROVAL
    runs[approval] = runs.get(approval, 0) + 1
    led.append_export(
        dummy_manifest(n),
        b"bench-signature",
        export_id=f"bench-{n:08d}",
        approval_id=f"APR-{approval}",
        approval_sha256=f"{approval:064x}",
        run=runs[approval],
        max_runs=None,
        signer=signer,
        now=NOW,
    )


def set_durability(led: Ledger, relaxed: bool) -> None:
    conn = led._store.conn
    if led.location.startswith("postgresql://"):
        conn.execute(f"SET synchronous_commit = {'off' if relaxed else 'on'}")
    else:
        conn.execute(f"PRAGMA synchronous = {'OFF' if relaxed else 'FULL'}")


@contextlib.contextmanager
def ledger_target(args: argparse.Namespace) -> Iterator[tuple[Path | str, str]]:
    if args.url:
        yield args.url, "PostgreSQL"
    elif args.postgres:
        from tests.support.pg import running_postgres

        with running_postgres() as server:
            yield server.create_database("bench_ledger"), "PostgreSQL (throwaway, fsync off)"
    else:
        with tempfile.TemporaryDirectory(prefix="bench-ledger-") as tmp:
            yield Path(tmp) / "ledger.db", "SQLite (WAL, synchronous FULL)"


def print_table(rows: list[list[str]]) -> None:
    head = ["ledger step", "entries", "mean ms", "p99 ms", "wall s"]
    cells = [head, *rows]
    widths = [max(len(r[i]) for r in cells) for i in range(len(head))]
    print("| " + " | ".join(h.ljust(w) for h, w in zip(head, widths, strict=True)) + " |")
    print("| " + " | ".join("-" * w for w in widths) + " |")
    for r in rows:
        rest = [c.rjust(w) for c, w in zip(r[1:], widths[1:], strict=True)]
        print("| " + " | ".join([r[0].ljust(widths[0]), *rest]) + " |")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--entries", type=int, default=100_000, help="ledger size (100000)")
    parser.add_argument("--measure", type=int, default=1000, help="timed appends at the end")
    where = parser.add_mutually_exclusive_group()
    where.add_argument("--url", help="postgresql+psycopg://USER@HOST/DB (an empty database)")
    where.add_argument("--postgres", action="store_true", help="start a throwaway PostgreSQL")
    args = parser.parse_args()
    if not 0 < args.measure <= args.entries:
        parser.error("--measure must be between 1 and --entries")

    signer = Ed25519PrivateKey.generate()
    runs: dict[int, int] = {}
    label = f"@{args.entries // 1000}k" if args.entries % 1000 == 0 else f"@{args.entries}"
    with ledger_target(args) as (target, kind), Ledger.open(target) as led:
        build = args.entries - args.measure
        print(f"bench_ledger: building {build:,} entries on {kind}…", file=sys.stderr, flush=True)
        set_durability(led, relaxed=True)
        started = time.perf_counter()
        for n in range(build):
            append(led, signer, n, runs)
        build_wall = time.perf_counter() - started
        set_durability(led, relaxed=False)

        latencies = []
        started = time.perf_counter()
        for n in range(build, args.entries):
            t0 = time.perf_counter()
            append(led, signer, n, runs)
            latencies.append(time.perf_counter() - t0)
        append_wall = time.perf_counter() - started

        print("bench_ledger: verify_all…", file=sys.stderr, flush=True)
        started = time.perf_counter()
        report = led.verify_all(ledger_verifier_key(led.origin, signer))
        verify_wall = time.perf_counter() - started
        assert report.size == args.entries, report

    ms = sorted(x * 1000 for x in latencies)
    p99 = ms[min(len(ms) - 1, int(0.99 * len(ms)))]
    print(f"ledger: {kind}; manifests of {MANIFEST_BYTES} bytes; one signed checkpoint per entry")
    print()
    print_table(
        [
            [
                f"ledger build (relaxed fsync) to {label}",
                f"{build:,}",
                f"{build_wall / max(build, 1) * 1000:.2f}",
                "",
                f"{build_wall:.1f}",
            ],
            [
                f"ledger append {label} (last {args.measure:,})",
                f"{args.measure:,}",
                f"{statistics.fmean(ms):.2f}",
                f"{p99:.2f}",
                f"{append_wall:.1f}",
            ],
            [
                f"ledger verify_all {label}",
                f"{report.size:,}",
                f"{verify_wall / report.size * 1000:.3f}",
                "",
                f"{verify_wall:.1f}",
            ],
        ]
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
