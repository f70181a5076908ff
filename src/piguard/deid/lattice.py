"""Optimal full-domain generalization: search over the lattice of per-column hierarchy levels.

The table is reduced once to its distinct quasi-identifier tuples (with counts) and every column is
integer-encoded per hierarchy level once. Checking a lattice node then costs a few numpy passes over the
distinct tuples: a combined integer key, ``np.bincount``/``np.unique`` for the class sizes, and one
vectorized call per privacy model. No Python loop runs over rows.

Search (exact, in the spirit of ARX's Flash): both metrics are sums over columns of a per-record term that
depends only on the column's level, plus a penalty for suppressed records (counted as fully generalized,
as ARX does). The metric without suppression is therefore a lower bound that costs nothing per node, and
with a 0 % suppression limit it is the score itself.

Two strategies run in turns and share what they learn (the first to finish proves the optimum): a
best-first pass in order of the lower bound, which stops once the bound exceeds the best score (fast when
the optimum is low, e.g. large tables with many duplicates), and a top-down sweep, which gets most of the
time. In the top-down sweep nodes are visited by lattice height from the top.

The monotone part of the models (k-anonymity and distinct l-diversity with any suppression limit; every
model when nothing may be suppressed) prunes: a node with a failing direct generalization fails without a
check, as do all of its specializations. A node whose bound cannot beat the best score so far is only
checked for the monotone part (to keep pruning); otherwise the non-monotone models (entropy/recursive
l-diversity, t-closeness under suppression) are checked too and the score is computed from the suppressed
tuples. The result is the global optimum; ties go to the lower lattice height, then to lexicographically
smaller levels.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field

import numpy as np
import polars as pl

from piguard.deid.errors import DeidError, mask_cell
from piguard.deid.hierarchy import Hierarchy, encode_columns
from piguard.deid.models import KAnonymity, LDiversity, TCloseness

MAX_LATTICE = 2_000_000
_NO_MASK = np.zeros(0, dtype=bool)
BEST_FIRST_SHARE = 10.0  # top-down may use this many times the best-first search's time


@dataclass
class Models:
    k: int = 1
    l_diversity: list[LDiversity] = field(default_factory=list)
    t_closeness: list[TCloseness] = field(default_factory=list)
    suppression: float = 0.0  # share of records that may be suppressed

    @property
    def sensitive_columns(self) -> list[str]:
        cols: list[str] = []
        for m in [*self.l_diversity, *self.t_closeness]:
            if m.column not in cols:
                cols.append(m.column)
        return cols

    @property
    def protects(self) -> bool:
        """True when some model constrains the quasi-identifiers (k = 1 alone protects nothing)."""
        return self.k > 1 or bool(self.l_diversity or self.t_closeness)

    def validate(self) -> None:
        """Refuse parameters that are not what they claim (``k=True``, ``k=2.5``, ``t=-1``) before any
        result is claimed for them."""
        if isinstance(self.k, bool) or not isinstance(self.k, int | np.integer) or self.k < 1:
            raise DeidError(f"k must be a whole number of at least 1, got {self.k!r}")
        s = self.suppression
        if isinstance(s, bool) or not isinstance(s, int | float) or not 0 <= s < 1:
            raise DeidError(f"suppression limit must be a number in [0, 1), got {s!r}")
        for m in self.l_diversity:
            if isinstance(m.l, bool) or not isinstance(m.l, int | np.integer) or m.l < 1:
                raise DeidError(f"l-diversity on '{m.column}': l must be a whole number >= 1, got {m.l!r}")
            if m.variant == "recursive" and not m.c > 0:
                raise DeidError(f"recursive (c,l)-diversity on '{m.column}': c must be > 0")
        for m in self.t_closeness:
            if isinstance(m.t, bool) or not isinstance(m.t, int | float) or not 0 <= m.t <= 1:
                raise DeidError(f"t-closeness on '{m.column}': t must be in [0, 1], got {m.t!r}")

    def describe(self) -> dict[str, object]:
        d: dict[str, object] = {"k_anonymity": KAnonymity(self.k).describe()}
        if self.l_diversity:
            d["l_diversity"] = [m.describe() for m in self.l_diversity]
        if self.t_closeness:
            d["t_closeness"] = [m.describe() for m in self.t_closeness]
        d["suppression_limit"] = self.suppression
        return d


@dataclass
class Result:
    qis: list[str]
    levels: tuple[int, ...]
    outlier_rows: np.ndarray  # bool per input row: suppressed
    class_of_row: np.ndarray  # equivalence class id per input row (-1 for suppressed)
    class_sizes: np.ndarray  # size per class id
    score: float
    column_loss: dict[str, float]
    metric: str
    checked: int
    lattice_size: int

    suppressed_records: int = 0

    @property
    def suppressed_rows(self) -> int:
        """Suppressed records (input rows, or summed weights for pre-aggregated input)."""
        return self.suppressed_records

    def levels_by_column(self) -> dict[str, int]:
        return dict(zip(self.qis, self.levels, strict=True))


class Lattice:
    """Encoded problem: distinct QI tuples, per-level codes, sensitive histograms, metric terms."""

    def __init__(
        self,
        columns: dict[str, np.ndarray],
        hierarchies: dict[str, Hierarchy],
        qis: list[str],
        models: Models,
        metric: str = "loss",
        weights: np.ndarray | None = None,
    ) -> None:
        """``weights``: records per input row, for pre-aggregated input (e.g. group counts from Spark)."""
        if not qis:
            raise DeidError("no quasi-identifiers given")
        for q in qis:
            if q not in columns:
                raise DeidError(f"quasi-identifier '{q}' is not a column of the table")
            if q not in hierarchies:
                raise DeidError(f"quasi-identifier '{q}' has no hierarchy")
        if metric not in ("loss", "entropy"):
            raise DeidError(f"unknown metric '{metric}' (use loss or entropy)")
        models.validate()
        self.qis = qis
        self.models = models
        self.metric = metric
        self.hier = [hierarchies[q] for q in qis]
        self.heights = [h.height for h in self.hier]
        size = math.prod(self.heights)
        if size > MAX_LATTICE:
            raise DeidError(
                f"the lattice has {size:,} nodes (too many for an optimal search): use mondrian mode"
            )
        n_rows = len(columns[qis[0]])
        wts = np.ones(n_rows) if weights is None else np.asarray(weights, dtype=np.float64)
        if len(wts) != n_rows or (n_rows and wts.min() < 0):
            raise DeidError("weights must be one non-negative count per row")
        n = round(float(wts.sum()))
        self.n = n
        if n == 0:
            raise DeidError("the table has no rows")
        if models.k > n:
            raise DeidError(f"impossible model: k={models.k} is larger than the table ({n} rows)")
        self.max_outliers = math.floor(models.suppression * n + 1e-9)

        leaf = np.stack(
            encode_columns({q: columns[q] for q in qis}, dict(zip(qis, self.hier, strict=True))), axis=1
        )
        # Distinct QI tuples with their counts; every check works on these, not on rows.
        tup_key = _combine([leaf[:, j] for j in range(leaf.shape[1])], [h.domain_size for h in self.hier])
        uk, first, self.row_tuple = np.unique(tup_key, return_index=True, return_inverse=True)
        self.row_tuple = self.row_tuple.reshape(-1)
        self.leaf = leaf[first]
        self.w = np.bincount(self.row_tuple, weights=wts, minlength=len(uk))
        self.row_weight = wts
        self.n_tuples = len(uk)
        # gen[d][lvl]: value id (int32) at level lvl for every distinct tuple; card[d][lvl]: number of ids.
        self.gen = [
            [h.codes[lvl][self.leaf[:, d]] for lvl in range(h.height)] for d, h in enumerate(self.hier)
        ]
        self.card = [[len(h.labels[lvl]) for lvl in range(h.height)] for h in self.hier]

        # Sensitive attributes: distinct (tuple, value) pairs with counts, global distributions.
        self._global: dict[str, np.ndarray] = {}
        self.sens: dict[str, tuple[np.ndarray, np.ndarray, np.ndarray, int, Hierarchy | None]] = {}
        for col in models.sensitive_columns:
            if col not in columns:
                raise DeidError(f"sensitive attribute '{col}' is not a column of the table")
            if col in qis:
                raise DeidError(f"sensitive attribute '{col}' is also a quasi-identifier")
            sh = hierarchies.get(col)
            needs_h = any(t.column == col and t.distance == "hierarchical" for t in models.t_closeness)
            if needs_h and sh is None:
                raise DeidError(f"hierarchical t-closeness on '{col}' needs a hierarchy for it")
            if needs_h and sh is not None:
                scode, n_s = sh.encode_column(columns[col]).astype(np.int64), sh.domain_size
            else:
                scode = _dense_codes(columns[col])
                n_s = int(scode.max()) + 1 if n else 0
            pair = self.row_tuple.astype(np.int64) * n_s + scode
            up, inv = np.unique(pair, return_inverse=True)
            pc = np.bincount(inv.reshape(-1), weights=wts, minlength=len(up))
            global_p = np.bincount(scode, weights=wts, minlength=n_s) / n
            self.sens[col] = (up // n_s, up % n_s, pc.astype(np.float64), n_s, sh if needs_h else None)
            self._global[col] = global_p

        self._hist_cache: tuple[object, dict[str, np.ndarray]] = (None, {})
        self._half_cache: dict[tuple[int, tuple[int, ...]], tuple[np.ndarray, int]] = {}
        # Bound the cache to about 64 MB of keys.
        self._half_cache_max = max(16, (64 << 20) // max(8 * self.n_tuples, 1))
        self._metric_terms()

    # ------------------------------------------------------------------ metric
    def _metric_terms(self) -> None:
        """Per column and level: term per distinct tuple (for the non-suppressed part), and the total."""
        self.term: list[list[np.ndarray]] = []
        self.penalty: list[np.ndarray] = []  # what a suppressed tuple costs per record, per column
        self.total: list[np.ndarray] = []
        for d, h in enumerate(self.hier):
            per_level, totals = [], []
            if self.metric == "loss":
                for lvl in range(h.height):
                    t = h.shares(lvl)[self.gen[d][lvl]]
                    per_level.append(t)
                    totals.append(float((t * self.w).sum()))
                self.penalty.append(np.ones(self.n_tuples))
            else:
                # Non-uniform entropy: -log2 P(original | generalized value), frequencies from the input.
                f0 = np.bincount(self.gen[d][0], weights=self.w, minlength=self.card[d][0])
                for lvl in range(h.height):
                    fl = np.bincount(self.gen[d][lvl], weights=self.w, minlength=self.card[d][lvl])
                    t = -np.log2(f0[self.gen[d][0]] / fl[self.gen[d][lvl]])
                    per_level.append(t)
                    totals.append(float((t * self.w).sum()))
                self.penalty.append(-np.log2(f0[self.gen[d][0]] / self.n))
            self.term.append(per_level)
            self.total.append(np.array(totals))

    def _normalize(self, d: int, agg: float) -> float:
        if self.metric == "loss":
            # ARX MetricMDNMLoss.normalizeGeneralized: (x - N/|domain|) / (N - N/|domain|), at least 0.
            lo = self.n / self.hier[d].domain_size
            return round(max(0.0, (agg - lo) / (self.n - lo)), 12) if self.n > lo else 0.0
        return agg

    def _aggregate(self, per_col: np.ndarray) -> np.ndarray | float:
        if self.metric == "loss":
            # ARX's default aggregate for Loss: geometric mean of (x + 1), minus 1.
            return np.exp(np.log1p(per_col).mean(axis=-1)) - 1.0
        return per_col.sum(axis=-1)

    def column_scores(self, levels: tuple[int, ...], outlier_tuple: np.ndarray | None) -> np.ndarray:
        out = np.empty(len(levels))
        for d, lvl in enumerate(levels):
            agg = self.total[d][lvl]
            if outlier_tuple is not None and outlier_tuple.any():
                wo = self.w[outlier_tuple]
                agg += float((wo * (self.penalty[d][outlier_tuple] - self.term[d][lvl][outlier_tuple])).sum())
            out[d] = self._normalize(d, agg)
        return out

    # ------------------------------------------------------------------ checks
    def _key(self, levels: tuple[int, ...]) -> tuple[np.ndarray, int]:
        """Combined class key per distinct tuple. The keys of the first and second half of the columns are
        cached per level combination, so a node costs one multiply-add instead of one per column."""
        d = len(levels)
        if d < 4:
            return _combine_space(
                [self.gen[i][lv] for i, lv in enumerate(levels)],
                [self.card[i][lv] for i, lv in enumerate(levels)],
            )
        h = d // 2
        ka, sa = self._half(0, levels[:h])
        kb, sb = self._half(h, levels[h:])
        if sa * sb < (1 << 62):
            return ka * sb + kb, sa * sb
        return _combine_space([ka, kb], [sa, sb])

    def _half(self, start: int, lv: tuple[int, ...]) -> tuple[np.ndarray, int]:
        hit = self._half_cache.get((start, lv))
        if hit is None:
            hit = _combine_space(
                [self.gen[start + i][x] for i, x in enumerate(lv)],
                [self.card[start + i][x] for i, x in enumerate(lv)],
            )
            if len(self._half_cache) >= self._half_cache_max:
                self._half_cache.clear()
            self._half_cache[(start, lv)] = hit
        return hit

    def classes(self, levels: tuple[int, ...], compact: bool = True) -> tuple[np.ndarray, np.ndarray]:
        """(class id per distinct tuple, records per class) for a node. With ``compact=False`` the ids may
        leave gaps (classes of size 0), which is enough for k-anonymity and saves a remapping."""
        key, space = self._key(levels)
        if space <= max(1 << 16, 8 * self.n_tuples):
            counts = np.bincount(key, weights=self.w, minlength=space)
            if not compact:
                return key, counts
            nz = np.flatnonzero(counts)
            remap = np.empty(space, dtype=np.int64)
            remap[nz] = np.arange(len(nz))
            return remap[key], counts[nz]
        _, inv = np.unique(key, return_inverse=True)
        inv = inv.reshape(-1)
        return inv, np.bincount(inv, weights=self.w)

    # ------------------------------------------------------------------ search
    def search(self) -> Result:
        nodes = np.indices(self.heights).reshape(len(self.heights), -1).T.astype(np.int64)  # product order
        level_norm = [np.array([self._normalize(d, x) for x in self.total[d]]) for d in range(len(self.qis))]
        per_col = np.stack([level_norm[d][nodes[:, d]] for d in range(len(self.qis))], axis=1)
        bound = np.asarray(self._aggregate(per_col))
        strides = np.array(
            [math.prod(self.heights[d + 1 :]) for d in range(len(self.heights))], dtype=np.int64
        )
        heights = nodes.sum(axis=1)
        self._nodes, self._bound = nodes, bound
        # 0 unknown, 1 passes the monotone part, 2 fails it (and so do all specializations).
        self._status = np.zeros(len(nodes), dtype=np.int8)
        self._full_done = np.zeros(len(nodes), dtype=bool)  # full check and score done
        self._best_score, self._best, self._checked = math.inf, None, 0
        # Two strategies share what they learn and run in turns; the first to finish proves the optimum.
        # Top-down is good when the optimum is high (Adult with k=5); best-first by lower bound when it is
        # low (large tables with many duplicates). Best-first gets about 1/11 of the time, so the cost stays
        # close to that of the better strategy in either case.
        top_down, best_first = self._top_down(heights, strides), self._best_first()
        spent = [0.0, 0.0]  # seconds used by top-down, best-first
        while True:
            which = 1 if spent[1] * BEST_FIRST_SHARE <= spent[0] else 0
            t0 = time.perf_counter()
            step = next(best_first if which else top_down, "done")
            spent[which] += time.perf_counter() - t0
            if step == "done":
                break
        if self._best is None:
            raise DeidError("no transformation satisfies the privacy models within the suppression limit")
        return self._result(self._best, self._best_score, self._checked, len(nodes))

    def _promising(self, idx: int) -> bool:
        return bool(self._bound[idx] <= self._best_score + 1e-12)

    def _evaluate(self, idx: int, full: bool) -> None:
        """Check a node (monotone part always, everything when ``full``) and update the best score."""
        if self._full_done[idx] or (not full and self._status[idx]):
            return
        levels = tuple(int(x) for x in self._nodes[idx])
        mono_ok, full_ok, outlier = self.check_parts(levels, full=full)
        self._checked += 1
        self._status[idx] = 1 if mono_ok else 2
        if not full and mono_ok:
            return
        self._full_done[idx] = True
        if not full_ok:
            return
        score = float(self._aggregate(self.column_scores(levels, outlier if outlier.any() else None)))
        best = self._best
        if score < self._best_score - 1e-12 or (
            abs(score - self._best_score) <= 1e-12
            and best is not None
            and (sum(levels), levels) < (sum(best), best)
        ):
            self._best_score, self._best = score, levels

    def _top_down(self, heights: np.ndarray, strides: np.ndarray):  # type: ignore[no-untyped-def]
        """By lattice height from the top: a node with a failing generalization fails without a check."""
        nodes, status = self._nodes, self._status
        for h in range(int(heights.max()), -1, -1):
            layer = np.flatnonzero(heights == h)
            inherited = np.zeros(len(layer), dtype=bool)
            for d, st in enumerate(strides):
                can = nodes[layer, d] < self.heights[d] - 1
                inherited[can] |= status[layer[can] + st] == 2
            status[layer[inherited]] = 2
            todo = layer[~inherited]
            order = np.lexsort(
                (*(nodes[todo, d] for d in reversed(range(nodes.shape[1]))), self._bound[todo])
            )
            for idx in todo[order]:
                if status[idx] == 2:
                    continue
                before = self._checked
                self._evaluate(int(idx), full=self._promising(int(idx)))
                if self._checked != before:
                    yield "step"
        return

    def _best_first(self):  # type: ignore[no-untyped-def]
        """By lower bound: once the bound exceeds the best score, nothing left can beat it."""
        nodes, bound = self._nodes, self._bound
        order = np.lexsort(
            (*(nodes[:, d] for d in reversed(range(nodes.shape[1]))), nodes.sum(axis=1), bound)
        )
        for pos, idx in enumerate(order):
            if bound[idx] > self._best_score + 1e-12:
                return
            if self._status[idx] == 2:
                continue
            before = self._checked
            self._evaluate(int(idx), full=True)
            # Finish at once when nothing left can beat the best (saves the other strategy's turn).
            if pos + 1 == len(order) or bound[order[pos + 1]] > self._best_score + 1e-12:
                return
            if self._checked != before:
                yield "step"
        return

    def check_parts(self, levels: tuple[int, ...], full: bool = True) -> tuple[bool, bool, np.ndarray]:
        """(passes the monotone models, passes all models, outlier flag per distinct tuple).

        The monotone part (k-anonymity, distinct l-diversity; every model when nothing may be
        suppressed) decides pruning; the full check is skipped when ``full`` is false.
        """
        cls, sizes = self.classes(levels, compact=bool(self.models.sensitive_columns))
        ok = sizes >= self.models.k
        mono = ok
        non_mono: list[tuple[str, object]] = []
        for col in self.models.sensitive_columns:
            for m in [*self.models.l_diversity, *self.models.t_closeness]:
                if m.column != col:
                    continue
                if self.models.suppression == 0 or m.monotone_with_suppression:
                    mono = mono & self._model_ok(m, cls, sizes)
                else:
                    non_mono.append((col, m))
        # Suppressed records = records in failing classes (no per-tuple pass needed to count them).
        mono_ok = float(sizes[~mono].sum()) <= self.max_outliers
        if not mono_ok:
            return False, False, _NO_MASK  # the mask is only used for nodes that pass
        if not full or not non_mono:
            return mono_ok, not non_mono, ~mono[cls]
        full_ok = mono.copy()
        for _, m in non_mono:
            full_ok &= self._model_ok(m, cls, sizes)
        return mono_ok, float(sizes[~full_ok].sum()) <= self.max_outliers, ~full_ok[cls]

    def _hist(self, col: str, cls: np.ndarray, n_cls: int) -> np.ndarray:
        cache = self._hist_cache
        if cache[0] is cls and col in cache[1]:
            return cache[1][col]
        if cache[0] is not cls:
            self._hist_cache = (cls, {})
        tup, scode, pc, n_s, _ = self.sens[col]
        hist = np.bincount(cls[tup] * n_s + scode, weights=pc, minlength=n_cls * n_s).reshape(n_cls, n_s)
        self._hist_cache[1][col] = hist
        return hist

    def _model_ok(self, m: object, cls: np.ndarray, sizes: np.ndarray) -> np.ndarray:
        hist = self._hist(m.column, cls, len(sizes))  # type: ignore[attr-defined]
        if isinstance(m, LDiversity):
            return m.fulfilled(hist)
        assert isinstance(m, TCloseness)
        return m.fulfilled(hist, self._global[m.column], self.sens[m.column][4])

    def check(self, levels: tuple[int, ...]) -> tuple[bool, np.ndarray, np.ndarray, np.ndarray]:
        """(passes all models, outlier flag per distinct tuple, class id per tuple, class sizes)."""
        _, full_ok, outlier = self.check_parts(levels, full=True)
        cls, sizes = self.classes(levels)
        return full_ok, outlier, cls, sizes

    def _result(self, levels: tuple[int, ...], score: float, checked: int, size: int) -> Result:
        passes, outlier, cls, _ = self.check(levels)
        assert passes
        row_out = outlier[self.row_tuple]
        # Class ids over kept records only, renumbered densely.
        kept_cls = np.where(row_out, -1, cls[self.row_tuple])
        uniq, inv = np.unique(kept_cls[~row_out], return_inverse=True)
        class_of_row = np.full(len(self.row_tuple), -1, dtype=np.int64)
        class_of_row[~row_out] = inv.reshape(-1)
        class_sizes = np.rint(
            np.bincount(inv.reshape(-1), weights=self.row_weight[~row_out], minlength=len(uniq))
        ).astype(np.int64)
        cols = self.column_scores(levels, outlier if outlier.any() else None)
        return Result(
            qis=list(self.qis),
            levels=levels,
            outlier_rows=row_out,
            class_of_row=class_of_row,
            class_sizes=class_sizes,
            score=score,
            column_loss=dict(zip(self.qis, map(float, cols), strict=True)),
            metric=self.metric,
            checked=checked,
            lattice_size=size,
            suppressed_records=round(float(self.row_weight[row_out].sum())),
        )

    def labels(self, d: int, levels: tuple[int, ...]) -> np.ndarray:
        """Generalized text per input row for QI ``d`` at ``levels[d]``."""
        h = self.hier[d]
        lab = np.asarray(h.labels[levels[d]], dtype=object)
        return lab[self.gen[d][levels[d]]][self.row_tuple]


def _dense_codes(values: np.ndarray | pl.Series) -> np.ndarray:
    """0..m-1 codes of a column's distinct values (as text; null as the empty string)."""
    s = values if isinstance(values, pl.Series) else pl.Series(np.asarray(values, dtype=object).astype(str))
    s = s.cast(pl.String).fill_null("")
    return (s.rank("dense").to_numpy().astype(np.int64) - 1) if len(s) else np.zeros(0, dtype=np.int64)


def _combine(codes: list[np.ndarray], cards: list[int]) -> np.ndarray:
    return _combine_space(codes, cards)[0]


def _combine_space(codes: list[np.ndarray], cards: list[int]) -> tuple[np.ndarray, int]:
    """One int64 key per position from several code arrays; re-factorizes when the space grows large."""
    key = codes[0].astype(np.int64, copy=True)
    space = int(cards[0])
    for c, card in zip(codes[1:], cards[1:], strict=True):
        if space * card >= (1 << 62):
            uniq, key = np.unique(key, return_inverse=True)
            key = key.reshape(-1).astype(np.int64)
            space = len(uniq)
        key *= card
        key += c
        space *= int(card)
    return key, space


__all__ = ["Lattice", "Models", "Result", "mask_cell"]
