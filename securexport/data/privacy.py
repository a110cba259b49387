"""k-anonymity over the quasi-identifiers: classes, suppression, histograms (DESIGN.md §5, §11).

A *class* is one combination of the quasi-identifiers' output values (NULL, ``None``, is a value
of its own).  Its *size* is the number of distinct entities (people) with a row in it; an
entity whose rows fall in several classes counts in each.  The export reads one snapshot once:
the read feeds a counter, :func:`evaluate` and :func:`check` decide, and the replay of the
spooled rows writes every row whose class is not suppressed (securexport.pipeline).

Memory grows with the number of classes and of (class, entity) pairs, never with the row
payload: an entity is held as an 8-byte digest of its text form.  A digest collision can only
merge two entities, which makes a class look smaller, never larger: the error is on the safe side.

Messages never contain values, only counts.  Nothing here does I/O.
"""

from __future__ import annotations

import hashlib
from collections import Counter, _count_elements  # type: ignore[attr-defined]
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from fractions import Fraction
from itertools import compress, islice
from operator import eq

from securexport.data.transforms import to_text
from securexport.errors import PolicyError
from securexport.policy.approval import Privacy

__all__ = [
    "ClassCounter",
    "ClassSizes",
    "EntityRunCounter",
    "PrivacyOutcome",
    "check",
    "entity_digest",
    "evaluate",
    "is_suppressed",
    "recompute_k",
]

QI = tuple[object, ...]

_HINT = (
    "run `securexport approval plan` to see the class-size histogram; the data owner can "
    "coarsen the quasi-identifiers, narrow the filters or allow more suppression"
)


def entity_digest(entity: object) -> int:
    """An 8-byte digest of an entity's text form (``None`` is one entity of its own)."""
    if entity is None:
        data = b"n"
    elif isinstance(entity, bytes | bytearray | memoryview):
        data = b"b" + bytes(entity)
    else:
        try:
            text = to_text(entity)
        except PolicyError:
            text = str(entity)
        assert text is not None
        data = b"t" + text.encode("utf-8", "surrogatepass")
    return int.from_bytes(hashlib.blake2b(data, digest_size=8).digest(), "big")


class ClassCounter:
    """Counts rows and distinct entities per class, one row at a time, in any row order."""

    __slots__ = ("_classes", "_invalid_rows", "_rows")

    def __init__(self) -> None:
        # class → [rows, set of entity digests]
        self._classes: dict[QI, tuple[list[int], set[int]]] = {}
        self._rows = 0
        self._invalid_rows = 0

    def add(self, qi: QI, entity: object) -> None:
        """Count one row: ``qi`` holds the quasi-identifiers' output values in approval order."""
        entry = self._classes.get(qi)
        if entry is None:
            entry = self._classes[qi] = ([0], set())
        entry[0][0] += 1
        entry[1].add(entity_digest(entity))
        self._rows += 1

    def add_invalid_row(self) -> None:
        """Count a matching row dropped by ``on_invalid = "suppress_row"`` (it is in no class).

        It counts as matching and as suppressed, so it weighs on ``max_suppressed_fraction``.
        """
        self._rows += 1
        self._invalid_rows += 1

    @property
    def matching_rows(self) -> int:
        """Every row counted, including rows dropped as invalid."""
        return self._rows

    @property
    def invalid_rows(self) -> int:
        return self._invalid_rows

    def __len__(self) -> int:
        """The number of classes."""
        return len(self._classes)

    def classes(self) -> Iterable[tuple[QI, int, int]]:
        """``(qi, rows, size)`` per class, size being the number of distinct entities."""
        for qi, (rows, entities) in self._classes.items():
            yield qi, rows[0], len(entities)


class EntityRunCounter:
    """:class:`ClassCounter` for rows that arrive grouped by entity (the export's ORDER BY).

    All rows of one entity are contiguous, so distinct entities per class are counted with the
    set of classes of the current entity only: memory grows with the number of classes, not
    with entities or rows.  Entities are compared with ``==`` (as SQL groups them: values
    that SQL and Python both call equal, such as ``1`` and ``1.0``, are one entity; merging can
    only make a class look smaller).  If the source broke the grouping (a nondeterministic
    collation, mixed value types in an untyped SQLite column), an entity would count once per
    run; docs/performance.md says why the query's order rules that out.
    """

    __slots__ = ("_current", "_invalid_rows", "_repeats", "_rows", "_seen", "_started")

    def __init__(self) -> None:
        self._rows: dict[QI, int] = {}
        self._repeats: dict[QI, int] = {}  # rows of a class whose entity was counted in it
        self._seen: set[QI] = set()  # classes of the current entity
        self._current: object = None
        self._started = False
        self._invalid_rows = 0

    def add_rows(self, entities: Sequence[object], qis: Sequence[QI]) -> None:
        """Count rows (in query order): ``qis[i]`` is row i's class, ``entities[i]`` its entity.

        Rows are counted per class in C (``collections.Counter``'s helper); entities per class
        are rows less repeats, and only the rows that continue the previous row's entity (a
        minority: most people have one row) are looked at for repeats.
        """
        n = len(entities)
        if n != len(qis):
            raise ValueError("entities and qis differ in length")
        if not n:
            return
        repeats = self._repeats
        _count_elements(self._rows, qis)
        # continues[i]: row i has the previous row's entity (row 0: the last batch's last row)
        continues = [self._started and entities[0] == self._current]
        continues += map(eq, islice(entities, 1, None), entities)
        seen = self._seen
        for i in compress(range(n), continues):
            if i and not continues[i - 1]:
                seen = {qis[i - 1]}  # the run started on the row before
            qi = qis[i]
            if qi in seen:
                repeats[qi] = repeats.get(qi, 0) + 1
            else:
                seen.add(qi)
        self._seen = seen if continues[-1] else {qis[-1]}
        self._current, self._started = entities[-1], True

    def add_invalid_row(self) -> None:
        """As :meth:`ClassCounter.add_invalid_row`."""
        self._invalid_rows += 1

    def state(self) -> tuple[dict[QI, int], dict[QI, int], int]:
        """Rows per class, distinct entities per class, invalid rows (for :meth:`absorb`)."""
        rows, repeats = self._rows, self._repeats
        return (
            dict(rows),
            {qi: n - repeats.get(qi, 0) for qi, n in rows.items()},
            self._invalid_rows,
        )

    def absorb(self, rows: dict[QI, int], entities: dict[QI, int], invalid_rows: int) -> None:
        """Add another counter's :meth:`state`.  Exact only when the two counted disjoint
        sets of entities (the export's parts, split by entity value)."""
        for qi, n in rows.items():
            self._rows[qi] = self._rows.get(qi, 0) + n
        for qi, n in entities.items():  # entities = rows - repeats
            self._repeats[qi] = self._repeats.get(qi, 0) + rows[qi] - n
        self._invalid_rows += invalid_rows

    @property
    def matching_rows(self) -> int:
        return sum(self._rows.values()) + self._invalid_rows

    @property
    def invalid_rows(self) -> int:
        return self._invalid_rows

    def __len__(self) -> int:
        return len(self._rows)

    def classes(self) -> Iterable[tuple[QI, int, int]]:
        """``(qi, rows, size)`` per class, size being the number of distinct entities."""
        repeats = self._repeats
        for qi, rows in self._rows.items():
            yield qi, rows, rows - repeats.get(qi, 0)


@dataclass(frozen=True)
class PrivacyOutcome:
    """The verdict of the count; everything but ``small_classes`` is counts only."""

    k: int
    matching_rows: int
    suppressed_rows: int  # rows of suppressed classes, plus rows dropped as invalid
    written_rows: int
    k_achieved: int | None  # smallest class left after suppression; None when none is left
    histogram: dict[int, int]  # class size → number of classes, before suppression
    histogram_after: dict[int, int]  # the same over the classes that are written
    # Classes smaller than k (they hold output values: never print them, hence repr=False).
    small_classes: frozenset[QI] = field(repr=False)
    suppressed_classes: int  # classes dropped (0 under on_violation = "abort")
    suppressed_fraction: Decimal  # suppressed_rows / matching_rows, rounded to 6 places
    invalid_rows: int = 0  # rows dropped by on_invalid = "suppress_row" (in suppressed_rows)

    @property
    def classes(self) -> int:
        return sum(self.histogram.values())


def _histogram(sizes: Iterable[int]) -> dict[int, int]:
    return dict(sorted(Counter(sizes).items()))


def _fraction6(numerator: int, denominator: int) -> Decimal:
    """numerator / denominator rounded (half to even) to 6 decimal places, computed exactly."""
    if denominator == 0:
        return Decimal("0.000000")
    millionths = round(Fraction(numerator, denominator) * 1_000_000)
    return (Decimal(millionths) / Decimal(1_000_000)).quantize(Decimal("0.000001"))


def evaluate(counter: ClassCounter | EntityRunCounter, privacy: Privacy) -> PrivacyOutcome:
    """Class sizes, histograms and what ``privacy.on_violation`` would suppress."""
    k = privacy.k
    sizes: list[int] = []
    small: set[QI] = set()
    small_rows = 0
    after: list[int] = []
    suppress = privacy.on_violation == "suppress"
    for qi, rows, size in counter.classes():
        sizes.append(size)
        if size < k:
            small.add(qi)
            small_rows += rows
            if suppress:
                continue
        after.append(size)
    suppressed_rows = counter.invalid_rows + (small_rows if suppress else 0)
    return PrivacyOutcome(
        k=k,
        matching_rows=counter.matching_rows,
        suppressed_rows=suppressed_rows,
        written_rows=counter.matching_rows - suppressed_rows,
        k_achieved=min(after) if after else None,
        histogram=_histogram(sizes),
        histogram_after=_histogram(after),
        small_classes=frozenset(small),
        suppressed_classes=len(small) if suppress else 0,
        suppressed_fraction=_fraction6(suppressed_rows, counter.matching_rows),
        invalid_rows=counter.invalid_rows,
    )


def check(outcome: PrivacyOutcome, privacy: Privacy) -> None:
    """Raise PolicyError (exit 3) when the approval's privacy rule refuses this run.

    ``abort``: any class smaller than k.  ``suppress``: suppressed rows / matching rows above
    ``max_suppressed_fraction`` (compared exactly, not after rounding; equality passes).
    """
    if privacy.on_violation == "abort":
        if outcome.small_classes:
            smallest = min(size for size in outcome.histogram if size < privacy.k)
            raise PolicyError(
                f"k-anonymity: {len(outcome.small_classes)} of {outcome.classes} classes have "
                f"fewer than k={privacy.k} distinct entities (smallest: {smallest}), and the "
                'approval says on_violation = "abort"',
                hint=_HINT,
            )
        return
    if outcome.matching_rows and Fraction(
        outcome.suppressed_rows, outcome.matching_rows
    ) > Fraction(privacy.max_suppressed_fraction):
        invalid = (
            f" (including {outcome.invalid_rows} dropped as invalid)"
            if outcome.invalid_rows
            else ""
        )
        raise PolicyError(
            f"k-anonymity: suppressing {outcome.suppressed_classes} classes smaller than "
            f"k={privacy.k} would drop {outcome.suppressed_rows} of {outcome.matching_rows} "
            f"rows{invalid}, a fraction of {outcome.suppressed_fraction}, above "
            f"max_suppressed_fraction = {privacy.max_suppressed_fraction}",
            hint=_HINT,
        )


def is_suppressed(outcome: PrivacyOutcome, qi: QI) -> bool:
    """Whether the export drops rows of class ``qi`` (always False under ``abort``)."""
    return bool(outcome.suppressed_classes) and qi in outcome.small_classes


@dataclass(frozen=True)
class ClassSizes:
    """k recomputed from the rows written (decrypt-side verification, DESIGN.md §8.4)."""

    k: int | None  # the smallest class size; None when there are no rows
    classes: int
    rows: int
    histogram: dict[int, int]
    counted: str  # "entities" or "rows" (see recompute_k)


def recompute_k(
    rows: Iterable[Sequence[object]],
    entity_index: int | None,
    qi_indexes: Sequence[int],
) -> ClassSizes:
    """Class sizes over rows read back from a payload (cells as text, ``None`` for NULL).

    With ``entity_index`` (the output column that carries the entity, e.g. its pseudonym: a
    one-to-one mapping, so the sizes are exact) distinct entities are counted.  Without it
    (the approval does not export the entity) every row counts as its own entity; since a
    class has at least as many rows as entities, that can only overstate k, so a result at or
    above the approved k is then *consistent* with the approval, not proof of it.  A result
    below k is always a violation.
    """
    counter = ClassCounter()
    qi_indexes = tuple(qi_indexes)
    for n, row in enumerate(rows):
        qi = tuple(row[i] for i in qi_indexes)
        counter.add(qi, row[entity_index] if entity_index is not None else n)
    sizes = [size for _, _, size in counter.classes()]
    return ClassSizes(
        k=min(sizes) if sizes else None,
        classes=len(sizes),
        rows=counter.matching_rows,
        histogram=_histogram(sizes),
        counted="entities" if entity_index is not None else "rows",
    )
