"""RFC 6962 / RFC 9162 Merkle tree hashing, proofs and compact ranges (hazardous layer).

    leaf hash  = SHA-256(0x00 || data)
    node hash  = SHA-256(0x01 || left || right)
    empty root = SHA-256("")

A tree of ``n`` leaves is split at ``k``, the largest power of two below ``n``; every subtree that
the RFC's recursive definitions visit is therefore a run of *perfect*, aligned subtrees.  Proof
generation reads those perfect subtrees from a :class:`NodeSource` (an in-memory
:class:`MemoryTree`, or the ledger's node table), so proving costs O(log n) reads, not O(n).

Verification (:func:`verify_inclusion`, :func:`verify_consistency`) is pure code over bytes that
returns a verdict, following RFC 9162 §2.1.3.2 and §2.1.4.2.  It never raises on bad input.
"""

from __future__ import annotations

import hashlib
import struct
from collections.abc import Callable, Sequence
from typing import Protocol

HASH_SIZE = 32
EMPTY_ROOT = hashlib.sha256(b"").digest()
MAX_TREE_SIZE = 2**63  # sizes and indexes are uint64 on the wire; keep clear of the top bit


def leaf_hash(data: bytes) -> bytes:
    """RFC 6962 §2.1: the hash of one leaf."""
    return hashlib.sha256(b"\x00" + data).digest()


def node_hash(left: bytes, right: bytes) -> bytes:
    """RFC 6962 §2.1: the hash of an interior node."""
    return hashlib.sha256(b"\x01" + left + right).digest()


def _largest_power_of_two_below(n: int) -> int:
    """The ``k`` of RFC 6962: the largest power of two strictly less than ``n`` (n >= 2)."""
    return 1 << ((n - 1).bit_length() - 1)


class NodeSource(Protocol):
    """Hashes of the perfect subtrees of a tree.

    ``node(level, index)`` is the root of the perfect subtree over leaves
    ``[index << level, (index + 1) << level)``; level 0 is the leaf hashes.
    """

    def node(self, level: int, index: int) -> bytes: ...


class MemoryTree:
    """All perfect-subtree hashes of a list of leaf hashes, built once in O(n)."""

    def __init__(self, leaf_hashes: Sequence[bytes]) -> None:
        levels: list[list[bytes]] = [list(leaf_hashes)]
        while len(levels[-1]) > 1:
            below = levels[-1]
            levels.append([node_hash(below[i], below[i + 1]) for i in range(0, len(below) - 1, 2)])
        self._levels = levels

    def __len__(self) -> int:
        return len(self._levels[0])

    def node(self, level: int, index: int) -> bytes:
        return self._levels[level][index]


def _as_source(tree: Sequence[bytes] | NodeSource) -> NodeSource:
    if isinstance(tree, MemoryTree):
        return tree
    if isinstance(tree, Sequence):
        return MemoryTree(tree)
    return tree


def subtree_hash(source: NodeSource, start: int, end: int) -> bytes:
    """MTH(D[start:end]) for a range whose left part is aligned, as RFC 6962 visits them."""
    if end <= start:
        raise ValueError("empty range")
    size = end - start
    if size & (size - 1) == 0 and start % size == 0:
        level = size.bit_length() - 1
        return source.node(level, start >> level)
    k = _largest_power_of_two_below(size)
    return node_hash(subtree_hash(source, start, start + k), subtree_hash(source, start + k, end))


def root(leaf_hashes: Sequence[bytes]) -> bytes:
    """MTH of the whole list (RFC 6962 §2.1), computed in O(n) without recursion."""
    compact = CompactRange()
    for h in leaf_hashes:
        compact.append(h)
    return compact.root()


def _check_size(index: int, size: int) -> None:
    if not 0 <= index < size <= MAX_TREE_SIZE:
        raise ValueError(f"index {index} is outside a tree of size {size}")


def inclusion_proof(tree: Sequence[bytes] | NodeSource, index: int, size: int) -> list[bytes]:
    """PATH(index, D[0:size]) of RFC 6962 §2.1.1, leaf-side first."""
    _check_size(index, size)
    source = _as_source(tree)
    path: list[bytes] = []
    start, end, m = 0, size, index
    while end - start > 1:
        k = _largest_power_of_two_below(end - start)
        if m < k:
            path.append(subtree_hash(source, start + k, end))
            end = start + k
        else:
            path.append(subtree_hash(source, start, start + k))
            start, m = start + k, m - k
    path.reverse()
    return path


def consistency_proof(
    tree: Sequence[bytes] | NodeSource, old_size: int, new_size: int
) -> list[bytes]:
    """PROOF(old_size, D[0:new_size]) of RFC 6962 §2.1.2; empty when old is 0 or equal to new."""
    if not 0 <= old_size <= new_size <= MAX_TREE_SIZE:
        raise ValueError(f"no consistency proof from size {old_size} to {new_size}")
    if old_size in (0, new_size):
        return []
    source = _as_source(tree)
    proof: list[bytes] = []
    start, end, m, complete = 0, new_size, old_size, True
    while m != end - start:
        k = _largest_power_of_two_below(end - start)
        if m <= k:
            proof.append(subtree_hash(source, start + k, end))
            end = start + k
        else:
            proof.append(subtree_hash(source, start, start + k))
            start, m, complete = start + k, m - k, False
    if not complete:
        proof.append(subtree_hash(source, start, end))
    proof.reverse()
    return proof


def _well_formed(*hashes: bytes) -> bool:
    return all(isinstance(h, bytes) and len(h) == HASH_SIZE for h in hashes)


def root_from_inclusion_proof(
    leaf: bytes, index: int, size: int, proof: Sequence[bytes]
) -> bytes | None:
    """The root that ``proof`` implies for ``leaf`` at ``index`` (RFC 9162 §2.1.3.2), or None."""
    if not (0 <= index < size <= MAX_TREE_SIZE) or not _well_formed(leaf, *proof):
        return None
    fn, sn, r = index, size - 1, leaf
    for p in proof:
        if sn == 0:
            return None
        if fn & 1 or fn == sn:
            r = node_hash(p, r)
            while not fn & 1 and fn != 0:
                fn >>= 1
                sn >>= 1
        else:
            r = node_hash(r, p)
        fn >>= 1
        sn >>= 1
    return r if sn == 0 else None


def verify_inclusion(
    leaf: bytes, index: int, size: int, proof: Sequence[bytes], root_hash: bytes
) -> bool:
    """True iff ``proof`` shows the leaf hash ``leaf`` at ``index`` in the tree ``root_hash``."""
    computed = root_from_inclusion_proof(leaf, index, size, proof)
    return computed is not None and _well_formed(root_hash) and computed == root_hash


def verify_consistency(
    old_size: int, new_size: int, old_root: bytes, new_root: bytes, proof: Sequence[bytes]
) -> bool:
    """True iff ``proof`` shows the tree ``old_root`` is a prefix of ``new_root`` (RFC 9162)."""
    if not (0 <= old_size <= new_size <= MAX_TREE_SIZE) or not _well_formed(
        old_root, new_root, *proof
    ):
        return False
    if old_size == new_size:
        return not proof and old_root == new_root
    if old_size == 0:
        return not proof and old_root == EMPTY_ROOT
    if not proof:
        return False
    path = list(proof)
    if old_size & (old_size - 1) == 0:
        path.insert(0, old_root)
    fn, sn = old_size - 1, new_size - 1
    while fn & 1:
        fn >>= 1
        sn >>= 1
    fr = sr = path[0]
    for c in path[1:]:
        if sn == 0:
            return False
        if fn & 1 or fn == sn:
            fr = node_hash(c, fr)
            sr = node_hash(c, sr)
            while not fn & 1 and fn != 0:
                fn >>= 1
                sn >>= 1
        else:
            sr = node_hash(sr, c)
        fn >>= 1
        sn >>= 1
    return sn == 0 and fr == old_root and sr == new_root


NodeCallback = Callable[[int, int, bytes], None]


class CompactRange:
    """The frontier of a tree: the roots of its perfect subtrees, largest (leftmost) first.

    A tree of ``size`` leaves has one subtree per set bit of ``size``, so the state is at most
    64 hashes, an append costs at most ``log2(size) + 1`` node hashes, and :meth:`root` at most
    ``log2(size)`` more.
    """

    def __init__(self, size: int = 0, hashes: Sequence[bytes] = ()) -> None:
        if not 0 <= size <= MAX_TREE_SIZE or len(hashes) != size.bit_count():
            raise ValueError("compact range does not match its size")
        if not _well_formed(*hashes):
            raise ValueError("compact range hashes must be 32 bytes")
        self._size = size
        self._hashes = list(hashes)

    @property
    def size(self) -> int:
        return self._size

    @property
    def hashes(self) -> tuple[bytes, ...]:
        return tuple(self._hashes)

    def append(self, leaf: bytes, on_node: NodeCallback | None = None) -> None:
        """Add one leaf hash; ``on_node(level, index, hash)`` sees every perfect subtree completed
        by it (the leaf itself at level 0 included)."""
        if not _well_formed(leaf):
            raise ValueError("a leaf hash is 32 bytes")
        if self._size >= MAX_TREE_SIZE:
            raise ValueError("tree is full")
        h, level, index = leaf, 0, self._size
        if on_node is not None:
            on_node(0, index, h)
        while (self._size >> level) & 1:
            h = node_hash(self._hashes.pop(), h)
            level += 1
            index >>= 1
            if on_node is not None:
                on_node(level, index, h)
        self._hashes.append(h)
        self._size += 1

    def root(self) -> bytes:
        if not self._hashes:
            return EMPTY_ROOT
        r = self._hashes[-1]
        for h in reversed(self._hashes[:-1]):
            r = node_hash(h, r)
        return r

    def to_bytes(self) -> bytes:
        """``uint64 size`` (big-endian) followed by the subtree hashes, leftmost first."""
        return struct.pack(">Q", self._size) + b"".join(self._hashes)

    @classmethod
    def from_bytes(cls, data: bytes) -> CompactRange:
        if len(data) < 8 or (len(data) - 8) % HASH_SIZE:
            raise ValueError("malformed compact range")
        (size,) = struct.unpack_from(">Q", data)
        body = data[8:]
        hashes = [body[i : i + HASH_SIZE] for i in range(0, len(body), HASH_SIZE)]
        return cls(size, hashes)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, CompactRange):
            return NotImplemented
        return self._size == other._size and self._hashes == other._hashes

    __hash__ = None  # type: ignore[assignment]
