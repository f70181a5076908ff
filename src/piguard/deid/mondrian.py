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
    def __init__(
        self,
        leaf: np.ndarray,
        hierarchies: list[Hierarchy],
        models: Models,
        sensitive: dict[str, tuple[np.ndarray, int]],
        global_p: dict[str, np.ndarray],
        sensitive_hierarchies: dict[str, Hierarchy] | None = None,
    ) -> None:
        self.leaf = leaf
        self.hier = hierarchies
        self.models = models
        self.sensitive = sensitive
        self.global_p = global_p
        self.sens_h = sensitive_hierarchies or {}
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
            if (
                isinstance(m, TCloseness)
                and not m.fulfilled(hist, self.global_p[m.column], self.hier_of(m))[0]
            ):
                return False
        return True

    def hier_of(self, m: TCloseness) -> Hierarchy | None:
        return self.sens_h.get(m.column)

    def _lca_level(self, d: int, leaves: np.ndarray) -> int:
        h = self.hier[d]
        for lvl in range(h.height):
            if np.all(h.codes[lvl][leaves] == h.codes[lvl][leaves[0]]):
                return lvl
        return h.height - 1

    def partition(self) -> list[np.ndarray]:
        """Split top-down. A partition is cut along the attribute whose published value (lowest common
        ancestor) is widest: into the children of that ancestor when all of them satisfy the models,
        else in two at the child boundary nearest the median. Labels therefore stay tight."""
        n = len(self.leaf)
        if not self._ok(np.arange(n)):
            raise DeidError("the whole table does not satisfy the privacy models: nothing can be released")
        shares = [[h.shares(lvl) for lvl in range(h.height)] for h in self.hier]
        done: list[np.ndarray] = []
        stack = [np.arange(n)]
        while stack:
            rows = stack.pop()
            widths = []
            for d in range(len(self.hier)):
                col = self.leaf[rows, d]
                lvl = self._lca_level(d, col)
                widths.append((shares[d][lvl][self.hier[d].codes[lvl][col[0]]] if lvl else 0.0, lvl))
            order = sorted(range(len(widths)), key=lambda d: -widths[d][0])
            split = False
            for d in order:
                lvl = widths[d][1]
                if lvl == 0:
                    break
                child = self.hier[d].codes[lvl - 1][self.leaf[rows, d]]
                ids, inv, cnt = np.unique(child, return_inverse=True, return_counts=True)
                inv = inv.reshape(-1)
                groups = [rows[inv == g] for g in range(len(ids))]
                if all(self._ok(g) for g in groups):
                    stack.extend(groups)
                    split = True
                    break
                # Two-way: children ordered by leaf position, cut where the cumulative count passes half.
                first_leaf = np.array([self.leaf[g, d].min() for g in groups])
                order_c = np.argsort(first_leaf)
                cum = np.cumsum(cnt[order_c])
                cut = int(np.searchsorted(cum, len(rows) / 2))
                for c in sorted({cut, cut + 1, cut - 1}, key=lambda c: abs(c - cut)):
                    if not 1 <= c < len(ids):
                        continue
                    left = np.isin(inv, order_c[:c])
                    a_, b_ = rows[left], rows[~left]
                    if self._ok(a_) and self._ok(b_):
                        stack.extend((a_, b_))
                        split = True
                        break
                if split:
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
