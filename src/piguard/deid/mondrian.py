"""Mondrian: multidimensional top-down partitioning (LeFevre, DeWitt, Ramakrishnan, ICDE 2006).

For tables whose lattice is too large for the optimal search or where per-region generalization is
wanted. Every quasi-identifier is ordered by its hierarchy's leaf order (so neighbours share ancestors);
a partition is cut at the median of its widest attribute (normalized by the attribute's domain) when both
halves still satisfy the privacy models. Each final partition is published with, per attribute, the
lowest hierarchy ancestor covering all of its values, so the output stays in the hierarchy's vocabulary.
The loop runs over partitions (about n/k of them), never over rows.
"""

from __future__ import annotations

import numpy as np

from piguard.deid.errors import DeidError
from piguard.deid.hierarchy import Hierarchy
from piguard.deid.lattice import Models
from piguard.deid.models import LDiversity, TCloseness


class Mondrian:
    def __init__(self, leaf: np.ndarray, hierarchies: list[Hierarchy], models: Models,
                 sensitive: dict[str, tuple[np.ndarray, int]], global_p: dict[str, np.ndarray]) -> None:
        self.leaf = leaf
        self.hier = hierarchies
        self.models = models
        self.sensitive = sensitive
        self.global_p = global_p
        n = len(leaf)
        if models.k > n:
            raise DeidError(f"impossible model: k={models.k} is larger than the table ({n} rows)")

    def _ok(self, rows: np.ndarray) -> bool:
        if len(rows) < self.models.k:
            return False
        for m in [*self.models.l_diversity, *self.models.t_closeness]:
            codes, n_s = self.sensitive[m.column]
            hist = np.bincount(codes[rows], minlength=n_s)[None, :].astype(float)
            if isinstance(m, LDiversity) and not m.fulfilled(hist)[0]:
                return False
            if isinstance(m, TCloseness) and not m.fulfilled(hist, self.global_p[m.column], self.hier_of(m))[0]:
                return False
        return True

    def hier_of(self, m: TCloseness) -> Hierarchy | None:
        return getattr(self, "_sens_h", {}).get(m.column)

    def partition(self) -> list[np.ndarray]:
        n = len(self.leaf)
        if not self._ok(np.arange(n)):
            raise DeidError("the whole table does not satisfy the privacy models: nothing can be released")
        spans = np.array([max(h.domain_size - 1, 1) for h in self.hier], dtype=float)
        done: list[np.ndarray] = []
        stack = [np.arange(n)]
        while stack:
            rows = stack.pop()
            sub = self.leaf[rows]
            lo, hi = sub.min(axis=0), sub.max(axis=0)
            order = np.argsort(-(hi - lo) / spans, kind="stable")
            split = False
            for d in order:
                if hi[d] == lo[d]:
                    break  # widths are sorted: the rest are single-valued too
                col = sub[:, d]
                med = np.median(col)
                left = col <= med
                if left.all():
                    left = col < med
                if left.all() or not left.any():
                    continue
                a, b = rows[left], rows[~left]
                if self._ok(a) and self._ok(b):
                    stack.extend((a, b))
                    split = True
                    break
            if not split:
                done.append(rows)
        return done

    def labels(self, parts: list[np.ndarray]) -> tuple[list[np.ndarray], np.ndarray]:
        """Per QI the published text per row, and the partition id per row."""
        n = len(self.leaf)
        part_of_row = np.empty(n, dtype=np.int64)
        out = [np.empty(n, dtype=object) for _ in self.hier]
        for pid, rows in enumerate(parts):
            part_of_row[rows] = pid
            for d, h in enumerate(self.hier):
                leaves = np.unique(self.leaf[rows, d])
                for lvl in range(h.height):
                    ids = np.unique(h.codes[lvl][leaves])
                    if len(ids) == 1:
                        out[d][rows] = h.labels[lvl][ids[0]]
                        break
        return out, part_of_row
