"""Privacy models evaluated per equivalence class, vectorized over classes.

Each model takes, for every class, its size and (for l-diversity / t-closeness) its histogram over the
sensitive attribute's values, and returns a boolean "class fulfils the model" array. Records in classes
that fail any model are suppressed (up to the suppression limit), as in ARX.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from piguard.deid.errors import DeidError
from piguard.deid.grouping import factorize
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
    # Entropy l-diversity's estimator: ``shannon`` (plug-in) or ``grassberger`` (Grassberger 2003, as ARX's
    # EntropyLDiversity offers for small classes).
    estimator: str = "shannon"

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

    def fulfilled_sparse(self, cls: np.ndarray, count: np.ndarray, n_cls: int) -> np.ndarray:
        """Per class, from (class, count) pairs of its distinct sensitive values (any order)."""
        distinct = np.bincount(cls, minlength=n_cls)
        need = math.ceil(self.l)
        if self.variant == "distinct":
            return distinct >= need
        size = np.bincount(cls, weights=count, minlength=n_cls)
        if self.variant == "entropy":
            # ARX: sum f psi(f) <= n (psi(n) - log l), with psi = log (Shannon) or Grassberger's G.
            psi = _grassberger if self.estimator == "grassberger" else np.log
            lhs = np.bincount(cls, weights=count * psi(count), minlength=n_cls)
            with np.errstate(divide="ignore", invalid="ignore"):
                rhs = size * (psi(np.maximum(size, 1)) - math.log(self.l))
            return (distinct >= need) & (lhs <= rhs + 1e-9 * np.maximum(size, 1))
        if self.variant == "recursive":
            order = np.lexsort((-count, cls))
            c_sorted, n_sorted = cls[order], count[order]
            start = np.searchsorted(c_sorted, c_sorted, side="left")
            rank = np.arange(len(c_sorted)) - start
            top = np.bincount(c_sorted[rank < need - 1], weights=n_sorted[rank < need - 1], minlength=n_cls)
            r1 = np.zeros(n_cls)
            r1[c_sorted[rank == 0]] = n_sorted[rank == 0]
            return (distinct >= need) & (r1 < self.c * (size - top))
        raise ValueError(f"unknown l-diversity variant {self.variant!r}")

    def describe(self) -> dict[str, object]:
        d: dict[str, object] = {"column": self.column, "l": self.l, "variant": self.variant}
        if self.variant == "recursive":
            d["c"] = self.c
        if self.variant == "entropy" and self.estimator != "shannon":
            d["estimator"] = self.estimator
        return d


# Grassberger's G(n) for even n up to 100 (n = 1, 2, 4, ..., 100), as ARX's EntropyLDiversity tabulates it;
# odd n use the even n below, larger n the asymptotic series.
_G_TABLE = np.array(
    [
        -1.2703628454614782, 0.7296371545385218, 1.3963038212051886, 1.7963038212051885, 2.0820181069194743,
        2.3042403291416966, 2.4860585109598783, 2.639904664806032, 2.7732379981393653, 2.8908850569628948,
        2.9961482148576315, 3.091386310095727, 3.178342831834857, 3.2583428318348573, 3.3324169059089312,
        3.4013824231503107, 3.4658985521825687, 3.5265046127886293, 3.5836474699314866, 3.6377015239855406,
        3.6889835752675917, 3.7377640630724698, 3.7842756909794466, 3.8287201354238913, 3.871273326913253,
        3.912089653443865, 3.951305339718375, 3.9890411887749786, 4.025404825138615, 4.060492544436861,
        4.094390849521607, 4.127177734767508, 4.1589237665135395, 4.18969299728277, 4.219543743551427,
        4.248529250797804, 4.276698264882311, 4.304095525156284, 4.33076219182295, 4.356736217796977,
        4.382052673493179, 4.40674403151787, 4.430840417060039, 4.454369828824745, 4.477358334571871,
        4.49983024468423, 4.521808266662253, 4.543313643006339, 4.564366274585286, 4.5849848312863175,
        4.605186851488337,
    ]
)  # fmt: skip


def _grassberger(n: np.ndarray) -> np.ndarray:
    n = np.asarray(n, dtype=np.int64)
    even = n - n % 2
    small = _G_TABLE[np.clip(even // 2, 0, len(_G_TABLE) - 1)]
    half = np.maximum(even // 2, 1).astype(np.float64)
    m = 1.0 / (half * half)
    with np.errstate(divide="ignore"):
        big = np.log(np.maximum(even, 1)) + m * (1 / 24 - m * (7 / 960 - m * 31 / 8064))
    return np.where(n <= 100, small, big)


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

    def min_class_size(self, global_p: np.ndarray, hierarchy: Hierarchy | None = None) -> int:
        """The class size below which no class can be t-close, whatever its values: a necessary condition
        that, unlike t-closeness itself, is monotone under suppression (classes only grow when
        generalized), so the search can prune with it.

        A class of s records is at least as far from the global distribution q as the best rounding of
        s * q to whole records (half the L1 distance). The hierarchical distance moves mass between
        distinct values at a cost of at least 1 / height, so it is at least that divided by the height."""
        g = np.asarray(global_p, dtype=np.float64)
        g = g[g > 0]
        if len(g) == 0:
            return 1
        scale = 1.0 if self.distance == "equal" or hierarchy is None else float(hierarchy.height - 1)
        limit = self.t * scale
        top = int(min(1e6, math.ceil(len(g) / (2 * limit)) + 1)) if limit > 0 else 10**6
        worst = 0  # the largest size whose best class still fails
        for s in range(1, top + 1):
            c = np.floor(s * g)
            rest = int(s - c.sum())
            if rest > 0:
                frac = s * g - c
                c[np.argpartition(-frac, rest - 1)[:rest]] += 1
            if 0.5 * np.abs(c / s - g).sum() > limit + 1e-12:
                worst = s
        return worst + 1

    def fulfilled_sparse(
        self,
        cls: np.ndarray,
        value: np.ndarray,
        count: np.ndarray,
        size: np.ndarray,
        global_p: np.ndarray,
        hierarchy: Hierarchy | None = None,
    ) -> np.ndarray:
        """Per class, from (class, value, count) triples in any order: no class x value matrix."""
        return self.distances_sparse(cls, value, count, size, global_p, hierarchy) <= self.t + 1e-12

    def distances_sparse(
        self,
        cls: np.ndarray,
        value: np.ndarray,
        count: np.ndarray,
        size: np.ndarray,
        global_p: np.ndarray,
        hierarchy: Hierarchy | None = None,
    ) -> np.ndarray:
        n_cls = len(size)
        with np.errstate(divide="ignore", invalid="ignore"):
            p = count / size[cls]
        if self.distance == "equal":
            # 1/2 sum_v |p_v - q_v| = 1/2 (1 + sum over the class's values of (|p_v - q_v| - q_v)).
            q = global_p[value]
            return 0.5 * (1.0 + np.bincount(cls, weights=np.abs(p - q) - q, minlength=n_cls))
        if hierarchy is None:
            raise ValueError(f"hierarchical t-closeness on '{self.column}' needs a hierarchy")
        # Li et al.'s EMD over the hierarchy: only nodes above a value the class holds can cost anything
        # (elsewhere the class has no mass, so no child has a positive surplus).
        height = hierarchy.height - 1
        total = np.zeros(n_cls)
        cur_cls, cur_node, cur_p = cls, value, p
        cur_extra = p - global_p[value]
        for lvl in range(1, hierarchy.height):
            parent = hierarchy.parent_ids(lvl)[cur_node]
            n_par = len(hierarchy.labels[lvl])
            key = cur_cls * n_par + parent
            inv, uk = factorize(key)
            pos = np.bincount(inv, weights=np.clip(cur_extra, 0, None), minlength=len(uk))
            p_par = np.bincount(inv, weights=cur_p, minlength=len(uk))
            cur_cls, cur_node = uk // n_par, uk % n_par
            extra = p_par - hierarchy.level_mass(lvl, global_p)[cur_node]
            total += np.bincount(
                cur_cls, weights=(lvl / height) * np.minimum(pos, pos - extra), minlength=n_cls
            )
            cur_p, cur_extra = p_par, extra
        return total

    def describe(self) -> dict[str, object]:
        return {"column": self.column, "t": self.t, "distance": self.distance}


@dataclass(frozen=True)
class KMap:
    """k-map (Sweeney; ARX's KMap): every released record matches at least ``k`` people of the
    population. Either against a population table (exact: the class's population count), or estimated
    from the population's size: the class size in the sample a population class of size k would show,
    from a Poisson or zero-truncated Poisson model at the given significance level."""

    k: int
    population: int | None = None  # population size (estimated k-map); None: against a population table
    estimator: str = "zero-truncated-poisson"  # or "poisson"
    significance: float = 0.01

    def validate(self) -> None:
        if isinstance(self.k, bool) or not isinstance(self.k, int | np.integer) or self.k < 1:
            raise DeidError(f"k-map: k must be a whole number of at least 1, got {self.k!r}")
        if self.population is not None and (
            isinstance(self.population, bool)
            or not isinstance(self.population, int | np.integer)
            or self.population < 1
        ):
            raise DeidError(
                f"k-map: population must be a whole number of at least 1, got {self.population!r}"
            )
        if self.estimator not in ("poisson", "zero-truncated-poisson"):
            raise DeidError(
                f"k-map: estimator must be poisson or zero-truncated-poisson, got {self.estimator!r}"
            )
        if isinstance(self.significance, bool) or not 0 <= self.significance <= 1:
            raise DeidError(f"k-map: significance must be in [0, 1], got {self.significance!r}")

    def derived_k(self, sample_size: int) -> int:
        """The smallest class size that, at the significance level, means k or more in the population
        (ARX KMap.calculateKPoisson / calculateKZeroPoisson, then at most k and at most the sample)."""
        assert self.population is not None
        lam = sample_size / self.population * self.k
        threshold = 1.0 - self.significance
        if self.estimator == "poisson":
            counter, value = 0, 0.0
            while value < threshold:
                value = _poisson_cdf(counter, lam)
                counter += 1
                if counter >= self.k:
                    break
            derived = counter + 1
        else:
            v2 = 1.0 - math.exp(-lam)
            counter, value = 1, 0.0
            while value < threshold:
                value += _poisson_pmf(counter, lam) / v2 if v2 > 0 else 1.0
                counter += 1
                if counter >= self.k:
                    break
            derived = counter
        return max(1, min(self.k, derived, sample_size))

    def describe(self) -> dict[str, object]:
        return {
            "k": self.k,
            "population": self.population,
            "estimator": self.estimator if self.population is not None else "population-table",
            "significance": self.significance if self.population is not None else None,
        }


def _poisson_pmf(k: int, lam: float) -> float:
    if lam <= 0:
        return 1.0 if k == 0 else 0.0
    return math.exp(k * math.log(lam) - lam - math.lgamma(k + 1))


def _poisson_cdf(k: int, lam: float) -> float:
    return min(1.0, sum(_poisson_pmf(i, lam) for i in range(k + 1)))


@dataclass(frozen=True)
class DPresence:
    """delta-presence (Nergiz et al. 2007; ARX's DPresence): for every class, the share of its population
    records that are in the released table lies in [delta_min, delta_max]. Needs the population table."""

    delta_min: float
    delta_max: float

    def validate(self) -> None:
        lo, hi = self.delta_min, self.delta_max
        for name, v in (("delta_min", lo), ("delta_max", hi)):
            if isinstance(v, bool) or not isinstance(v, int | float) or not 0 <= v <= 1:
                raise DeidError(f"d-presence: {name} must be in [0, 1], got {v!r}")
        if lo > hi:
            raise DeidError(f"d-presence: delta_min {lo} is above delta_max {hi}")

    def fulfilled(self, size: np.ndarray, psize: np.ndarray) -> np.ndarray:
        with np.errstate(divide="ignore", invalid="ignore"):
            delta = np.where(size > 0, size / np.where(psize > 0, psize, 1), 0.0)
        return (delta >= self.delta_min - 1e-12) & (delta <= self.delta_max + 1e-12)

    def describe(self) -> dict[str, object]:
        return {"delta_min": self.delta_min, "delta_max": self.delta_max}


def _parent_ids(h: Hierarchy, lvl: int, child_ids: np.ndarray) -> np.ndarray:
    """Value id at ``lvl`` of each value id at ``lvl - 1`` (the hierarchy is a tree)."""
    mapping = np.zeros(len(h.labels[lvl - 1]), dtype=np.int64)
    mapping[h.codes[lvl - 1]] = h.codes[lvl]
    return mapping[child_ids]
