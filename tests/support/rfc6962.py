"""An independent reference for RFC 6962 §2.1, written from its recursive definitions.

Deliberately naive (recursion over the leaf *data*, no caching): the tests hold
securexport/_crypto/merkle.py and the ledger's proofs to it, and to the published vectors.
"""

from __future__ import annotations

import hashlib


def leaf_hash(data: bytes) -> bytes:
    return hashlib.sha256(b"\x00" + data).digest()


def node_hash(left: bytes, right: bytes) -> bytes:
    return hashlib.sha256(b"\x01" + left + right).digest()


def split_point(n: int) -> int:
    """k: the largest power of two smaller than n (n > 1)."""
    k = 1
    while k * 2 < n:
        k *= 2
    return k


def mth(d: list[bytes]) -> bytes:
    """MTH(D[n])."""
    if not d:
        return hashlib.sha256(b"").digest()
    if len(d) == 1:
        return leaf_hash(d[0])
    k = split_point(len(d))
    return node_hash(mth(d[:k]), mth(d[k:]))


def path(m: int, d: list[bytes]) -> list[bytes]:
    """PATH(m, D[n]) (the sibling nearest the leaf first)."""
    if len(d) == 1:
        return []
    k = split_point(len(d))
    if m < k:
        return [*path(m, d[:k]), mth(d[k:])]
    return [*path(m - k, d[k:]), mth(d[:k])]


def subproof(m: int, d: list[bytes], b: bool) -> list[bytes]:
    """SUBPROOF(m, D[n], b)."""
    if m == len(d):
        return [] if b else [mth(d)]
    k = split_point(len(d))
    if m <= k:
        return [*subproof(m, d[:k], b), mth(d[k:])]
    return [*subproof(m - k, d[k:], False), mth(d[:k])]


def proof(m: int, d: list[bytes]) -> list[bytes]:
    """PROOF(m, D[n]) for 0 < m < n."""
    return subproof(m, d, True)


def root_from_path(leaf: bytes, m: int, n: int, audit_path: list[bytes]) -> bytes | None:
    """Undo PATH(m, D[n]) from the top: the root the path implies for ``leaf``, or None."""
    if not 0 <= m < n:
        return None
    if n == 1:
        return leaf_hash(leaf) if not audit_path else None
    if not audit_path:
        return None
    *inner, sibling = audit_path
    k = split_point(n)
    if m < k:
        left = root_from_path(leaf, m, k, inner)
        return None if left is None else node_hash(left, sibling)
    right = root_from_path(leaf, m - k, n - k, inner)
    return None if right is None else node_hash(sibling, right)
