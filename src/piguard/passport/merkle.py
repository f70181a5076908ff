"""The Merkle tree of RFC 9162 (Certificate Transparency v2, section 2.1) over a file's canonical records.

leaf = SHA-256(0x00 || record), node = SHA-256(0x01 || left || right); the tree over n leaves splits at the
largest power of two below n. Built level by level, carrying an unpaired last node up unchanged, which
gives the same root (and the same aligned subtrees) as the RFC's recursive definition. Inclusion proofs
and their verification follow RFC 9162 sections 2.1.3.1 and 2.1.3.2.

Hashing goes through OpenSSL: ``_merkle`` (C) when it is built, ``hashlib`` otherwise.
"""

from __future__ import annotations

import hashlib
from concurrent.futures import ThreadPoolExecutor

try:
    from piguard.passport import _merkle  # type: ignore[attr-defined]
except ImportError:  # built without the extension (no libssl headers): same results, slower
    _merkle = None

HASH_LEN = 32
EMPTY_ROOT = hashlib.sha256(b"").digest()  # RFC 9162: the hash of an empty list is the hash of ""
# Below this many pairs a second thread costs more than it saves.
_PARALLEL_PAIRS = 1 << 15


def leaf_hash(record: bytes) -> bytes:
    return hashlib.sha256(b"\x00" + record).digest()


def node_hash(left: bytes, right: bytes) -> bytes:
    return hashlib.sha256(b"\x01" + left + right).digest()


def count(nodes: bytes) -> int:
    return len(nodes) // HASH_LEN


def _pairs(src: bytes, dst: bytearray, start: int, stop: int) -> None:
    if _merkle is not None:
        _merkle.node_level(src, dst, start, stop)
        return
    h = HASH_LEN
    for i in range(start, stop):
        dst[i * h : (i + 1) * h] = node_hash(
            src[2 * i * h : (2 * i + 1) * h], src[(2 * i + 1) * h : (2 * i + 2) * h]
        )


def level_up(nodes: bytes | bytearray, pool: ThreadPoolExecutor | None = None) -> bytearray:
    """The next level: pairs hashed, an unpaired last node carried up as it is."""
    n = count(nodes)
    pairs = n // 2
    out = bytearray((pairs + (n & 1)) * HASH_LEN)
    if pool is not None and pairs >= _PARALLEL_PAIRS:
        mid = pairs // 2
        list(pool.map(lambda r: _pairs(nodes, out, *r), ((0, mid), (mid, pairs))))
    else:
        _pairs(nodes, out, 0, pairs)
    if n & 1:
        out[pairs * HASH_LEN :] = nodes[(n - 1) * HASH_LEN :]
    return out  # a bytearray: bytes-like everywhere it is used, and not copied once more


def layer(leaves: bytes, max_nodes: int, pool: ThreadPoolExecutor | None = None) -> tuple[int, bytes]:
    """The lowest level with at most ``max_nodes`` nodes, as (level, nodes); level 0 is the leaves. Node j
    of level c is the root of records j*2^c .. (j+1)*2^c - 1 (the last one may hold fewer)."""
    level, nodes = 0, leaves
    while count(nodes) > max_nodes:
        nodes = level_up(nodes, pool)
        level += 1
    return level, nodes


def root_of(nodes: bytes, pool: ThreadPoolExecutor | None = None) -> bytes:
    """The root over a level's nodes (the leaves, or any level built by ``level_up``)."""
    if not nodes:
        return EMPTY_ROOT
    while count(nodes) > 1:
        nodes = level_up(nodes, pool)
    return bytes(nodes)


def inclusion_proof(leaves: bytes, index: int) -> list[bytes]:
    """The audit path for leaf ``index`` (RFC 9162 2.1.3.1), built from the levels bottom-up."""
    n = count(leaves)
    if not 0 <= index < n:
        raise IndexError(f"leaf {index} is outside a tree of {n}")
    path: list[bytes] = []
    nodes, i = leaves, index
    while count(nodes) > 1:
        sibling = i ^ 1
        if sibling < count(nodes):
            path.append(nodes[sibling * HASH_LEN : (sibling + 1) * HASH_LEN])
        nodes, i = level_up(nodes), i // 2
    return path


def verify_inclusion(leaf: bytes, index: int, size: int, path: list[bytes], root: bytes) -> bool:
    """RFC 9162 section 2.1.3.2, step by step."""
    if not 0 <= index < size:
        return False
    fn, sn, r = index, size - 1, leaf
    for p in path:
        if sn == 0:
            return False
        if fn & 1 or fn == sn:
            r = node_hash(p, r)
            if not fn & 1:
                while fn & 1 == 0 and fn != 0:
                    fn >>= 1
                    sn >>= 1
        else:
            r = node_hash(r, p)
        fn >>= 1
        sn >>= 1
    return sn == 0 and r == root


def first_difference(expected: bytes, actual: bytes) -> int | None:
    """Index of the first node that differs between two levels (or where one runs out), else None."""
    n = min(count(expected), count(actual))
    if expected[: n * HASH_LEN] != actual[: n * HASH_LEN]:
        # Bisection on equal prefixes (each compare is one memcmp): lo nodes are equal, hi nodes are not.
        lo, hi = 0, n
        while hi - lo > 1:
            mid = (lo + hi) // 2
            if expected[: mid * HASH_LEN] == actual[: mid * HASH_LEN]:
                lo = mid
            else:
                hi = mid
        return lo
    if count(expected) != count(actual):
        return n
    return None
