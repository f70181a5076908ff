"""Grouping of int64 keys: hash factorization in C (``_group.c``) with numpy's sort as the fallback."""

from __future__ import annotations

import numpy as np

try:  # built from src/piguard/deid/_group.c by `pip install`
    from piguard.deid._group import factorize as _c_factorize
except ImportError:  # pragma: no cover - a source tree without the compiled extension
    _c_factorize = None


def factorize(keys: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(group id per key, key per group). Ids follow the order of first appearance with the C kernel and
    the sorted order with the numpy fallback; callers must not rely on either."""
    k = np.ascontiguousarray(keys, dtype=np.int64)
    if _c_factorize is None or len(k) == 0:
        uniq, inv = np.unique(k, return_inverse=True)
        return inv.reshape(-1).astype(np.int64, copy=False), uniq
    codes = np.empty(len(k), dtype=np.int64)
    uniq = np.empty(len(k), dtype=np.int64)
    n = _c_factorize(k, codes, uniq)
    return codes, uniq[:n]


__all__ = ["factorize"]
