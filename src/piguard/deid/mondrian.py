"""Mondrian: multidimensional top-down partitioning (LeFevre, DeWitt, Ramakrishnan, ICDE 2006).

For tables whose lattice is too large for the optimal search, or where per-region generalization is
wanted. Each quasi-identifier's leaves are ordered so that every subtree of its hierarchy is a contiguous
range; a partition's published value is then the lowest common ancestor of its smallest and largest leaf,
found with a few scalar lookups. A partition is cut along the attribute whose published value covers the
largest share of its domain: into the children of that value when all of them satisfy the privacy
models, else in two at the child boundary nearest the median. Output values stay in the hierarchy's
vocabulary. The loop runs over partitions (about n/k of them), never over rows.
"""

from __future__ import annotations

import numpy as np

from piguard.deid.errors import DeidError
from piguard.deid.hierarchy import Hierarchy
from piguard.deid.lattice import Models
from piguard.deid.models import LDiversity, TCloseness


class Mondrian:
    def __init__(
        self,
        leaf: np.ndarray,
        hierarchies: list[Hierarchy],
        models: Models,
        sensitive: dict[str, tuple[np.ndarray, int]],
        global_p: dict[str, np.ndarray],
        sensitive_hierarchies: dict[str, Hierarchy] | None = None,
    ) -> None:
        n = len(leaf)
        if models.k > n:
            raise DeidError(f"impossible model: k={models.k} is larger than the table ({n} rows)")
        self.hier = hierarchies
        self.models = models
        self.sensitive = sensitive
        self.global_p = global_p
        self.sens_h = sensitive_hierarchies or {}
        # Rank leaves by their path from the top (subtrees become contiguous ranges).
        self.ranked = np.empty_like(leaf)
        self.codes_by_rank: list[list[np.ndarray]] = []
        self.shares: list[list[np.ndarray]] = []
        for d, h in enumerate(hierarchies):
            order = np.lexsort([h.codes[lvl] for lvl in range(h.height)])  # last key (top) is primary
            rank = np.empty(h.domain_size, dtype=np.int64)
            rank[order] = np.arange(h.domain_size)
            self.ranked[:, d] = rank[leaf[:, d]]
            self.codes_by_rank.append([h.codes[lvl][order] for lvl in range(h.height)])
            self.shares.append([h.shares(lvl) for lvl in range(h.height)])

    def _ok(self, rows: np.ndarray) -> bool:
        if len(rows) < self.models.k:
            return False
        for m in [*self.models.l_diversity, *self.models.t_closeness]:
            codes, n_s = self.sensitive[m.column]
            hist = np.bincount(codes[rows], minlength=n_s)[None, :].astype(float)
            if isinstance(m, LDiversity) and not m.fulfilled(hist)[0]:
                return False
            if (
                isinstance(m, TCloseness)
                and not m.fulfilled(hist, self.global_p[m.column], self.sens_h.get(m.column))[0]
            ):
                return False
        return True

    def _lca(self, d: int, lo: int, hi: int) -> int:
        """Lowest level at which the leaves ranked lo..hi share one ancestor."""
        codes = self.codes_by_rank[d]
        lvl = 0
        while codes[lvl][lo] != codes[lvl][hi]:
            lvl += 1
        return lvl

    def partition(self) -> list[tuple[np.ndarray, np.ndarray]]:
        """Final partitions as (row indices, lowest common ancestor level per attribute)."""
        n = len(self.ranked)
        if not self._ok(np.arange(n)):
            raise DeidError("the whole table does not satisfy the privacy models: nothing can be released")
        dims = range(len(self.hier))
        done: list[tuple[np.ndarray, np.ndarray]] = []
        stack = [np.arange(n)]
        while stack:
            rows = stack.pop()
            sub = self.ranked[rows]
            lo, hi = sub.min(axis=0), sub.max(axis=0)
            lvls = np.array([self._lca(d, int(lo[d]), int(hi[d])) for d in dims])
            width = [
                self.shares[d][lvls[d]][self.codes_by_rank[d][lvls[d]][lo[d]]] if lvls[d] else 0.0
                for d in dims
            ]
            split = False
            for d in sorted(dims, key=lambda d: -width[d]):
                lvl = int(lvls[d])
                if lvl == 0:
                    break
                child = self.codes_by_rank[d][lvl - 1][sub[:, d]]
                ids, inv, cnt = np.unique(child, return_inverse=True, return_counts=True)
                inv = inv.reshape(-1)
                order = np.argsort(inv, kind="stable")
                groups = np.split(rows[order], np.cumsum(cnt)[:-1])
                if all(self._ok(g) for g in groups):
                    stack.extend(groups)
                    split = True
                    break
                # Two-way: children are contiguous in rank order (ids ascend with rank), cut near half.
                cum = np.cumsum(cnt)
                cut = int(np.searchsorted(cum, len(rows) / 2))
                for c in sorted({cut, cut + 1, cut - 1}, key=lambda c: abs(c - cut)):
                    if not 1 <= c < len(ids):
                        continue
                    left = inv < c
                    a_, b_ = rows[left], rows[~left]
                    if self._ok(a_) and self._ok(b_):
                        stack.extend((a_, b_))
                        split = True
                        break
                if split:
                    break
            if not split:
                done.append((rows, lo))
        return done

    def labels(
        self, parts: list[tuple[np.ndarray, np.ndarray]]
    ) -> tuple[list[np.ndarray], np.ndarray, list[float]]:
        """Per QI the published text per row, the partition id per row, and per QI the generalized
        information loss: mean over records of (leaves under the published value - 1) / (domain - 1)."""
        n = len(self.ranked)
        part_of_row = np.empty(n, dtype=np.int64)
        n_parts = len(parts)
        lo = np.empty((n_parts, len(self.hier)), dtype=np.int64)
        hi = np.empty((n_parts, len(self.hier)), dtype=np.int64)
        for pid, (rows, _) in enumerate(parts):
            part_of_row[rows] = pid
            sub = self.ranked[rows]
            lo[pid], hi[pid] = sub.min(axis=0), sub.max(axis=0)
        out, losses = [], []
        sizes = np.bincount(part_of_row, minlength=n_parts)
        for d, h in enumerate(self.hier):
            text = np.empty(n_parts, dtype=object)
            loss = np.zeros(n_parts)
            for pid in range(n_parts):
                lvl = self._lca(d, int(lo[pid, d]), int(hi[pid, d]))
                code = self.codes_by_rank[d][lvl][lo[pid, d]]
                text[pid] = h.labels[lvl][code]
                covered = self.shares[d][lvl][code] * h.domain_size
                loss[pid] = (covered - 1) / (h.domain_size - 1) if h.domain_size > 1 else 0.0
            out.append(text[part_of_row])
            losses.append(float((loss * sizes).sum() / n) if n else 0.0)
        return out, part_of_row, losses
