"""RFC 6962 Merkle hashing: published vectors, an independent reference, flipped bits."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from securexport._crypto import merkle
from tests.support import rfc6962

VECTORS = json.loads(
    (Path(__file__).parents[1] / "vectors" / "merkle" / "rfc6962.json").read_text()
)


def _h(text: str) -> bytes:
    return bytes.fromhex(text)


# ---- the independent reference: tests/support/rfc6962.py -----------------------------------


def _data(n: int) -> list[bytes]:
    return [i.to_bytes(4, "big") + b"leaf" for i in range(n)]


# ---- published vectors --------------------------------------------------------------------------


def test_leaf_and_root_vectors() -> None:
    leaves = [_h(x) for x in VECTORS["leaves"]]
    hashes = [merkle.leaf_hash(x) for x in leaves]
    assert [h.hex() for h in hashes] == VECTORS["leaf_hashes"]
    for size, expected in enumerate(VECTORS["roots"]):
        assert merkle.root(hashes[:size]).hex() == expected
        assert (
            rfc6962.mth(leaves[:size]).hex() == expected
        )  # the reference agrees with upstream too


def test_compact_range_vectors() -> None:
    hashes = [_h(x) for x in VECTORS["leaf_hashes"]]
    compact = merkle.CompactRange()
    assert compact.root() == merkle.EMPTY_ROOT
    for size in range(1, 9):
        compact.append(hashes[size - 1])
        assert [h.hex() for h in compact.hashes] == VECTORS["compact_ranges"][size]
        assert compact.root().hex() == VECTORS["roots"][size]
        assert merkle.CompactRange.from_bytes(compact.to_bytes()) == compact


@pytest.mark.parametrize(
    "case", VECTORS["inclusion"], ids=lambda c: f"{c['index']}/{c['size']}:{c['desc']}"
)
def test_inclusion_vectors(case: dict[str, Any]) -> None:
    proof = [_h(p) for p in case["proof"]]
    got = merkle.verify_inclusion(
        _h(case["leaf_hash"]), case["index"], case["size"], proof, _h(case["root"])
    )
    assert got is case["valid"]


@pytest.mark.parametrize(
    "case",
    VECTORS["consistency"],
    ids=lambda c: f"{c['old_size']}-{c['new_size']}:{c['desc']}",
)
def test_consistency_vectors(case: dict[str, Any]) -> None:
    proof = [_h(p) for p in case["proof"]]
    got = merkle.verify_consistency(
        case["old_size"], case["new_size"], _h(case["old_root"]), _h(case["new_root"]), proof
    )
    assert got is case["valid"]


def test_generated_proofs_match_upstream_vectors() -> None:
    hashes = [_h(x) for x in VECTORS["leaf_hashes"]]
    for case in VECTORS["inclusion"]:
        if case["valid"] and case["size"] > 0:
            assert [
                p.hex()
                for p in merkle.inclusion_proof(hashes[: case["size"]], case["index"], case["size"])
            ] == case["proof"]
    for case in VECTORS["consistency"]:
        if case["valid"] and case["old_size"] > 0:
            tree = hashes[: case["new_size"]]
            got = merkle.consistency_proof(tree, case["old_size"], case["new_size"])
            assert [p.hex() for p in got] == case["proof"]


# ---- against the reference, for many sizes ----------------------------------------------------


@settings(max_examples=200, deadline=None)
@given(st.integers(1, 300).flatmap(lambda n: st.tuples(st.just(n), st.integers(0, n - 1))))
def test_inclusion_matches_reference(size_index: tuple[int, int]) -> None:
    size, index = size_index
    data = _data(size)
    hashes = [merkle.leaf_hash(d) for d in data]
    proof = merkle.inclusion_proof(hashes, index, size)
    assert proof == rfc6962.path(index, data)
    root = merkle.root(hashes)
    assert root == rfc6962.mth(data)
    assert merkle.verify_inclusion(hashes[index], index, size, proof, root)
    # not against the root of a bigger tree, nor for a neighbouring leaf
    bigger = merkle.root([*hashes, merkle.leaf_hash(b"more")])
    assert not merkle.verify_inclusion(hashes[index], index, size, proof, bigger)
    if size > 1:
        other = (index + 1) % size
        assert not merkle.verify_inclusion(hashes[other], index, size, proof, root)


@settings(max_examples=200, deadline=None)
@given(st.integers(1, 300).flatmap(lambda n: st.tuples(st.integers(1, n), st.just(n))))
def test_consistency_matches_reference(sizes: tuple[int, int]) -> None:
    old, new = sizes
    data = _data(new)
    hashes = [merkle.leaf_hash(d) for d in data]
    tree = merkle.MemoryTree(hashes)
    proof = merkle.consistency_proof(tree, old, new)
    assert proof == (rfc6962.proof(old, data) if old < new else [])
    old_root, new_root = rfc6962.mth(data[:old]), rfc6962.mth(data)
    assert merkle.verify_consistency(old, new, old_root, new_root, proof)
    if old < new:
        assert not merkle.verify_consistency(old, new, new_root, old_root, proof)
        assert not merkle.verify_consistency(
            old, new, old_root, rfc6962.mth([*data[:-1], b"x"]), proof
        )


@settings(max_examples=150, deadline=None)
@given(st.integers(2, 300), st.data())
def test_any_flipped_bit_in_an_inclusion_proof_fails(size: int, data: st.DataObject) -> None:
    index = data.draw(st.integers(0, size - 1))
    hashes = [merkle.leaf_hash(d) for d in _data(size)]
    proof = merkle.inclusion_proof(hashes, index, size)
    root = merkle.root(hashes)
    element = data.draw(st.integers(0, len(proof) - 1))
    bit = data.draw(st.integers(0, 8 * merkle.HASH_SIZE - 1))
    broken = list(proof)
    flipped = bytearray(broken[element])
    flipped[bit // 8] ^= 1 << (bit % 8)
    broken[element] = bytes(flipped)
    assert merkle.verify_inclusion(hashes[index], index, size, proof, root)
    assert not merkle.verify_inclusion(hashes[index], index, size, broken, root)


@settings(max_examples=150, deadline=None)
@given(st.integers(2, 300), st.data())
def test_any_flipped_bit_in_a_consistency_proof_fails(size: int, data: st.DataObject) -> None:
    old = data.draw(st.integers(1, size - 1))
    hashes = [merkle.leaf_hash(d) for d in _data(size)]
    proof = merkle.consistency_proof(hashes, old, size)
    old_root, new_root = merkle.root(hashes[:old]), merkle.root(hashes)
    element = data.draw(st.integers(0, len(proof) - 1))
    bit = data.draw(st.integers(0, 8 * merkle.HASH_SIZE - 1))
    broken = list(proof)
    flipped = bytearray(broken[element])
    flipped[bit // 8] ^= 1 << (bit % 8)
    broken[element] = bytes(flipped)
    assert merkle.verify_consistency(old, size, old_root, new_root, proof)
    assert not merkle.verify_consistency(old, size, old_root, new_root, broken)


@settings(max_examples=100, deadline=None)
@given(st.lists(st.binary(max_size=8), max_size=300))
def test_compact_range_matches_reference_and_round_trips(leaves: list[bytes]) -> None:
    compact = merkle.CompactRange()
    for i, leaf in enumerate(leaves):
        compact.append(merkle.leaf_hash(leaf))
        if i % 37 == 0:
            compact = merkle.CompactRange.from_bytes(compact.to_bytes())
    assert compact.size == len(leaves)
    assert compact.root() == rfc6962.mth(leaves)


def test_append_reports_every_perfect_subtree_once() -> None:
    seen: dict[tuple[int, int], bytes] = {}
    compact = merkle.CompactRange()
    hashes = [merkle.leaf_hash(d) for d in _data(100)]

    def record(level: int, index: int, h: bytes) -> None:
        assert (level, index) not in seen
        seen[(level, index)] = h

    for h in hashes:
        compact.append(h, on_node=record)
    tree = merkle.MemoryTree(hashes)
    assert len(seen) == 2 * 100 - (100).bit_count()
    for (level, index), h in seen.items():
        assert tree.node(level, index) == h


def test_append_hash_cost_is_logarithmic(monkeypatch: pytest.MonkeyPatch) -> None:
    calls = 0
    real = merkle.node_hash

    def counting(left: bytes, right: bytes) -> bytes:
        nonlocal calls
        calls += 1
        return real(left, right)

    monkeypatch.setattr(merkle, "node_hash", counting)
    compact = merkle.CompactRange()
    for i in range(4096):
        calls = 0
        compact.append(merkle.leaf_hash(i.to_bytes(4, "big")))
        assert calls <= (i + 1).bit_length()
    calls = 0
    compact.append(merkle.leaf_hash(b"last"))
    assert calls == 0  # 4096 is a power of two: the 4097th leaf starts a new subtree


@pytest.mark.parametrize(
    ("data", "problem"),
    [
        (b"", "too short"),
        (b"\x00" * 8 + b"\x11" * 32, "size 0 with a hash"),
        ((3).to_bytes(8, "big") + b"\x11" * 32, "size 3 needs two hashes"),
        ((1).to_bytes(8, "big") + b"\x11" * 31, "truncated hash"),
    ],
)
def test_compact_range_from_bytes_rejects(data: bytes, problem: str) -> None:
    with pytest.raises(ValueError):
        merkle.CompactRange.from_bytes(data)


def test_proof_arguments_out_of_range() -> None:
    hashes = [merkle.leaf_hash(d) for d in _data(4)]
    with pytest.raises(ValueError):
        merkle.inclusion_proof(hashes, 4, 4)
    with pytest.raises(ValueError):
        merkle.consistency_proof(hashes, 3, 2)
    assert merkle.consistency_proof(hashes, 0, 4) == []
    assert merkle.consistency_proof(hashes, 4, 4) == []
