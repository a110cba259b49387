"""The plaintext check of decrypt (securexport/bundle/plaintext.py, DESIGN.md §8.4).

The block-at-a-time fast path must accept and refuse exactly what the row-by-row check
(kept below as ``reference_check``, the implementation before the fast path) accepts and
refuses, with the same message (an invalid-UTF-8 file may name another row: where a decoder
notices it depends on buffering in both implementations).
"""

from __future__ import annotations

import csv
import os
from collections import defaultdict
from collections.abc import Callable
from pathlib import Path
from types import SimpleNamespace
from typing import Any, cast

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from securexport.bundle import plaintext as content
from securexport.data.transforms import cell_alphabet, cell_validator
from securexport.errors import VerificationError
from securexport.limits import Limits
from securexport.policy.approval import Approval, Column, Privacy

PSEUDONYM = Column("offender", "offender_id", "pseudonym")
COLUMNS = (
    PSEUDONYM,
    Column("birth_year", "dob", "date_trunc", {"granularity": "year"}),
    Column("district", "postcode", "postcode_trunc", {"level": "area"}),
    Column("convictions", "n", "top_code", {"max": 30}),
    Column("note", "note", "keep"),
    Column("release_quarter", "released", "date_trunc", {"granularity": "quarter"}),
)
QI = ("birth_year", "district", "release_quarter")


def approval(
    columns: tuple[Column, ...] = COLUMNS,
    qi: tuple[str, ...] | None = QI,
    k: int = 2,
    row_cap: int = 1_000_000,
    entity: str = "offender_id",
) -> Approval:
    privacy = Privacy(quasi_identifiers=qi, k=k) if qi is not None else None
    return cast(
        Approval,
        SimpleNamespace(
            columns=columns,
            privacy=privacy,
            entity=entity,
            row_cap=row_cap,
            output_format="csv",
        ),
    )


# ------------------------------------------------------------------ the oracle (before)


def reference_check(path: Path, appr: Any, expected_rows: int) -> dict[str, object]:
    def rows_of() -> Any:
        with open(path, encoding="utf-8", newline="") as fh:
            for row in csv.reader(fh, strict=True):
                yield [cell if cell != "" else None for cell in row]

    names = [col.name for col in appr.columns]
    validators = [cell_validator(col) for col in appr.columns]
    rows = rows_of()
    try:
        header = next(rows)
    except StopIteration:
        raise VerificationError("payload file is empty: no header row") from None
    except (csv.Error, UnicodeDecodeError) as exc:
        raise VerificationError("payload file is not valid UTF-8 CSV") from exc
    if header != names:
        raise VerificationError("payload header is not exactly the approved column names")
    privacy = appr.privacy
    qi_index = [names.index(q) for q in privacy.quasi_identifiers] if privacy else []
    entity_col = next(
        (
            i
            for i, col in enumerate(appr.columns)
            if col.source == appr.entity and col.transform in ("pseudonym", "keep")
        ),
        None,
    )
    class_entities: dict[tuple[Any, ...], set[Any]] = defaultdict(set)
    class_rows: dict[tuple[Any, ...], int] = defaultdict(int)
    count = 0
    try:
        for count, row in enumerate(rows, start=1):
            if count > expected_rows or count > appr.row_cap:
                raise VerificationError(
                    "payload holds more rows than the manifest states or the approval allows"
                )
            if len(row) != len(names):
                raise VerificationError(
                    f"payload row {count} has {len(row)} fields, expected {len(names)}"
                )
            for index, (cell, ok) in enumerate(zip(row, validators, strict=True)):
                if not ok(cell):
                    raise VerificationError(
                        f"payload row {count}, column {names[index]!r}: value is not what "
                        f"transform {appr.columns[index].transform} produces"
                    )
            if privacy:
                key = tuple(row[i] for i in qi_index)
                if entity_col is not None:
                    class_entities[key].add(row[entity_col])
                else:
                    class_rows[key] += 1
    except (csv.Error, UnicodeDecodeError) as exc:
        raise VerificationError(f"payload row {count + 1} is not valid UTF-8 CSV") from exc
    if count != expected_rows:
        raise VerificationError(
            f"payload holds {count} rows but the manifest states {expected_rows}"
        )
    k_found = None
    sizes = [len(m) for m in class_entities.values()] or list(class_rows.values())
    if privacy and sizes:
        k_found = min(sizes)
        if k_found < privacy.k:
            raise VerificationError(
                f"payload breaks k-anonymity: a class of size {k_found} is below k={privacy.k}"
            )
    return {"rows": count, "k_recomputed": k_found, "entity_counted": entity_col is not None}


def outcome(fn: Callable[..., dict[str, object]], *args: Any) -> tuple[str, object]:
    try:
        return "ok", fn(*args)
    except VerificationError as exc:
        return "refused", str(exc)


# At most 2 distinct (class, entity) pairs in memory: any payload of 3 rows or more counts k
# through the encrypted scratch files.
SPILLING = Limits(max_k_pairs_in_memory=2)


def same_outcome(path: Path, appr: Approval, expected: int, data: bytes) -> None:
    got = outcome(content.check_plaintext, path, appr, expected)
    want = outcome(reference_check, path, appr, expected)
    # Counting k through scratch files changes nothing that is accepted or refused.
    assert outcome(content.check_plaintext, path, appr, expected, SPILLING) == got
    try:
        data.decode("utf-8")
    except UnicodeDecodeError:
        assert got[0] == want[0] == "refused"
        assert "UTF-8" in str(got[1])
        assert "UTF-8" in str(want[1])
        return
    assert got == want


# ------------------------------------------------------------------ cells

ALPHABET = "abcdefghijklmnopqrstuvwxyz234567"
PSEUDO_ISH = st.one_of(
    st.text(alphabet=ALPHABET, min_size=25, max_size=27),
    st.text(alphabet=ALPHABET + "AZ0189-é\u0131", min_size=0, max_size=28),
    st.builds(
        lambda body, last: body + last,
        st.text(alphabet=ALPHABET, min_size=25, max_size=25),
        st.characters(),
    ),
)


@settings(max_examples=2_000, deadline=None)
@given(cell=PSEUDO_ISH)
def test_alphabet_agrees_with_the_validator(cell: str) -> None:
    shape = cell_alphabet(PSEUDONYM)
    assert shape is not None
    fast = cell == "" or (
        len(cell) == shape.length
        and all(c in shape.symbols for c in cell)
        and cell[-1] in shape.last
    )
    assert fast == cell_validator(PSEUDONYM)(cell or None)


def test_alphabet_only_for_pseudonyms() -> None:
    assert cell_alphabet(COLUMNS[1]) is None
    assert cell_alphabet(COLUMNS[4]) is None


GOOD = {
    "offender": st.sampled_from(["ri63zg3hqoxz7clu4aignaj4fq", "vwnbwze2j2ppn7ruk6224aitga", ""]),
    "birth_year": st.sampled_from(["1973", "1959", ""]),
    "district": st.sampled_from(["L", "N", "GIR", ""]),
    "convictions": st.sampled_from(["0", "1", "30", ">30", ""]),
    "note": st.sampled_from(["x", "", "free text"]),
    "release_quarter": st.sampled_from(["2024-Q3", "2025-Q1", ""]),
}
ODD = st.sampled_from(
    [
        "0000",
        "31",
        "-0",
        "01",
        "B15",
        "2024-Q5",
        "ri63zg3hqoxz7clu4aignaj4fb",
        "ri63zg3hqoxz7clu4aignaj4f",
        "RI63ZG3HQOXZ7CLU4AIGNAJ4FQ",
        '"1973"',
        'a"b',
        "a,b",
        '"a,b"',
        "x\ny",
        '"x\r\ny"',
        "\x00",
        "é",
        " L",
        "\r",
    ]
)


@st.composite
def tables(draw: st.DrawFn) -> tuple[bytes, int]:
    names = [c.name for c in COLUMNS]
    n_rows = draw(st.integers(0, 12))
    rows = []
    for _ in range(n_rows):
        row = [draw(GOOD[name]) for name in names]
        if draw(st.integers(0, 9)) == 0:
            row[draw(st.integers(0, len(row) - 1))] = draw(ODD)
        if draw(st.integers(0, 29)) == 0:
            row = row[:-1] if draw(st.booleans()) else [*row, "1"]
        rows.append(",".join(row))
    header = ",".join(names)
    if draw(st.integers(0, 19)) == 0:
        header = draw(st.sampled_from(["", "offender", header.upper(), '"offender",' + header]))
    end = "\r\n" if draw(st.integers(0, 9)) else draw(st.sampled_from(["\n", "\r", ""]))
    text = "\r\n".join([header, *rows]) + end
    if draw(st.integers(0, 19)) == 0:
        text += "\r\n"
    data = text.encode("utf-8")
    if draw(st.integers(0, 29)) == 0:
        at = draw(st.integers(0, len(data)))
        data = data[:at] + b"\xff" + data[at:]
    expected = n_rows + draw(st.sampled_from([0, 0, 0, -1, 1]))
    return data, max(expected, 0)


@settings(
    max_examples=600, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(table=tables(), k=st.integers(1, 3), block=st.sampled_from([64, 200, 1 << 20]))
def test_fast_path_agrees_with_row_by_row(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, table: tuple[bytes, int], k: int, block: int
) -> None:
    data, expected = table
    monkeypatch.setattr(content, "BLOCK", block)
    path = tmp_path / "data.csv"
    path.write_bytes(data)
    same_outcome(path, approval(k=k), expected, data)
    same_outcome(path, approval(qi=None), expected, data)
    same_outcome(path, approval(k=k, entity="someone_else"), expected, data)
    same_outcome(path, approval(k=k, row_cap=max(expected - 1, 0)), expected, data)


@settings(
    max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    cells=st.lists(
        st.sampled_from(["1973", "", "0000", "x", '"1973"', "1973\r", "1973,1974", ","]),
        max_size=8,
    ),
    end=st.sampled_from(["\r\n", "\n", ""]),
    column=st.sampled_from([COLUMNS[1], COLUMNS[4]]),
)
def test_one_column(tmp_path: Path, cells: list[str], end: str, column: Column) -> None:
    appr = approval(columns=(column,), qi=(column.name,), k=1)
    data = (column.name + "\r\n" + "\r\n".join(cells) + (end if cells else "")).encode()
    path = tmp_path / "one.csv"
    path.write_bytes(data)
    for expected in {len(cells), max(len(cells) - 1, 0)}:
        same_outcome(path, appr, expected, data)


def test_many_blocks_memo_and_k(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(content, "BLOCK", 1000)
    monkeypatch.setattr(content, "MEMO_MAX", 3)
    names = [c.name for c in COLUMNS]
    people = ["ri63zg3hqoxz7clu4aignaj4fq", "vwnbwze2j2ppn7ruk6224aitga", "a" * 26]
    rows = [
        f"{people[i % 3]},{1950 + i % 7},{'LN'[i % 2]},{i % 31},n{i},2024-Q{1 + i % 4}"
        for i in range(2_000)
    ]
    data = ("\r\n".join([",".join(names), *rows]) + "\r\n").encode()
    path = tmp_path / "big.csv"
    path.write_bytes(data)
    for appr in (approval(k=1), approval(k=2), approval(qi=None), approval(qi=("district",))):
        same_outcome(path, appr, 2_000, data)
    assert content._Check(approval(k=1), 2_000).csv_file(path) is None  # all a block at a time
    # A quoted field late in the file: the row-by-row check takes over from that block on.
    quoted = data[:-30] + b'"x",' + data[-26:]
    path.write_bytes(quoted)
    same_outcome(path, approval(k=1), 2_000, quoted)
    assert (content._Check(approval(k=1), 2_000).csv_file(path) or 0) > len(data) // 2
    bad = data.replace(b",30,n", b",31,n", 1)
    path.write_bytes(bad)
    got = outcome(content.check_plaintext, path, approval(k=1), 2_000)
    assert got == outcome(reference_check, path, approval(k=1), 2_000)
    assert got[0] == "refused"
    assert "column 'convictions'" in str(got[1])


def test_nothing_echoed(tmp_path: Path) -> None:
    path = tmp_path / "x.csv"
    names = ",".join(c.name for c in COLUMNS)
    path.write_bytes(f"{names}\r\nSECRET-VALUE,1973,L,1,x,2024-Q1\r\n".encode())
    with pytest.raises(VerificationError) as info:
        content.check_plaintext(path, approval(k=1), 1)
    assert "SECRET" not in str(info.value)
    assert "row 1, column 'offender'" in str(info.value)


def test_jsonl_unchanged(tmp_path: Path) -> None:
    appr = approval(columns=(COLUMNS[1], COLUMNS[4]), qi=("birth_year", "note"), k=2)
    appr.output_format = "jsonl"  # type: ignore[misc]
    path = tmp_path / "x.jsonl"
    path.write_text('{"birth_year": "1973", "note": null}\n{"birth_year": "1973", "note": ""}\n')
    got = outcome(content.check_plaintext, path, appr, 2)
    assert got[0] == "refused"  # null and "" are different classes of one row each
    assert "k-anonymity" in str(got[1])


def test_k_through_scratch_files_is_exact_and_leaves_nothing(tmp_path: Path) -> None:
    """A payload with more pairs than fit in memory: the pairs go to encrypted scratch files
    by hash and are counted one file at a time.  Repeated pairs in different blocks, and
    one person in several classes, count exactly as in memory; no file is left behind."""
    names = [c.name for c in COLUMNS]
    people = [ALPHABET[i // 32] + ALPHABET[i % 32] + "a" * 24 for i in range(40)]
    rows = [
        f"{people[i % 40]},{1950 + i % 3},{'LN'[i % 2]},1,x,2024-Q{1 + i % 2}" for i in range(600)
    ]
    data = ("\r\n".join([",".join(names), *rows]) + "\r\n").encode()
    directory = tmp_path / "out"
    directory.mkdir()
    path = directory / "data.csv"
    path.write_bytes(data)
    want = reference_check(path, approval(k=1), 600)
    for limit in (1, 7, 100, 10_000):
        got = content.check_plaintext(path, approval(k=1), 600, Limits(max_k_pairs_in_memory=limit))
        assert got == want
    # 6 classes (3 years x 2 areas; the quarter follows the area), 20 people in each: a
    # person's rows are 40 apart, so they cover all 3 years, always in one area.
    assert want["k_recomputed"] == 20
    assert sorted(p.name for p in directory.iterdir()) == ["data.csv"]
    k21 = outcome(
        content.check_plaintext, path, approval(k=21), 600, Limits(max_k_pairs_in_memory=5)
    )
    assert k21 == ("refused", "payload breaks k-anonymity: a class of size 20 is below k=21")


def test_pairs_records_round_trip() -> None:
    items = [b"", b"a", b"\n\x00" * 40, bytes(range(256))]
    assert content._unpack(content._pack(items)) == items
    assert content._unpack(content._pack([])) == []
    with pytest.raises(ValueError):
        content._unpack(content._pack(items) + b"x")


def test_k_through_scratch_files_with_predictable_hashing(tmp_path: Path) -> None:
    """PYTHONHASHSEED=0 makes hash() predictable, so the pairs are salted before they are
    spread over the scratch files; the count stays exact."""
    import subprocess
    import sys

    code = (
        "import sys; from pathlib import Path\n"
        "from tests.bundle.test_plaintext import test_k_through_scratch_files_is_exact_and_leaves_nothing as t\n"
        "from securexport.bundle import plaintext as content\n"
        "assert not sys.flags.hash_randomization\n"
        "pairs = content._DistinctPairs(10, 1, Path(sys.argv[1]))\n"
        "assert len(pairs._salt) == 16\n"
        "pairs.close()\n"
        "t(Path(sys.argv[1]))\n"
        "print('ok')\n"
    )
    env = {**os.environ, "PYTHONHASHSEED": "0"}
    got = subprocess.run(
        [sys.executable, "-c", code, str(tmp_path)],
        capture_output=True,
        text=True,
        env=env,
        cwd=Path(__file__).resolve().parents[2],  # the checkout, where `tests` imports from
    )
    assert got.stdout.strip() == "ok", got.stderr[-2000:]


def test_pairs_beyond_the_bound_never_gather_in_memory(tmp_path: Path) -> None:
    """Past ``max_k_pairs_in_memory`` the pairs go to ceil(rows / bound) scratch files by
    hash, none stay in memory until they are counted (one file at a time), and the count is
    exact."""
    pairs = content._DistinctPairs(expected=1_000, in_memory=100, directory=tmp_path)
    try:
        assert len(pairs._spools) == 10
        batch = [i.to_bytes(8, "big") + b"e%d" % (i % 37) for i in range(1_000)]
        pairs.update(batch[:600])
        pairs.update(batch[:10])  # seen before: counted once
        for pair in batch[600:]:
            pairs.add(pair)  # one at a time (the row-by-row check): spilled in lots
        assert not pairs._set
        spilled = [sum(len(content._unpack(r)) for r in s.replay()) for s in pairs._spools]
        assert sum(spilled) == 610  # the 400 added one at a time are still pending
        assert max(spilled) < 300  # spread by hash (about 61 each)
        sizes = pairs.class_sizes()
        assert len(sizes) == 1_000 and set(sizes.values()) == {1}
    finally:
        pairs.close()
