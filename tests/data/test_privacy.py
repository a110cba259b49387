"""k-anonymity, suppression and histograms (securexport/privacy.py), DESIGN.md §5 and §11."""

from __future__ import annotations

import itertools
from collections.abc import Iterable, Iterator
from decimal import Decimal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from securexport.data.privacy import (
    ClassCounter,
    EntityRunCounter,
    PrivacyOutcome,
    check,
    entity_digest,
    evaluate,
    is_suppressed,
    recompute_k,
)
from securexport.errors import PolicyError
from securexport.policy.approval import Privacy
from tests.support.pycanon_oracle import Pycanon, start_pycanon


def counter_of(rows: Iterable[tuple[tuple[object, ...], object]]) -> ClassCounter:
    counter = ClassCounter()
    for qi, entity in rows:
        counter.add(qi, entity)
    return counter


def privacy(k: int, on_violation: str = "abort", max_fraction: str = "0") -> Privacy:
    return Privacy(
        quasi_identifiers=("a", "b"),
        k=k,
        on_violation=on_violation,  # type: ignore[arg-type]
        max_suppressed_fraction=Decimal(max_fraction),
    )


A = ("1980", "B15")
B = ("1981", "B15")
C = ("1982", "B16")

# 3 people in A (one of them with 3 rows), 2 in B, 1 in C: 9 rows.
HAND_ROWS = [
    (A, "p1"),
    (A, "p1"),
    (A, "p1"),
    (A, "p2"),
    (A, "p3"),
    (B, "p4"),
    (B, "p5"),
    (B, "p5"),
    (C, "p6"),
]


def test_hand_example_abort() -> None:
    counter = counter_of(HAND_ROWS)
    assert counter.matching_rows == 9
    assert len(counter) == 3
    outcome = evaluate(counter, privacy(2))
    assert outcome.k == 2
    assert outcome.matching_rows == 9
    assert outcome.histogram == {1: 1, 2: 1, 3: 1}
    assert outcome.histogram_after == {1: 1, 2: 1, 3: 1}
    assert outcome.small_classes == frozenset({C})
    assert outcome.suppressed_classes == 0
    assert outcome.suppressed_rows == 0
    assert outcome.written_rows == 9
    assert outcome.k_achieved == 1
    assert outcome.suppressed_fraction == Decimal("0.000000")
    assert not is_suppressed(outcome, C)  # abort never suppresses
    with pytest.raises(PolicyError) as info:
        check(outcome, privacy(2))
    err = info.value
    assert err.exit_code == 3
    assert "1 of 3 classes" in err.message
    assert "k=2" in err.message
    assert "abort" in err.message
    assert err.hint
    for value in (*A, *B, *C, "p6"):
        assert value not in err.message
    check(evaluate(counter, privacy(1)), privacy(1))  # k=1: every class passes


def test_hand_example_suppress() -> None:
    counter = counter_of(HAND_ROWS)
    rule = privacy(3, "suppress", "0.5")
    outcome = evaluate(counter, rule)
    assert outcome.histogram == {1: 1, 2: 1, 3: 1}
    assert outcome.histogram_after == {3: 1}
    assert outcome.small_classes == frozenset({B, C})
    assert outcome.suppressed_classes == 2
    assert outcome.suppressed_rows == 4  # B has 3 rows, C has 1
    assert outcome.written_rows == 5
    assert outcome.k_achieved == 3
    assert outcome.suppressed_fraction == Decimal("0.444444")
    assert is_suppressed(outcome, B)
    assert is_suppressed(outcome, C)
    assert not is_suppressed(outcome, A)
    assert not is_suppressed(outcome, ("never", "seen"))
    check(outcome, rule)  # 4/9 <= 0.5
    with pytest.raises(PolicyError) as info:
        check(outcome, privacy(3, "suppress", "0.4"))
    message = info.value.message
    assert "4 of 9 rows" in message
    assert "2 classes" in message
    assert "0.444444" in message
    for value in (*A, *B, *C):
        assert value not in message


def test_everything_suppressed() -> None:
    outcome = evaluate(counter_of(HAND_ROWS), privacy(10, "suppress", "1"))
    assert outcome.k_achieved is None
    assert outcome.written_rows == 0
    assert outcome.histogram_after == {}
    assert outcome.suppressed_fraction == Decimal("1.000000")
    check(outcome, privacy(10, "suppress", "1"))


def test_no_rows() -> None:
    outcome = evaluate(ClassCounter(), privacy(5, "suppress", "0"))
    assert outcome.matching_rows == 0
    assert outcome.k_achieved is None
    assert outcome.histogram == {}
    assert outcome.suppressed_fraction == Decimal("0.000000")
    check(outcome, privacy(5, "suppress", "0"))
    check(evaluate(ClassCounter(), privacy(5)), privacy(5))


def test_entity_counted_once_per_class() -> None:
    counter = counter_of([(A, "p1")] * 10)
    outcome = evaluate(counter, privacy(2))
    assert outcome.histogram == {1: 1}
    assert outcome.k_achieved == 1
    assert outcome.matching_rows == 10
    assert list(counter.classes()) == [(A, 10, 1)]


def test_entity_in_several_classes_counts_in_each() -> None:
    rows = [(A, "p1"), (B, "p1"), (A, "p2"), (B, "p2")]
    outcome = evaluate(counter_of(rows), privacy(2))
    assert outcome.histogram == {2: 2}
    assert outcome.k_achieved == 2
    assert not outcome.small_classes


def test_null_is_a_value_of_its_own() -> None:
    rows = [((None, "x"), 1), ((None, "x"), 2), (("None", "x"), 3), (("", "x"), 4)]
    outcome = evaluate(counter_of(rows), privacy(2))
    assert outcome.histogram == {1: 2, 2: 1}
    assert outcome.small_classes == frozenset({("None", "x"), ("", "x")})


def test_entity_identity_is_its_text_form() -> None:
    # An id read as int from SQLite and as Decimal from PostgreSQL is one person.
    assert entity_digest(5) == entity_digest(Decimal(5)) == entity_digest("5")
    assert entity_digest(None) != entity_digest("None")
    assert entity_digest(b"5") != entity_digest("5")
    assert entity_digest("p1") != entity_digest("p2")
    assert 0 <= entity_digest("p1") < 2**64
    rows = [(A, 5), (A, Decimal(5)), (A, "5"), (A, 6)]
    assert evaluate(counter_of(rows), privacy(1)).histogram == {2: 1}


def test_outcome_repr_shows_no_values() -> None:
    outcome = evaluate(counter_of([(("SECRET-QI",), "p")]), privacy(2, "suppress", "1"))
    assert outcome.small_classes == frozenset({("SECRET-QI",)})
    assert "SECRET-QI" not in repr(outcome)
    assert "SECRET-QI" not in str(outcome)


def _outcome(suppressed: int, matching: int) -> PrivacyOutcome:
    return PrivacyOutcome(
        k=5,
        matching_rows=matching,
        suppressed_rows=suppressed,
        written_rows=matching - suppressed,
        k_achieved=5,
        histogram={1: 1, 5: 1},
        histogram_after={5: 1},
        small_classes=frozenset({("x",)}),
        suppressed_classes=1,
        suppressed_fraction=Decimal(0),
    )


def test_suppressed_fraction_boundary_is_inclusive() -> None:
    rule = privacy(2, "suppress", "0.05")
    # 5 of 100 suppressed: exactly the maximum, allowed
    rows = [((f"big{i // 5}",), f"e{i}") for i in range(95)]
    rows += [((f"solo{i}",), f"s{i}") for i in range(5)]
    outcome = evaluate(counter_of(rows), rule)
    assert outcome.suppressed_rows == 5
    assert outcome.matching_rows == 100
    assert outcome.suppressed_fraction == Decimal("0.050000")
    check(outcome, rule)
    # one more singleton: 6 of 101 > 0.05
    outcome = evaluate(counter_of([*rows, (("solo-extra",), "x")]), rule)
    assert outcome.suppressed_fraction == Decimal("0.059406")
    with pytest.raises(PolicyError):
        check(outcome, rule)


def test_boundary_compares_exactly_not_after_rounding() -> None:
    rule = privacy(5, "suppress", "0.05")
    check(_outcome(500_000, 10_000_000), rule)  # exactly 0.05
    # 0.0500001 rounds to 0.050000 but is above the maximum
    with pytest.raises(PolicyError):
        check(_outcome(500_001, 10_000_000), rule)
    # with max 0, any suppression aborts
    with pytest.raises(PolicyError):
        check(_outcome(1, 10_000_000), privacy(5, "suppress", "0"))
    check(_outcome(0, 10), privacy(5, "suppress", "0"))


@pytest.mark.parametrize(
    ("suppressed", "matching", "expected"),
    [
        (1, 3, "0.333333"),
        (2, 3, "0.666667"),
        (1, 8, "0.125000"),
        (1, 128, "0.007812"),  # 0.0078125 exactly: half to even
        (3, 128, "0.023438"),  # 0.0234375 exactly: half to even
        (7, 7, "1.000000"),
    ],
)
def test_suppressed_fraction_rounding(suppressed: int, matching: int, expected: str) -> None:
    counter = ClassCounter()
    counter.add(("big",), "e")
    for _ in range(matching - suppressed - 1):
        counter.add(("big",), "e")
    for _ in range(suppressed):
        counter.add_invalid_row()
    if matching == suppressed:
        counter = ClassCounter()
        for _ in range(matching):
            counter.add_invalid_row()
    outcome = evaluate(counter, privacy(1, "suppress", "1"))
    assert outcome.matching_rows == matching
    assert outcome.suppressed_rows == suppressed
    assert str(outcome.suppressed_fraction) == expected


def test_invalid_rows_count_as_matching_and_suppressed() -> None:
    counter = counter_of([(A, "p1"), (A, "p2")])
    counter.add_invalid_row()
    counter.add_invalid_row()
    assert counter.matching_rows == 4
    assert counter.invalid_rows == 2
    rule = privacy(2, "suppress", "0.5")
    outcome = evaluate(counter, rule)
    assert outcome.invalid_rows == 2
    assert outcome.suppressed_rows == 2
    assert outcome.written_rows == 2
    assert outcome.histogram == {2: 1}
    check(outcome, rule)
    with pytest.raises(PolicyError, match="dropped as invalid"):
        check(outcome, privacy(2, "suppress", "0.4"))


def test_recompute_k_with_and_without_entity() -> None:
    rows = [
        ("e1", "2024", "B15"),
        ("e1", "2024", "B15"),
        ("e2", "2024", "B15"),
        ("e3", "2025", None),
        ("e4", "2025", None),
        ("e5", "2025", None),
    ]
    by_entity = recompute_k(rows, 0, (1, 2))
    assert by_entity.k == 2
    assert by_entity.classes == 2
    assert by_entity.rows == 6
    assert by_entity.histogram == {2: 1, 3: 1}
    assert by_entity.counted == "entities"
    by_row = recompute_k(iter(rows), None, [1, 2])
    assert by_row.k == 3
    assert by_row.histogram == {3: 2}
    assert by_row.counted == "rows"
    empty = recompute_k([], None, [0])
    assert empty.k is None
    assert empty.classes == 0


# --------------------------------------------------------------------------- pycanon oracle


@pytest.fixture(scope="session")
def pycanon() -> Iterator[Pycanon]:
    """pycanon in its own environment (tests/support/pycanon_oracle.py), one process a session."""
    oracle = start_pycanon()
    yield oracle
    oracle.close()


QI_VALUES = st.sampled_from(["a", "b", "c", "", "1"])


@settings(max_examples=200, deadline=None)
@given(
    table=st.lists(st.tuples(QI_VALUES, QI_VALUES, QI_VALUES), min_size=1, max_size=40),
    width=st.integers(1, 3),
)
def test_min_class_size_matches_pycanon(
    pycanon: Pycanon, table: list[tuple[str, str, str]], width: int
) -> None:
    names = ["q0", "q1", "q2"][:width]
    expected = pycanon.k_anonymity([row[:width] for row in table], names)

    counter = counter_of((row[:width], n) for n, row in enumerate(table))
    outcome = evaluate(counter, privacy(1))
    assert outcome.k_achieved == expected
    assert min(outcome.histogram) == expected
    assert sum(size * count for size, count in outcome.histogram.items()) == len(table)
    assert recompute_k(table, None, range(width)).k == expected

    # After suppression at k = expected + 1, every class left is at least that large.
    rule = privacy(expected + 1, "suppress", "1")
    after = evaluate(counter, rule)
    kept = [row[:width] for row in table if not is_suppressed(after, row[:width])]
    assert len(kept) == after.written_rows
    if kept:
        assert pycanon.k_anonymity(kept, names) == after.k_achieved
        assert after.k_achieved is not None
        assert after.k_achieved >= expected + 1
    else:
        assert after.k_achieved is None


# ------------------------------------ pycanon oracle: several rows per entity, NULL values

# pandas' groupby drops keys that are None/NaN (dropna=True), and pycanon groups without
# dropna=False: rows with a NULL quasi-identifier fall out of its classes altogether (pinned by
# the next test).  DESIGN.md §5 makes NULL a value of its own, so the oracle's input writes
# NULL as a sentinel that no sampled value can equal.  pycanon counts rows, while securexport
# counts distinct entities per class: the oracle's input is the distinct (entity, class) pairs,
# where rows and entities coincide.  (The sentinel is printable: pandas 2.3's groupby put
# "\x00NULL" and "" in one group, as if the string ended at the NUL.)
NULL_SENTINEL = "<NULL>"
# NULL beside the strings that a careless implementation could confuse with it.
QI_OR_NULL = st.one_of(st.none(), st.sampled_from(["a", "b", "", "None", "null"]))
ENTITIES = st.sampled_from([f"p{i}" for i in range(10)])

QIRow = tuple[str, tuple[str | None, ...]]


def test_pycanon_drops_null_classes_hence_the_sentinel(pycanon: Pycanon) -> None:
    assert pycanon.k_anonymity([["a"], ["a"], [None]], ["q0"]) == 2  # the NULL class is not seen
    assert pycanon.k_anonymity([["a"], ["a"], [NULL_SENTINEL]], ["q0"]) == 1


def _pycanon_k(pycanon: Pycanon, pairs: set[tuple[str, tuple[str | None, ...]]], width: int) -> int:
    rows = [[NULL_SENTINEL if v is None else v for v in qi] for _, qi in sorted(pairs, key=repr)]
    return pycanon.k_anonymity(rows, [f"q{i}" for i in range(width)])


def _by_hand(rows: list[QIRow]) -> tuple[dict[int, int], dict[tuple[str | None, ...], int]]:
    """Histogram (size → classes, size = distinct entities) and rows per class, plainly."""
    members: dict[tuple[str | None, ...], set[str]] = {}
    row_counts: dict[tuple[str | None, ...], int] = {}
    for entity, qi in rows:
        members.setdefault(qi, set()).add(entity)
        row_counts[qi] = row_counts.get(qi, 0) + 1
    histogram: dict[int, int] = {}
    for people in members.values():
        histogram[len(people)] = histogram.get(len(people), 0) + 1
    return dict(sorted(histogram.items())), row_counts


def _entity_run_counter(rows: list[QIRow], cuts: list[int]) -> EntityRunCounter:
    """The export's counter: rows grouped by entity (as its ORDER BY gives them), in batches."""
    grouped = sorted(rows, key=lambda row: row[0])  # stable: keeps each entity's row order
    counter = EntityRunCounter()
    bounds = [0, *sorted({c % (len(grouped) + 1) for c in cuts}), len(grouped)]
    for start, end in itertools.pairwise(bounds):
        batch = grouped[start:end]
        counter.add_rows([e for e, _ in batch], [qi for _, qi in batch])
    return counter


@settings(max_examples=200, deadline=None)
@given(
    table=st.lists(
        st.tuples(ENTITIES, st.tuples(QI_OR_NULL, QI_OR_NULL, QI_OR_NULL)), min_size=1, max_size=60
    ),
    width=st.integers(1, 3),
    cuts=st.lists(st.integers(0, 60), max_size=4),
)
def test_k_by_entity_with_nulls_matches_pycanon(
    pycanon: Pycanon,
    table: list[tuple[str, tuple[str | None, str | None, str | None]]],
    width: int,
    cuts: list[int],
) -> None:
    rows: list[QIRow] = [(entity, qi[:width]) for entity, qi in table]
    pairs = set(rows)
    expected_k = _pycanon_k(pycanon, pairs, width)
    histogram, row_counts = _by_hand(rows)
    assert min(histogram) == expected_k  # the two oracles agree with each other

    counter = counter_of((qi, entity) for entity, qi in rows)
    run_counter = _entity_run_counter(rows, cuts)
    for count in (counter, run_counter):
        assert count.matching_rows == len(rows)
        assert {qi: (n, size) for qi, n, size in count.classes()} == {
            qi: (row_counts[qi], len({e for e, q in pairs if q == qi})) for qi in row_counts
        }
        outcome = evaluate(count, privacy(1))
        assert outcome.k_achieved == expected_k
        assert outcome.histogram == histogram
        assert outcome.classes == len(row_counts)

    # The export's two processes count disjoint sets of entities and add their states up.
    odd = [row for row in rows if int(row[0][1:]) % 2]
    merged = _entity_run_counter([row for row in rows if not int(row[0][1:]) % 2], cuts)
    merged.absorb(*_entity_run_counter(odd, cuts).state())
    assert sorted(merged.classes(), key=repr) == sorted(run_counter.classes(), key=repr)

    # Suppression at k = expected + 1 drops whole classes (every row of them); what is left has
    # k >= expected + 1 by pycanon over its (entity, class) pairs.
    rule = privacy(expected_k + 1, "suppress", "1")
    for count in (counter, run_counter):
        after = evaluate(count, rule)
        kept = [row for row in rows if not is_suppressed(after, row[1])]
        assert after.written_rows == len(kept)
        assert after.suppressed_rows == sum(
            n for qi, n in row_counts.items() if len({e for e, q in pairs if q == qi}) <= expected_k
        )
        if kept:
            assert after.k_achieved == _pycanon_k(pycanon, set(kept), width)
            assert after.k_achieved >= expected_k + 1
        else:
            assert after.k_achieved is None
        # Under abort nothing is suppressed, and the smallest class refuses the run.
        aborting = evaluate(count, privacy(expected_k + 1))
        assert aborting.suppressed_rows == 0
        with pytest.raises(PolicyError):
            check(aborting, privacy(expected_k + 1))
