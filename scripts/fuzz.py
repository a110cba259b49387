"""Fuzz securexport's parsers of untrusted bytes for a set time (``make fuzz``).

Runs the targets of tests/adversarial/fuzz_targets.py (bundle reader, manifest, approval,
signed approval, receipt) in a mutation loop over real artefacts: any exception that is not a
SecurexportError, or an input slower than ``--hang`` seconds, is a crash and is saved under
``--out`` for replay.  Prints executions and crashes per target; exits 1 if any crash was found.

    python scripts/fuzz.py --seconds 60
    python scripts/fuzz.py --seconds 600 --target bundle --seed 7
"""

from __future__ import annotations

import argparse
import hashlib
import random
import sys
import tempfile
import time
import traceback
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from securexport.errors import SecurexportError  # noqa: E402
from tests.adversarial.fuzz_targets import TARGETS, make_seeds, mutate  # noqa: E402


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=60.0, help="total time (default 60)")
    parser.add_argument("--target", choices=sorted(TARGETS), action="append", help="only these")
    parser.add_argument("--seed", type=int, default=None, help="random seed (default: random)")
    parser.add_argument("--hang", type=float, default=2.0, help="seconds that count as a hang")
    parser.add_argument("--out", type=Path, default=REPO / ".cache" / "fuzz-crashes")
    args = parser.parse_args(argv)

    seed = args.seed if args.seed is not None else random.SystemRandom().randrange(2**32)
    rng = random.Random(seed)
    names = args.target or sorted(TARGETS)
    with tempfile.TemporaryDirectory(prefix="securexport-fuzz-") as tmp:
        seeds = make_seeds(Path(tmp) / "seeds")
        corpus = {name: [TARGETS[name][1](seeds)] for name in names}
        stats = {name: [0, 0] for name in names}  # executions, crashes
        deadline = time.monotonic() + args.seconds
        print(f"fuzz: seed {seed}, {args.seconds:g} s, targets {', '.join(names)}", flush=True)
        while time.monotonic() < deadline:
            name = names[stats_index(stats, names)]
            target = TARGETS[name][0]
            data = mutate(rng, rng.choice(corpus[name]))
            stats[name][0] += 1
            started = time.monotonic()
            crash: str | None = None
            try:
                target(seeds, data)
                if len(corpus[name]) < 64:
                    corpus[name].append(data)  # accepted inputs seed further mutations
            except SecurexportError:
                pass
            except Exception:
                crash = traceback.format_exc()
            if crash is None and time.monotonic() - started > args.hang:
                crash = f"hang: {time.monotonic() - started:.1f} s"
            if crash is not None:
                stats[name][1] += 1
                args.out.mkdir(parents=True, exist_ok=True)
                path = args.out / f"{name}-{hashlib.sha256(data).hexdigest()[:16]}.bin"
                path.write_bytes(data)
                print(f"fuzz: CRASH in {name}, input saved to {path}\n{crash}", flush=True)
    total = sum(e for e, _ in stats.values())
    crashes = sum(c for _, c in stats.values())
    for name in names:
        print(f"fuzz: {name}: {stats[name][0]} executions, {stats[name][1]} crashes")
    print(f"fuzz: {total} executions, {crashes} crashes (seed {seed})")
    return 1 if crashes else 0


def stats_index(stats: dict[str, list[int]], names: list[str]) -> int:
    """Round-robin by executions, so slow targets get their share of inputs, not of time."""
    return min(range(len(names)), key=lambda i: stats[names[i]][0])


if __name__ == "__main__":
    raise SystemExit(main())
