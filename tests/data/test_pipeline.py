"""The fast data path keeps the row-at-a-time path's results (securexport/pipeline.py)."""

from __future__ import annotations

import random
from datetime import date
from decimal import Decimal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from securexport.data import pipeline
from securexport.data.privacy import ClassCounter, EntityRunCounter


@settings(max_examples=300, deadline=None)
@given(
    rows=st.lists(
        st.tuples(st.integers(0, 12), st.tuples(st.sampled_from("ab"), st.integers(0, 2))),
        max_size=80,
    ),
    cuts=st.lists(st.integers(1, 9), min_size=1, max_size=20),
)
def test_entity_run_counter_equals_class_counter_for_any_batching(
    rows: list[tuple[int, tuple[str, int]]], cuts: list[int]
) -> None:
    rows = sorted(rows, key=lambda r: r[0])  # grouped by entity, classes in any order
    reference = ClassCounter()
    for entity, qi in rows:
        reference.add(qi, entity)
    fast = EntityRunCounter()
    start, k = 0, 0
    while start < len(rows):
        chunk = rows[start : start + cuts[k % len(cuts)]]
        fast.add_rows([e for e, _ in chunk], [q for _, q in chunk])
        start += len(chunk)
        k += 1
    fast.add_rows([], [])
    assert sorted(fast.classes()) == sorted(reference.classes())


def test_entity_run_counter_matches_class_counter_on_grouped_rows() -> None:
    rng = random.Random(5)
    rows = sorted(
        (f"E{rng.randrange(300):04d}", (rng.choice("ab"), rng.randrange(3))) for _ in range(2000)
    )
    reference = ClassCounter()
    for entity, qi in rows:
        reference.add(qi, entity)
    fast = EntityRunCounter()
    for start in range(0, len(rows), 37):  # batches split entities across boundaries
        chunk = rows[start : start + 37]
        fast.add_rows([e for e, _ in chunk], [q for _, q in chunk])
    assert sorted(fast.classes()) == sorted(reference.classes())
    assert fast.matching_rows == reference.matching_rows == 2000


def test_memo_never_answers_for_an_equal_value_of_another_type() -> None:
    calls: list[object] = []

    def text(value: object) -> object:
        calls.append(value)
        return repr(value)

    memo: dict[object, object] = {}
    out = pipeline._apply(text, memo, ["1", 1, 1.0, Decimal("1.0"), True, "1", date(2020, 1, 1)])
    assert out == ["'1'", "1", "1.0", "Decimal('1.0')", "True", "'1'", "datetime.date(2020, 1, 1)"]
    assert set(memo) == {"1", date(2020, 1, 1)}  # numbers are never stored
    calls.clear()
    assert pipeline._apply(text, memo, ["1", 1]) == ["'1'", "1"]
    assert calls == [1]  # the str came from the memo, the int was computed again


def test_memo_is_bounded(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(pipeline, "_MEMO_LIMIT", 10)
    memo: dict[object, object] = {}
    assert pipeline._apply(str.upper, memo, [f"v{i}" for i in range(100)])[99] == "V99"  # type: ignore[arg-type]
    assert len(memo) == 10


def test_writer_thread_reraises_the_write_error() -> None:
    class Broken:
        def write_bytes(self, data: bytes) -> None:
            raise OSError("disk full")

    sink = pipeline._WriterThread(Broken())
    sink.write(b"x")
    with pytest.raises(OSError, match="disk full"):
        for _ in range(100):
            sink.write(b"y")
        sink.finish()


def test_int_memo_only_for_batches_of_exact_ints() -> None:
    calls: list[object] = []

    def text(value: object) -> object:
        calls.append(value)
        return repr(value)

    memo: dict[object, object] = {}
    ints: dict[object, object] = {}
    assert pipeline._apply(text, memo, [1, 2, 1, None], ints) == ["1", "2", "1", "None"]
    assert set(ints) == {1, 2, None} and not memo
    calls.clear()
    # True, 1.0 and Decimal("1") equal 1 but must never be answered from the int memo.
    assert pipeline._apply(text, memo, [True, 1.0, Decimal("1"), 1], ints) == [
        "True",
        "1.0",
        "Decimal('1')",
        "1",
    ]
    assert calls == [True, 1.0, Decimal("1"), 1]


def test_postcode_written_form_fast_path_matches_the_normalised_path() -> None:
    from securexport.data import transforms

    rng = random.Random(7)
    checked = 0
    for _ in range(50_000):
        parts = [rng.choice("AGIRZ9") for _ in range(rng.randrange(1, 4))]
        parts += [rng.choice(["", " "]), rng.choice("0A9I"), rng.choice("AR0"), rng.choice("AR0")]
        value = "".join(parts)
        w = transforms._POSTCODE_WRITTEN.fullmatch(value)
        if w is None:
            continue
        m = transforms._POSTCODE.fullmatch(value.replace(" ", ""))
        assert m is not None and m.groups()[:3] == w.groups(), value
        checked += 1
    assert checked > 1000
