"""Privacy models evaluated per equivalence class, vectorized over classes.

Each model takes, for every class, its size and (for l-diversity / t-closeness) its histogram over the
sensitive attribute's values, and returns a boolean "class fulfils the model" array. Records in classes
that fail any model are suppressed (up to the suppression limit), as in ARX.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from piguard.deid.hierarchy import Hierarchy


@dataclass(frozen=True)
class KAnonymity:
    k: int

    def describe(self) -> dict[str, object]:
        return {"k": self.k}


@dataclass(frozen=True)
class LDiversity:
    """``variant``: ``distinct`` (at least l values), ``entropy`` (entropy >= log l) or ``recursive``
    ((c,l): r1 < c * (r_l + ... + r_m) with r sorted descending)."""

    column: str
    l: int  # noqa: E741 - the model's own name
    variant: str = "distinct"
    c: float = 1.0

    # Distinct l-diversity is monotone under suppression (a merged class has at least as many values
    # as either part); entropy and recursive variants are only monotone without suppression.
    @property
    def monotone_with_suppression(self) -> bool:
        return self.variant == "distinct"

    def fulfilled(self, hist: np.ndarray) -> np.ndarray:
        if self.variant == "distinct":
            return (hist > 0).sum(axis=1) >= self.l
        if self.variant == "entropy":
            size = hist.sum(axis=1, keepdims=True)
            p = np.divide(hist, size, out=np.zeros_like(hist, dtype=float), where=size > 0)
            with np.errstate(divide="ignore", invalid="ignore"):
                ent = -np.where(p > 0, p * np.log(p), 0.0).sum(axis=1)
            return ent >= np.log(self.l) - 1e-12
        if self.variant == "recursive":
            r = -np.sort(-hist, axis=1)
            if r.shape[1] < self.l:
                return np.zeros(len(hist), dtype=bool)
            tail = r[:, self.l - 1 :].sum(axis=1)
            return r[:, 0] < self.c * tail
        raise ValueError(f"unknown l-diversity variant {self.variant!r}")

    def describe(self) -> dict[str, object]:
        d: dict[str, object] = {"column": self.column, "l": self.l, "variant": self.variant}
        if self.variant == "recursive":
            d["c"] = self.c
        return d


@dataclass(frozen=True)
class TCloseness:
    """Earth mover's distance between a class's and the whole table's distribution of ``column``:
    ``equal`` ground distance (half the L1 distance) or ``hierarchical`` (Li et al. 2007, over the
    column's hierarchy)."""

    column: str
    t: float
    distance: str = "equal"
    monotone_with_suppression = False

    def distances(
        self, hist: np.ndarray, global_p: np.ndarray, hierarchy: Hierarchy | None = None
    ) -> np.ndarray:
        """Distance per class; for ``hierarchical`` the histogram columns are the hierarchy's leaves."""
        size = hist.sum(axis=1, keepdims=True)
        p = np.divide(hist, size, out=np.zeros_like(hist, dtype=float), where=size > 0)
        diff = p - global_p[None, :]
        if self.distance == "equal":
            return 0.5 * np.abs(diff).sum(axis=1)
        if self.distance != "hierarchical":
            raise ValueError(f"unknown t-closeness distance {self.distance!r}")
        if hierarchy is None:
            raise ValueError(f"hierarchical t-closeness on '{self.column}' needs a hierarchy")
        # extra(node) = sum of leaf differences below it; cost(node) = level/H * min(pos, neg) over its
        # children's extras (Li, Li, Venkatasubramanian 2007, section 4.2).
        height = hierarchy.height - 1
        total = np.zeros(len(hist))
        child_extra = diff  # level 0: one column per sensitive value
        child_ids = np.arange(diff.shape[1])
        for lvl in range(1, hierarchy.height):
            parent_of_child = (
                hierarchy.codes[1][child_ids] if lvl == 1 else _parent_ids(hierarchy, lvl, child_ids)
            )
            n_par = len(hierarchy.labels[lvl])
            pos = np.zeros((len(hist), n_par))
            neg = np.zeros((len(hist), n_par))
            np.add.at(pos.T, parent_of_child, np.clip(child_extra, 0, None).T)
            np.add.at(neg.T, parent_of_child, np.clip(-child_extra, 0, None).T)
            total += (lvl / height) * np.minimum(pos, neg).sum(axis=1)
            child_extra = pos - neg
            child_ids = np.arange(n_par)
        return total

    def fulfilled(
        self, hist: np.ndarray, global_p: np.ndarray, hierarchy: Hierarchy | None = None
    ) -> np.ndarray:
        return self.distances(hist, global_p, hierarchy) <= self.t + 1e-12

    def describe(self) -> dict[str, object]:
        return {"column": self.column, "t": self.t, "distance": self.distance}


def _parent_ids(h: Hierarchy, lvl: int, child_ids: np.ndarray) -> np.ndarray:
    """Value id at ``lvl`` of each value id at ``lvl - 1`` (the hierarchy is a tree)."""
    mapping = np.zeros(len(h.labels[lvl - 1]), dtype=np.int64)
    mapping[h.codes[lvl - 1]] = h.codes[lvl]
    return mapping[child_ids]
