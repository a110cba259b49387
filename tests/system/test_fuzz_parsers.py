"""Fuzzing the parsers of untrusted bytes: bundle reader, manifest, approval, receipt.

Random damage to real artefacts (tests/adversarial/fuzz_targets.py) must only ever raise a
SecurexportError subclass — never another exception — and must not hang (a deadline per
example).  ``make fuzz`` (scripts/fuzz.py) runs the same targets for longer.
"""

from __future__ import annotations

import random
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from securexport.errors import SecurexportError
from tests.adversarial.fuzz_targets import TARGETS, Seeds, make_seeds, mutate
from tests.adversarial.registry import RecordProperty

EXAMPLES = 300


@pytest.fixture(scope="module")
def seeds(tmp_path_factory: pytest.TempPathFactory) -> Seeds:
    return make_seeds(tmp_path_factory.mktemp("fuzz-seeds"))


@pytest.mark.parametrize("name", sorted(TARGETS))
def test_mutations_raise_only_securexport_errors(
    name: str, seeds: Seeds, record_property: RecordProperty
) -> None:
    target, seed_of = TARGETS[name]
    seed = seed_of(seeds)
    target(seeds, seed)  # the unmutated seed is accepted
    executions = 0

    @settings(
        max_examples=EXAMPLES,
        deadline=2000,
        derandomize=True,
        database=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
    )
    @given(rng=st.randoms(use_true_random=False))
    def run(rng: random.Random) -> None:
        nonlocal executions
        executions += 1
        try:
            target(seeds, mutate(rng, seed))
        except SecurexportError:
            pass

    run()
    record_property("fuzz_executions", executions)


@pytest.mark.parametrize("name", sorted(TARGETS))
def test_random_bytes_raise_only_securexport_errors(
    name: str, seeds: Seeds, tmp_path: Path
) -> None:
    target, _ = TARGETS[name]
    rng = random.Random(name)
    for size in (0, 1, 22, 100, 4096):
        try:
            target(seeds, rng.randbytes(size))
        except SecurexportError:
            pass
