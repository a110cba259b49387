#!/usr/bin/env python3
"""Ledger benchmark: append latency at N entries, ``verify_all`` and a full ``ledger verify``.

    python scripts/bench_ledger.py [--entries 100000] [--measure 1000] [--url URL | --postgres]
                                   [--full-verify-entries 100000]

Builds a ledger of N entries through the real ``Ledger.append_export`` (one transaction, one
signed checkpoint per entry; manifests are dummy bytes of a real manifest's size, signed with a
real Ed25519 ledger key).  Durability is relaxed while building (SQLite ``synchronous = OFF``,
PostgreSQL ``synchronous_commit = off``) only to build quickly; the last ``--measure`` appends
run with the production settings and are timed one by one.  Then ``verify_all`` recomputes the
whole tree and checks every checkpoint signature (without the per-entry manifest checks, which
need real signed manifests).

Then the full ``securexport ledger verify`` (``register.ledger_verify``: the tree, every
checkpoint, and per entry the manifest's SSHSIG signature, the index columns against the signed
manifest, the stored approval's signature against the trust store, ``policy.check_manifest``)
over ``--full-verify-entries`` entries (0 skips it).  Those need real signed manifests, so this
part builds a test world (tests/support/world.py: keys at a low scrypt cost, a 3,000-person
synthetic database), makes one real export, then appends N-1 copies of its manifest through
``Ledger.append_export`` into the exporter's SQLite ``ledger.db``, each with a fresh export id,
its own ``created_at`` (inside the approval's window) and the next run of its approval,
re-canonicalised and re-signed with the exporter's key, with the approval, its signature, the
writer record and a "written" bundle outcome attached, as a real export leaves them.  As above,
every 12 entries are runs 1..12 of one approval (``max_runs = 12``; each further approval is the
test world's with another id, signed by its owner): a single approval with N runs would make the
build quadratic, since each append counts that approval's runs so far (``runs_used``).  Building
relaxes durability as above; the timed verify opens the ledger afresh with the normal settings.
This part always uses SQLite (the home's ``ledger.db``), whatever ``--url``/``--postgres`` say.

Default: a temporary SQLite file.  ``--postgres`` starts a throwaway server (tests/support/pg.py,
as the tests do); ``--url`` uses a server you name (an empty database; no password in the URL).
Prints a Markdown table, like scripts/bench.py (which appends this script's output).
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import json
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey  # noqa: E402

from securexport.ledger.log import Ledger, ledger_verifier_key  # noqa: E402

MANIFEST_BYTES = 3000  # a real manifest of the test world is about this size
RUNS_PER_APPROVAL = 12  # entries n..n+11 are runs 1..12 of one approval (a monthly extract)
NOW = datetime(2026, 6, 1, 12, 0, 0, tzinfo=UTC)
RFC3339 = "%Y-%m-%dT%H:%M:%SZ"


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


def full_verify(entries: int) -> tuple[list[list[str]], str]:
    """Build a real ledger of ``entries`` exports and time ``register.ledger_verify`` on it."""
    from securexport._crypto import sshsig
    from securexport.api import ledger as register
    from securexport.bundle.container import APPROVAL, APPROVAL_SIG
    from securexport.home.keystore import KeyStore
    from securexport.ledger.log import writer_record
    from securexport.ledger.store import BUNDLE_OUTCOME, WRITER
    from securexport.policy.manifest import canonical_bytes
    from securexport.synthetic import make_offenders_db
    from tests.support.world import TEST_LOG_N, build_world

    # The test world's cheap key files (its Environments carry TEST_LOG_N).
    with tempfile.TemporaryDirectory(prefix="bench-ledger-full-") as tmp:
        root = Path(tmp)
        print("bench_ledger: full verify: test world and one real export…", file=sys.stderr)
        template = root / "template" / "offenders.db"
        template.parent.mkdir()
        make_offenders_db(template, people=3000, seed=7)
        passphrase = root / "passphrase.txt"
        passphrase.write_bytes(b"correct horse battery staple\n")
        passphrase.chmod(0o600)
        world_root = root / "world"
        world_root.mkdir()
        world = build_world(world_root, template, passphrase)
        world.export(world.write_approval(max_runs=RUNS_PER_APPROVAL))
        keys = KeyStore(world.exporter, scrypt_log_n=TEST_LOG_N)
        ledger_key = keys.ledger_signing_key()
        signing_key = keys.signing_key("analyst")
        owner_key = KeyStore(world.owner, scrypt_log_n=TEST_LOG_N).signing_key("owner")

        build = entries - 1
        with Ledger.open(world.exporter.home.ledger_path) as led:
            first = led.entry(0)
            approval_raw = led.attachment(first.export_id, APPROVAL)
            approval_sig = led.attachment(first.export_id, APPROVAL_SIG)
            assert approval_raw is not None and approval_sig is not None
            # The real export's time (the world's fixed clock, 2026-06-01T12:00:00Z).
            base = datetime.strptime(first.created_at, RFC3339).replace(tzinfo=UTC)
            manifest = json.loads(first.leaf)
            approval_id, approval_sha256 = first.approval_id, first.approval_sha256
            print(
                f"bench_ledger: full verify: building {build:,} more signed entries…",
                file=sys.stderr,
                flush=True,
            )
            set_durability(led, relaxed=True)
            started = time.perf_counter()
            for n in range(1, entries):
                # One export every 30 s from the real one: 100k entries span ~35 days, well
                # inside the approval's window (2026-01-01 .. 2027-01-31).
                now = base + timedelta(seconds=30 * n)
                created_at = now.strftime(RFC3339)  # the ledger's column must say the same
                export_id = str(uuid.uuid4())  # as a real export names itself
                group, run = divmod(n, RUNS_PER_APPROVAL)
                if run == 0:  # the next approval: the same text under another id, signed
                    approval_id = f"APR-BENCH-{group:06d}"
                    text = world.approval_text(approval_id=approval_id, max_runs=RUNS_PER_APPROVAL)
                    approval_raw = text.encode()
                    approval_sig = sshsig.sign(owner_key, approval_raw, sshsig.NAMESPACE_APPROVAL)
                    approval_sha256 = hashlib.sha256(approval_raw).hexdigest()
                manifest["export_id"] = export_id
                manifest["created_at"] = created_at
                manifest["run_date"] = now.date().isoformat()
                manifest["approval"].update(id=approval_id, sha256=approval_sha256, run=run + 1)
                body = canonical_bytes(manifest)
                outcome = json.dumps({"status": "written", "at": created_at}, sort_keys=True)
                led.append_export(
                    body,
                    sshsig.sign(signing_key, body, sshsig.NAMESPACE_MANIFEST),
                    export_id=export_id,
                    approval_id=approval_id,
                    approval_sha256=approval_sha256,
                    run=run + 1,
                    max_runs=RUNS_PER_APPROVAL,
                    signer=ledger_key,
                    now=now,
                    attachments={
                        APPROVAL: approval_raw,
                        APPROVAL_SIG: approval_sig,
                        WRITER: writer_record(),
                        BUNDLE_OUTCOME: outcome.encode(),
                    },
                )
            build_wall = time.perf_counter() - started
            set_durability(led, relaxed=False)
            leaf_bytes = len(first.leaf)

        print(f"bench_ledger: full ledger verify of {entries:,}…", file=sys.stderr, flush=True)
        started = time.perf_counter()
        result = register.ledger_verify(world.exporter)
        verify_wall = time.perf_counter() - started
        assert result.size == entries, result
        assert result.entries_checked == entries, result
        assert not result.missing_bundles, result.missing_bundles[:3]

    label = f"@{entries // 1000}k" if entries % 1000 == 0 else f"@{entries}"
    rows = [
        [
            f"full-verify ledger build (real signed manifests, relaxed fsync) to {label}",
            f"{build:,}",
            f"{build_wall / max(build, 1) * 1000:.2f}",
            "",
            f"{build_wall:.1f}",
        ],
        [
            f"`ledger verify` {label} (full: tree, checkpoints, each manifest signature and "
            "approval)",
            f"{entries:,}",
            f"{verify_wall / entries * 1000:.3f}",
            "",
            f"{verify_wall:.1f}",
        ],
    ]
    note = (
        f"full `ledger verify`: SQLite ledger.db of a test world's exporter (tests/support/world.py);"
        f" one real export, then {build:,} copies of its {leaf_bytes}-byte manifest, each re-signed"
        f", with its signed approval attached; {RUNS_PER_APPROVAL} runs per approval"
    )
    return rows, note


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
    parser.add_argument(
        "--full-verify-entries",
        type=int,
        default=100_000,
        help="entries for the full `ledger verify` (real signed manifests; 100000; 0 skips it)",
    )
    where = parser.add_mutually_exclusive_group()
    where.add_argument("--url", help="postgresql+psycopg://USER@HOST/DB (an empty database)")
    where.add_argument("--postgres", action="store_true", help="start a throwaway PostgreSQL")
    args = parser.parse_args()
    if not 0 < args.measure <= args.entries:
        parser.error("--measure must be between 1 and --entries")
    if args.full_verify_entries < 0:
        parser.error("--full-verify-entries must be 0 (skip) or more")

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

    full_rows, full_note = (
        full_verify(args.full_verify_entries) if args.full_verify_entries else ([], "")
    )
    ms = sorted(x * 1000 for x in latencies)
    p99 = ms[min(len(ms) - 1, int(0.99 * len(ms)))]
    print(f"ledger: {kind}; manifests of {MANIFEST_BYTES} bytes; one signed checkpoint per entry")
    if full_note:
        print(full_note)
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
            *full_rows,
        ]
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
