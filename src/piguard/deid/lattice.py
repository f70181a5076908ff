"""Full-domain generalization: search over the lattice of per-column hierarchy levels.

The table is reduced once to its distinct quasi-identifier tuples (with their record counts, and for models
against a population table, their population counts) and every column is integer-encoded per hierarchy
level once. Checking a lattice node then costs a few numpy passes over the distinct tuples: a combined
integer key, a grouping into equivalence classes, and one vectorized pass per privacy model over the
classes. Sensitive attributes are handled as sparse (class, value, count) triples, so a sensitive column
with thousands of values costs no more than its occurrences (a dense class x value matrix took 14 GB for
hierarchical t-closeness on ``cup``).

**Optimal search.** Every metric offered has a lower bound that costs nothing per node (the loss and
entropy metrics are sums of per-column terms that depend only on the column's level; the suppression of
records can only add to them), and the lower bound is monotone: a generalization never has a smaller bound
than its specializations. The set of *promising* nodes, whose bound is below the best score found so far,
is therefore closed downwards. The search visits promising nodes top-down by lattice height (within a
height, by bound) and checks each one unless a checked generalization of it already failed the monotone
part of the models (k-anonymity, distinct l-diversity, k-map and the highest-risk floor always; every model
when nothing may be suppressed), in which case it fails without a check. A node that is not promising is
never checked. The first pass over the lattice ends with the optimum, proven. Beside it runs a best-first
pass in order of the bound, which proves the optimum early when it is low in the lattice; the two share
what they learn.

**Limits.** ``time_limit`` (seconds) and ``max_steps`` (node checks) stop the search early; the result is
then the best transformation found so far, which satisfies every privacy model, flagged as not proven
optimal. The top node is checked first, so a result exists from the first step whenever one exists.

**Heuristic search** for lattices too large to enumerate (``strategy`` ``top-down``, ``bottom-up`` or
``genetic``, as in ARX): greedy descent from the top, greedy ascent from the bottom, or a genetic search,
each under the same limits and never claiming optimality.
"""

from __future__ import annotations

import heapq
import math
import time
from collections.abc import Iterator
from dataclasses import dataclass, field

import numpy as np
import polars as pl

from piguard.deid.errors import DeidError, mask_cell
from piguard.deid.grouping import factorize
from piguard.deid.hierarchy import Hierarchy, encode_columns
from piguard.deid.models import DPresence, KAnonymity, KMap, LDiversity, TCloseness

MAX_LATTICE = 2_000_000
CLASS_CACHE_BYTES = 128 << 20  # class ids of recently checked nodes, for their children
SUPPRESSED_CACHE_BYTES = 128 << 20  # tuples a checked node must suppress, for its children's bounds
BEST_FIRST_SHARE = 0.25  # best-first gets this share of the top-down pass's time
METRICS = {
    "loss": "ARX's Loss (MetricMDNMLoss): domain share per value, suppressed records count 1; geometric mean",
    "entropy": "non-uniform entropy; a suppressed record counts as fully generalized",
    "entropy-monotonic": "ARX's non-uniform entropy (MetricMDNUEntropy): suppressed records count as "
    "generalized to the node's levels (monotone)",
    "entropy-nonmonotonic": "ARX's non-monotonic non-uniform entropy (MetricMDNUNMEntropy): plus the "
    "entropy of the suppressed records' generalized values",
    "discernability-monotonic": "ARX's DM*: sum of squared class sizes, suppressed classes included",
    "discernability-nonmonotonic": "ARX's DM: squared class sizes, each suppressed record costs n",
    "aecs": "ARX's average equivalence class size (suppressed records form one class)",
}
STRATEGIES = ("optimal", "top-down", "bottom-up", "genetic")
BOTTOM_UP_STEPS = 2000  # node checks of the bottom-up heuristic when no limit is given
_ENTROPY = ("entropy", "entropy-monotonic", "entropy-nonmonotonic")
_CLASS_METRICS = ("discernability-monotonic", "discernability-nonmonotonic", "aecs")


@dataclass
class Models:
    k: int = 1
    l_diversity: list[LDiversity] = field(default_factory=list)
    t_closeness: list[TCloseness] = field(default_factory=list)
    suppression: float = 0.0  # share of records that may be suppressed
    # Risk as a target (prosecutor model): the average risk (classes / records released) and the highest
    # risk of a record (1 / its class size) may not exceed these. With ``records_at_risk`` the highest risk
    # may be exceeded by that share of records (ARX's AverageReidentificationRisk(avg, highest, share)).
    average_risk: float | None = None
    highest_risk: float | None = None
    records_at_risk: float | None = None
    k_map: KMap | None = None
    d_presence: DPresence | None = None

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
        return bool(
            self.k > 1
            or self.l_diversity
            or self.t_closeness
            or self.average_risk is not None
            or (self.highest_risk is not None and self.highest_risk < 1)
            or (self.k_map is not None and self.k_map.k > 1)
            or self.d_presence is not None
        )

    @property
    def needs_population(self) -> bool:
        return self.d_presence is not None or (self.k_map is not None and self.k_map.population is None)

    def validate(self) -> None:
        """Refuse parameters that are not what they claim (``k=True``, ``k=2.5``, ``t=-1``) before any
        result is claimed for them."""
        if not _whole(self.k) or self.k < 1:
            raise DeidError(f"k must be a whole number of at least 1, got {self.k!r}")
        s = self.suppression
        if not _real(s) or not 0 <= s <= 1:
            raise DeidError(f"suppression limit must be a number in [0, 1], got {s!r}")
        for m in self.l_diversity:
            if not _whole(m.l) or m.l < 1:
                raise DeidError(f"l-diversity on '{m.column}': l must be a whole number >= 1, got {m.l!r}")
            if m.variant == "recursive" and not (_real(m.c) and m.c > 0):
                raise DeidError(f"recursive (c,l)-diversity on '{m.column}': c must be > 0")
            if m.variant not in ("distinct", "entropy", "recursive"):
                raise DeidError(f"l-diversity on '{m.column}': unknown variant {m.variant!r}")
        for m in self.t_closeness:
            if not _real(m.t) or not 0 <= m.t <= 1:
                raise DeidError(f"t-closeness on '{m.column}': t must be in [0, 1], got {m.t!r}")
        for name in ("average_risk", "highest_risk"):
            v = getattr(self, name)
            if v is not None and (not _real(v) or not 0 < v <= 1):
                raise DeidError(f"{name.replace('_', ' ')} must be a number in (0, 1], got {v!r}")
        r = self.records_at_risk
        if r is not None:
            if not _real(r) or not 0 <= r <= 1:
                raise DeidError(f"records at risk must be a share in [0, 1], got {r!r}")
            if self.highest_risk is None:
                raise DeidError("records at risk needs a highest risk to count records above")
        if self.k_map is not None:
            self.k_map.validate()
        if self.d_presence is not None:
            self.d_presence.validate()

    def describe(self) -> dict[str, object]:
        d: dict[str, object] = {"k_anonymity": KAnonymity(self.k).describe()}
        if self.l_diversity:
            d["l_diversity"] = [m.describe() for m in self.l_diversity]
        if self.t_closeness:
            d["t_closeness"] = [m.describe() for m in self.t_closeness]
        if self.average_risk is not None:
            d["average_risk"] = self.average_risk
        if self.highest_risk is not None:
            d["highest_risk"] = self.highest_risk
        if self.records_at_risk is not None:
            d["records_at_risk"] = self.records_at_risk
        if self.k_map is not None:
            d["k_map"] = self.k_map.describe()
        if self.d_presence is not None:
            d["delta_presence"] = self.d_presence.describe()
        d["suppression_limit"] = self.suppression
        return d


def _whole(x: object) -> bool:
    return isinstance(x, int | np.integer) and not isinstance(x, bool)


def _real(x: object) -> bool:
    return isinstance(x, int | float | np.integer | np.floating) and not isinstance(x, bool) and x == x


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
    proven_optimal: bool = True
    stopped_by: str | None = None  # "time_limit" | "step_limit" | None
    strategy: str = "optimal"
    search_seconds: float = 0.0

    @property
    def suppressed_rows(self) -> int:
        """Suppressed records (input rows, or summed weights for pre-aggregated input)."""
        return self.suppressed_records

    def levels_by_column(self) -> dict[str, int]:
        return dict(zip(self.qis, self.levels, strict=True))


@dataclass
class NodeCheck:
    """What checking one node found."""

    mono_ok: bool  # the monotone part holds within the suppression limit
    ok: bool  # every model holds within the suppression limit (only when checked in full)
    cls: np.ndarray  # class id per distinct tuple
    size: np.ndarray  # records per class
    outlier: np.ndarray  # bool per class: suppressed
    suppressed: float  # records suppressed
    mono_outlier: np.ndarray | None = None  # bool per class: failing the monotone part


class Lattice:
    """Encoded problem: distinct QI tuples, per-level codes, sensitive triples, metric terms."""

    def __init__(
        self,
        columns: dict[str, np.ndarray | pl.Series],
        hierarchies: dict[str, Hierarchy],
        qis: list[str],
        models: Models,
        metric: str = "loss",
        weights: np.ndarray | None = None,
        population: dict[str, np.ndarray | pl.Series] | None = None,
        gs_factor: float = 0.5,
    ) -> None:
        """``weights``: records per input row, for pre-aggregated input (group counts from Spark).
        ``population``: the population table's quasi-identifier columns, for k-map and d-presence against a
        table (ARX's DataSubset: the population holds the released sample's records)."""
        if not qis:
            raise DeidError("no quasi-identifiers given")
        for q in qis:
            if q not in columns:
                raise DeidError(f"quasi-identifier '{q}' is not a column of the table")
            if q not in hierarchies:
                raise DeidError(f"quasi-identifier '{q}' has no hierarchy")
        if metric not in METRICS:
            raise DeidError(f"unknown metric '{metric}' (use one of {', '.join(METRICS)})")
        models.validate()
        if not _real(gs_factor) or not 0 <= gs_factor <= 1:
            raise DeidError(f"gs_factor must be in [0, 1], got {gs_factor!r}")
        # ARX's weighting of generalization against suppression for Loss (0.5: both count fully).
        self.s_factor = 2 * gs_factor if gs_factor < 0.5 else 1.0
        self.g_factor = 1.0 if gs_factor <= 0.5 else 1.0 - 2 * (gs_factor - 0.5)
        if models.needs_population and population is None:
            raise DeidError("d-presence and k-map against a table need the population table")
        self.qis = qis
        self.models = models
        self.metric = metric
        self.hier = [hierarchies[q] for q in qis]
        self.heights = [h.height for h in self.hier]
        self.size = math.prod(self.heights)
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
        self.k_floor = models.k
        if models.highest_risk is not None and models.records_at_risk is None:
            self.k_floor = max(self.k_floor, math.ceil(1 / models.highest_risk - 1e-9))
        self.k_map_floor = 0
        if models.k_map is not None and models.k_map.population is not None:
            self.k_map_floor = models.k_map.derived_k(n)

        hmap = dict(zip(qis, self.hier, strict=True))
        leaf = np.stack(encode_columns({q: columns[q] for q in qis}, hmap), axis=1)
        pop_leaf = None
        if population is not None and models.needs_population:
            for q in qis:
                if q not in population:
                    raise DeidError(f"the population table has no column '{q}'")
            pop_leaf = np.stack(encode_columns({q: population[q] for q in qis}, hmap), axis=1)
        # Distinct QI tuples with their counts; every check works on these, not on rows.
        cards = [h.domain_size for h in self.hier]
        all_leaf = leaf if pop_leaf is None else np.concatenate([leaf, pop_leaf])
        tup_key = _combine([all_leaf[:, j] for j in range(all_leaf.shape[1])], cards)
        uk, first, inv = np.unique(tup_key, return_index=True, return_inverse=True)
        inv = inv.reshape(-1)
        self.row_tuple = inv[:n_rows]
        self.leaf = all_leaf[first]
        self.n_tuples = len(uk)
        self.w = np.bincount(self.row_tuple, weights=wts, minlength=self.n_tuples)
        self.row_weight = wts
        # First input row of each tuple (ARX breaks ties between equal classes by their first record).
        self.first_row = np.full(self.n_tuples, np.iinfo(np.int64).max, dtype=np.int64)
        np.minimum.at(self.first_row, self.row_tuple, np.arange(n_rows, dtype=np.int64))
        self.pw: np.ndarray | None = None
        if pop_leaf is not None:
            self.pw = np.bincount(inv[n_rows:], minlength=self.n_tuples).astype(np.float64)
            short = self.w > self.pw + 1e-9
            if short.any():
                raise DeidError(
                    f"the population table does not contain the released records ({int(short.sum())} "
                    f"quasi-identifier combinations occur more often in the table than in the population)"
                )
        # gen[d][lvl]: value id (int32) at level lvl for every distinct tuple; card[d][lvl]: number of ids.
        self.gen = [
            [h.codes[lvl][self.leaf[:, d]] for lvl in range(h.height)] for d, h in enumerate(self.hier)
        ]
        self.card = [[len(h.labels[lvl]) for lvl in range(h.height)] for h in self.hier]
        self._sensitive(columns, hierarchies, wts)
        # Smallest class size each t-closeness model can accept (a monotone necessary condition).
        self._t_floor = {
            id(t): t.min_class_size(self._global[t.column], self.sens[t.column][4])
            for t in models.t_closeness
            if models.suppression > 0
        }
        self._half_cache: dict[tuple[int, tuple[int, ...]], tuple[np.ndarray, int]] = {}
        self._cls_cache: dict[tuple[int, ...], tuple[np.ndarray, int]] = {}
        self._cls_cache_bytes = 0
        # Bound the cache to about 64 MB of keys.
        self._half_cache_max = max(16, (64 << 20) // max(8 * self.n_tuples, 1))
        self._metric_terms()

    # ------------------------------------------------------------------ setup
    def _sensitive(
        self, columns: dict[str, np.ndarray | pl.Series], hierarchies: dict[str, Hierarchy], wts: np.ndarray
    ) -> None:
        """Distinct (tuple, value) pairs with counts and the global distribution per sensitive column."""
        self.sens: dict[str, tuple[np.ndarray, np.ndarray, np.ndarray, int, Hierarchy | None]] = {}
        self._global: dict[str, np.ndarray] = {}
        models = self.models
        for col in models.sensitive_columns:
            if col not in columns:
                raise DeidError(f"sensitive attribute '{col}' is not a column of the table")
            if col in self.qis:
                raise DeidError(f"sensitive attribute '{col}' is also a quasi-identifier")
            sh = hierarchies.get(col)
            needs_h = any(t.column == col and t.distance == "hierarchical" for t in models.t_closeness)
            if needs_h and sh is None:
                raise DeidError(f"hierarchical t-closeness on '{col}' needs a hierarchy for it")
            if needs_h and sh is not None:
                scode, n_s = sh.encode_column(columns[col]).astype(np.int64), sh.domain_size
            else:
                scode = _dense_codes(columns[col])
                n_s = int(scode.max()) + 1 if len(scode) else 0
            pair = self.row_tuple.astype(np.int64) * n_s + scode
            up, inv = np.unique(pair, return_inverse=True)
            pc = np.bincount(inv.reshape(-1), weights=wts, minlength=len(up))
            self.sens[col] = (up // n_s, up % n_s, pc.astype(np.float64), n_s, sh if needs_h else None)
            self._global[col] = np.bincount(scode, weights=wts, minlength=n_s) / self.n

    def _metric_terms(self) -> None:
        """Per column and level: term per distinct tuple (for the non-suppressed part), and the total."""
        self.term: list[list[np.ndarray]] = []
        self.penalty: list[np.ndarray] = []  # what a suppressed tuple costs per record, per column
        self.total: list[np.ndarray] = []
        for d, h in enumerate(self.hier):
            per_level, totals = [], []
            if self.metric == "loss":
                for lvl in range(h.height):
                    t = h.shares(lvl)[self.gen[d][lvl]] * self.g_factor
                    per_level.append(t)
                    totals.append(float((t * self.w).sum()))
                self.penalty.append(np.ones(self.n_tuples))
            elif self.metric in _ENTROPY:
                # Non-uniform entropy: -log2 P(original | generalized value), frequencies from the input.
                f0 = np.bincount(self.gen[d][0], weights=self.w, minlength=self.card[d][0])
                for lvl in range(h.height):
                    fl = np.bincount(self.gen[d][lvl], weights=self.w, minlength=self.card[d][lvl])
                    with np.errstate(divide="ignore", invalid="ignore"):
                        t = np.where(self.w > 0, -np.log2(f0[self.gen[d][0]] / fl[self.gen[d][lvl]]), 0.0)
                    per_level.append(t)
                    totals.append(float((t * self.w).sum()))
                with np.errstate(divide="ignore", invalid="ignore"):
                    self.penalty.append(np.where(self.w > 0, -np.log2(f0[self.gen[d][0]] / self.n), 0.0))
            else:
                per_level = [np.zeros(self.n_tuples) for _ in range(h.height)]
                totals = [0.0] * h.height
                self.penalty.append(np.zeros(self.n_tuples))
            self.term.append(per_level)
            self.total.append(np.array(totals))

    # ------------------------------------------------------------------ metric
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

    def bounds(self, nodes: np.ndarray) -> np.ndarray:
        """A lower bound of the score of every node (rows of ``nodes``), free of any check."""
        if self.metric in _CLASS_METRICS:
            # At most min(distinct tuples, product of cardinalities) classes of n records in all.
            cards = np.ones(len(nodes))
            for d in range(len(self.qis)):
                cards = cards * np.asarray(self.card[d], dtype=np.float64)[nodes[:, d]]
            classes = np.minimum(cards, float(np.count_nonzero(self.w)))
            if len(self.qis) >= 4 and len(nodes) > 1:
                # Tighter: the classes are pairs of (first-half, second-half) values that occur, so at most
                # the product of the two halves' distinct counts (correlated columns such as ZIP and STATE
                # leave far fewer than the product of cardinalities). Counted once per half combination.
                h = len(self.qis) // 2
                halves = np.ones(len(nodes))
                for start, stop in ((0, h), (h, len(self.qis))):
                    part = nodes[:, start:stop]
                    combos, inv = np.unique(part, axis=0, return_inverse=True)
                    counts = np.array(
                        [self._distinct(start, tuple(int(x) for x in c)) for c in combos], dtype=np.float64
                    )
                    halves = halves * counts[inv.reshape(-1)]
                classes = np.minimum(classes, halves)
            if self.metric == "aecs":
                return self.n / (classes + 1.0)
            return self.n * self.n / classes
        level_norm = [np.array([self._normalize(d, x) for x in self.total[d]]) for d in range(len(self.qis))]
        per_col = np.stack([level_norm[d][nodes[:, d]] for d in range(len(self.qis))], axis=1)
        return np.asarray(self._aggregate(per_col), dtype=np.float64)

    def column_scores(self, levels: tuple[int, ...], outlier_tuple: np.ndarray | None) -> np.ndarray:
        """Per-column score (Loss, entropy) with the given tuples suppressed."""
        out = np.empty(len(levels))
        for d, lvl in enumerate(levels):
            agg = self.total[d][lvl]
            if outlier_tuple is not None and outlier_tuple.any() and self.metric in ("loss", "entropy"):
                wo = self.w[outlier_tuple]
                term = self.term[d][lvl][outlier_tuple]
                if self.metric == "loss" and self.s_factor != 1.0:
                    # ARX: a suppressed record costs share + sFactor * (1 - share) instead of 1.
                    share = (
                        term / self.g_factor
                        if self.g_factor
                        else self.hier[d].shares(lvl)[self.gen[d][lvl][outlier_tuple]]
                    )
                    agg += float((wo * (share + self.s_factor * (1 - share) - term)).sum())
                else:
                    agg += float((wo * (self.penalty[d][outlier_tuple] - term)).sum())
            out[d] = self._normalize(d, agg)
        return out

    def score(self, levels: tuple[int, ...], chk: NodeCheck) -> float:
        """The metric of a node that passes, with its suppressed classes."""
        size, outlier = chk.size, chk.outlier
        if self.metric == "discernability-monotonic":
            return float((size * size).sum())
        if self.metric == "discernability-nonmonotonic":
            return float((size[~outlier] ** 2).sum() + self.n * size[outlier].sum())
        if self.metric == "aecs":
            kept = int(np.count_nonzero(size[~outlier]))
            extra = 1 if (size[outlier] > 0).any() else 0
            return self.n / (kept + extra) if kept + extra else float(self.n)
        if not outlier.any() or self.metric == "entropy-monotonic":
            per_col = np.array([self._normalize(d, self.total[d][lv]) for d, lv in enumerate(levels)])
            return float(self._aggregate(per_col))
        # Every record of a class has the same generalized values, so suppression is costed per class
        # through one representative tuple (the piguard entropy charges by original value: per tuple).
        out_cls = np.flatnonzero(outlier & (size > 0))
        rep = np.empty(len(size), dtype=np.int64)
        rep[chk.cls[::-1]] = np.arange(len(chk.cls) - 1, -1, -1)
        rep_t, sz = rep[out_cls], size[out_cls]
        if self.metric == "loss":
            per_col = np.empty(len(levels))
            for d, lvl in enumerate(levels):
                share = self.hier[d].shares(lvl)[self.gen[d][lvl][rep_t]]
                extra = sz * (share + self.s_factor * (1 - share) - self.g_factor * share)
                per_col[d] = self._normalize(d, self.total[d][lvl] + float(extra.sum()))
            return float(self._aggregate(per_col))
        out_t = outlier[chk.cls]
        per_col = self.column_scores(levels, out_t)
        if self.metric == "entropy-nonmonotonic":
            # ARX MetricMDNUNMEntropy: the suppressed records' generalized values, entropy-coded.
            s_total = float(sz.sum())
            for d, lvl in enumerate(levels):
                v = np.bincount(self.gen[d][lvl][rep_t], weights=sz, minlength=self.card[d][lvl])
                v = v[v > 0]
                per_col[d] += float((v * np.log2(s_total / v)).sum())
        return float(self._aggregate(per_col))

    # ------------------------------------------------------------------ classes
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

    def _distinct(self, start: int, lv: tuple[int, ...]) -> int:
        """Distinct value combinations (among tuples with records) of columns start.. at levels lv."""
        key, space = _combine_space(
            [self.gen[start + i][x] for i, x in enumerate(lv)],
            [self.card[start + i][x] for i, x in enumerate(lv)],
        )
        key = key[self.w > 0]
        if space <= max(1 << 16, 4 * len(key)):
            return int(np.count_nonzero(np.bincount(key, minlength=space)))
        return len(factorize(key)[1])

    def _half(self, start: int, lv: tuple[int, ...]) -> tuple[np.ndarray, int]:
        hit = self._half_cache.get((start, lv))
        if hit is None:
            key, space = _combine_space(
                [self.gen[start + i][x] for i, x in enumerate(lv)],
                [self.card[start + i][x] for i, x in enumerate(lv)],
            )
            if space > 4 * self.n_tuples:  # compact, so that the two halves combine into a small space
                key, uniq = factorize(key)
                space = len(uniq)
            hit = (key, space)
            if len(self._half_cache) >= self._half_cache_max:
                self._half_cache.clear()
            self._half_cache[(start, lv)] = hit
        return hit

    def classes(self, levels: tuple[int, ...]) -> tuple[np.ndarray, np.ndarray]:
        """(class id per distinct tuple, records per class) for a node; ids are 0..C-1.

        A node's classes refine those of any of its parents (one column one level up) by that column's
        codes, so when a parent's classes are cached the key is one multiply-add over a small space;
        otherwise it is built from the cached half keys."""
        key, space = self._refine(levels) or self._key(levels)
        if space <= max(1 << 16, 4 * self.n_tuples):
            seen = np.bincount(key, minlength=space)
            nz = np.flatnonzero(seen)
            remap = np.empty(space, dtype=np.int64)
            remap[nz] = np.arange(len(nz))
            cls = remap[key]
        else:
            cls, _ = factorize(key)
        n_cls = int(cls.max()) + 1 if len(cls) else 0
        self._remember(levels, cls, n_cls)
        return cls, np.bincount(cls, weights=self.w, minlength=n_cls)

    def _refine(self, levels: tuple[int, ...]) -> tuple[np.ndarray, int] | None:
        best: tuple[int, int, tuple[np.ndarray, int]] | None = None
        for d, lv in enumerate(levels):
            if lv + 1 >= self.heights[d]:
                continue
            hit = self._cls_cache.get((*levels[:d], lv + 1, *levels[d + 1 :]))
            if hit is not None:
                space = hit[1] * self.card[d][lv]
                if best is None or space < best[0]:
                    best = (space, d, hit)
        if best is None:
            return None
        space, d, (pcls, _) = best
        key = pcls * self.card[d][levels[d]]
        key += self.gen[d][levels[d]]
        return key, space

    def _remember(self, levels: tuple[int, ...], cls: np.ndarray, n_cls: int) -> None:
        """Keep a node's class ids for its children, within CLASS_CACHE_BYTES (oldest out first)."""
        self._cls_cache[levels] = (cls, n_cls)
        self._cls_cache_bytes += cls.nbytes
        while self._cls_cache_bytes > CLASS_CACHE_BYTES and len(self._cls_cache) > 1:
            old = next(iter(self._cls_cache))
            self._cls_cache_bytes -= self._cls_cache.pop(old)[0].nbytes

    # ------------------------------------------------------------------ checks
    def check_node(self, levels: tuple[int, ...], full: bool = True) -> NodeCheck:
        """Check a node: the monotone part always, every model when ``full``."""
        cls, size = self.classes(levels)
        released = size > 0
        fail = (size < self.k_floor) & released
        if self.k_map_floor:
            fail |= (size < self.k_map_floor) & released
        psize = None
        if self.pw is not None:
            psize = np.bincount(cls, weights=self.pw, minlength=len(size))
            if self.models.k_map is not None and self.models.k_map.population is None:
                fail |= (psize < self.models.k_map.k) & released
        hists: dict[str, tuple[np.ndarray, np.ndarray, np.ndarray]] = {}
        non_mono: list[object] = []
        for m in [*self.models.l_diversity, *self.models.t_closeness]:
            monotone = self.models.suppression == 0 or m.monotone_with_suppression
            if monotone:
                fail |= ~self._model_ok(m, cls, size, hists) & released
            else:
                non_mono.append(m)
                if isinstance(m, LDiversity):
                    # Entropy and recursive l-diversity need l distinct values, a condition that is monotone
                    # under suppression: it joins the pruning part as a necessary condition.
                    relaxed = LDiversity(m.column, m.l, "distinct")
                    fail |= ~self._model_ok(relaxed, cls, size, hists) & released
                elif self._t_floor.get(id(m), 1) > 1:
                    fail |= (size < self._t_floor[id(m)]) & released  # too small to be t-close
        if self.models.d_presence is not None:
            non_mono.append(self.models.d_presence)
        mono_supp = float(size[fail].sum())
        mono_ok = mono_supp <= self.max_outliers
        mono_fail = fail.copy()
        if mono_ok and self.models.average_risk is not None and self.models.records_at_risk is None:
            # The average-risk target is monotone too: generalizing never raises the lowest average risk
            # reachable by suppressing the smallest classes within the limit (ARX treats it so as well).
            mono_ok = self._enforce_risk(levels, cls, size, fail) is not None
        if not mono_ok or not full:
            return NodeCheck(mono_ok, False, cls, size, fail, mono_supp, mono_fail)
        for m in non_mono:
            if isinstance(m, DPresence):
                assert psize is not None
                present = m.fulfilled(size, psize)
                # A population class with no released record cannot be suppressed: if its delta (0) is
                # below delta_min, no suppression helps and the node fails. As in ARX's HashGroupify, a
                # minimal class size (k-anonymity, l-diversity's l, estimated k-map) is checked first and
                # already takes such empty classes out, at no cost.
                no_min_size = self.k_floor <= 1 and not self.k_map_floor and not self.models.l_diversity
                if no_min_size and (~present & ~released & (psize > 0)).any():
                    return NodeCheck(True, False, cls, size, fail, math.inf)
                fail |= ~present
            else:
                fail |= ~self._model_ok(m, cls, size, hists) & released
        if self.models.average_risk is not None or self.models.records_at_risk is not None:
            fail = self._enforce_risk(levels, cls, size, fail)
            if fail is None:
                return NodeCheck(True, False, cls, size, np.zeros(len(size), bool), math.inf)
        supp = float(size[fail].sum())
        return NodeCheck(True, supp <= self.max_outliers, cls, size, fail, supp, mono_fail)

    def _enforce_risk(
        self, levels: tuple[int, ...], cls: np.ndarray, size: np.ndarray, fail: np.ndarray
    ) -> np.ndarray | None:
        """ARX's risk-based criteria: suppress the smallest remaining classes (ties by their first record)
        until the average risk (classes / records) and the share of records above the highest risk hold.
        None when that needs more than the suppression limit."""
        m = self.models
        if all(lv == h - 1 for lv, h in zip(levels, self.heights, strict=True)):
            return fail  # every record fully generalized: ARX counts nothing at risk
        cand = np.flatnonzero(~fail & (size > 0))
        if len(cand) == 0:
            return fail
        first = np.full(len(size), np.iinfo(np.int64).max, dtype=np.int64)
        np.minimum.at(first, cls, self.first_row)
        order = cand[np.lexsort((first[cand], size[cand]))]
        sz = size[order]
        recs = float(sz.sum())
        removed = np.concatenate([[0.0], np.cumsum(sz)])  # records suppressed after the first j classes
        j = np.arange(len(order) + 1)
        left_cls, left_recs = len(order) - j, recs - removed
        with np.errstate(divide="ignore", invalid="ignore"):
            ok = np.ones(len(j), dtype=bool)
            if m.average_risk is not None:
                ok &= (left_recs <= 0) | (
                    left_cls / np.where(left_recs > 0, left_recs, 1) <= m.average_risk + 1e-15
                )
            if m.records_at_risk is not None and m.highest_risk is not None:
                floor = math.ceil(1 / m.highest_risk - 1e-9)
                small = np.concatenate([[0.0], np.cumsum(np.where(sz < floor, sz, 0.0))])
                at_risk = float(np.where(sz < floor, sz, 0.0).sum()) - small
                ok &= (left_recs <= 0) | (
                    at_risk / np.where(left_recs > 0, left_recs, 1) <= m.records_at_risk
                )
        base = float(size[fail].sum())
        good = np.flatnonzero(ok & (base + removed <= self.max_outliers))
        if len(good) == 0:
            return None
        out = fail.copy()
        out[order[: good[0]]] = True
        return out

    def _pairs(
        self,
        col: str,
        cls: np.ndarray,
        n_cls: int,
        hists: dict[str, tuple[np.ndarray, np.ndarray, np.ndarray]],
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(class, value, count) triples of a sensitive column at this node (in no particular order)."""
        hit = hists.get(col)
        if hit is None:
            tup, scode, pc, n_s, _ = self.sens[col]
            key = cls[tup] * n_s + scode
            if n_cls * n_s <= max(1 << 16, 4 * len(key)):
                cnt = np.bincount(key, weights=pc, minlength=n_cls * n_s)
                nz = np.flatnonzero(cnt)
                hit = (nz // n_s, nz % n_s, cnt[nz])
            else:
                inv, uk = factorize(key)
                cnt = np.bincount(inv, weights=pc, minlength=len(uk))
                hit = (uk // n_s, uk % n_s, cnt)
            hists[col] = hit
        return hit

    def _model_ok(
        self,
        m: object,
        cls: np.ndarray,
        size: np.ndarray,
        hists: dict[str, tuple[np.ndarray, np.ndarray, np.ndarray]],
    ) -> np.ndarray:
        pc, ps, pn = self._pairs(m.column, cls, len(size), hists)  # type: ignore[attr-defined]
        if isinstance(m, LDiversity):
            return m.fulfilled_sparse(pc, pn, len(size))
        assert isinstance(m, TCloseness)
        return m.fulfilled_sparse(pc, ps, pn, size, self._global[m.column], self.sens[m.column][4])

    # ------------------------------------------------------------------ search
    def search(
        self,
        strategy: str = "optimal",
        time_limit: float | None = None,
        max_steps: int | None = None,
        seed: int = 0,
    ) -> Result:
        """The best transformation (``strategy`` optimal, or one of the heuristics), within the limits."""
        if strategy not in STRATEGIES:
            raise DeidError(f"unknown search strategy '{strategy}' (use one of {', '.join(STRATEGIES)})")
        if time_limit is not None and not (_real(time_limit) and time_limit > 0):
            raise DeidError(f"time limit must be a positive number of seconds, got {time_limit!r}")
        if max_steps is not None and (not _whole(max_steps) or max_steps < 1):
            raise DeidError(f"step limit must be a whole number of at least 1, got {max_steps!r}")
        if strategy == "optimal" and self.size > MAX_LATTICE:
            raise DeidError(
                f"the lattice has {self.size:,} nodes (too many for an optimal search): use a heuristic "
                f"(--mode top-down, bottom-up or genetic) or --mode mondrian"
            )
        self._t0 = time.perf_counter()
        self._deadline = None if time_limit is None else self._t0 + time_limit
        self._max_steps = max_steps
        self._best_score, self._best, self._checked = math.inf, None, 0
        self._stopped: str | None = None
        self._score_cache: dict[tuple[int, ...], float | None] = {}
        self._raise_bounds = self.metric in ("discernability-monotonic", "discernability-nonmonotonic")
        # The top node first, whatever the limits: for the monotone models it passes whenever anything
        # does, so a limited search has a transformation to return from its first step.
        self._node_score(tuple(h - 1 for h in self.heights))
        if strategy == "optimal":
            finished = self._optimal()
        else:
            gen = {"top-down": self._greedy_top_down, "bottom-up": self._greedy_bottom_up}.get(strategy)
            finished = gen() if gen is not None else self._genetic(seed)
            finished = False  # a heuristic never proves optimality
        if self._best is None:
            if self._stopped:
                raise DeidError(
                    f"no transformation satisfying the privacy models was found within the "
                    f"{'time' if self._stopped == 'time_limit' else 'step'} limit"
                )
            raise DeidError("no transformation satisfies the privacy models within the suppression limit")
        res = self._result(self._best, self._best_score, self._checked, self.size)
        res.proven_optimal = bool(finished)
        res.stopped_by = self._stopped
        res.strategy = strategy
        res.search_seconds = time.perf_counter() - self._t0
        return res

    def _out_of_budget(self) -> bool:
        if self._max_steps is not None and self._checked >= self._max_steps:
            self._stopped = "step_limit"
            return True
        if self._deadline is not None and time.perf_counter() >= self._deadline:
            self._stopped = "time_limit"
            return True
        return False

    def _consider(self, levels: tuple[int, ...], full: bool = True) -> NodeCheck:
        """Check a node, count it, and keep it when it beats the best so far."""
        chk = self.check_node(levels, full=full)
        self._checked += 1
        if self._raise_bounds and hasattr(self, "_nodes"):
            # DM* only grows under generalization (classes merge): every generalization of this node scores
            # at least its sum of squared class sizes, whether or not the node passes. That also bounds DM.
            dm_star = float((chk.size * chk.size).sum())
            above = np.all(self._nodes >= np.asarray(levels, dtype=self._nodes.dtype), axis=1)
            np.maximum(self._bound, np.where(above, dm_star, -np.inf), out=self._bound)
        if full and chk.ok:
            s = self.score(levels, chk)
            self._score_cache[levels] = s
            best = self._best
            if s < self._best_score - 1e-12 or (
                abs(s - self._best_score) <= 1e-12
                and best is not None
                and (sum(levels), levels) < (sum(best), best)
            ):
                self._best_score, self._best = s, levels
        elif full:
            self._score_cache[levels] = None
        return chk

    def _optimal(self) -> bool:
        """Top-down over promising nodes, interleaved with best-first by bound; True when proven."""
        nodes = np.indices(self.heights, dtype=np.int16).reshape(len(self.heights), -1).T  # product order
        self._nodes = nodes
        self._bound = self.bounds(nodes)
        self._status = np.zeros(len(nodes), dtype=np.int8)  # 0 unknown, 1 passes monotone part, 2 fails
        self._done = np.zeros(len(nodes), dtype=bool)  # checked in full
        self._known_supp: dict[int, tuple] = {}  # type: ignore[type-arg]
        self._known_bytes = 0
        self._cost_cache: dict[tuple[int, int], np.ndarray] = {}
        self._probing = self._prunable()
        self._probes = [0, 0]  # probes made, probes that found a failure
        self._use_suppressed_bound = self.models.suppression > 0 and self.metric in (
            "loss",
            "entropy",
            "entropy-nonmonotonic",
        )
        top_down, best_first = self._top_down(), self._best_first()
        spent = [0.0, 0.0]
        share = BEST_FIRST_SHARE
        if not self._prunable():
            # Nothing can fail by inheritance, so top-down would only check in a worse order.
            return all(not self._out_of_budget() for _ in best_first)
        while True:
            if self._out_of_budget():
                return False
            which = 1 if spent[1] <= spent[0] * share else 0
            t0 = time.perf_counter()
            step = next(best_first if which else top_down, "done")
            spent[which] += time.perf_counter() - t0
            if step == "done":
                return True

    def _prunable(self) -> bool:
        """True when some part of the models is monotone (failures pass down to specializations)."""
        m = self.models
        return bool(
            self.k_floor > 1
            or self.k_map_floor > 1
            or (m.k_map is not None and m.k_map.population is None)
            or m.suppression == 0
            or (m.average_risk is not None and m.records_at_risk is None)
            or any(x.monotone_with_suppression or x.variant != "distinct" for x in m.l_diversity)
            or any(v > 1 for v in self._t_floor.values())
        )

    def _promising(self, idx: int) -> bool:
        return (
            bool(self._bound[idx] < self._best_score - 1e-12)
            or self._best is None
            or (abs(self._bound[idx] - self._best_score) <= 1e-12)
        )

    def _visit(self, idx: int) -> None:
        if self._done[idx] or self._status[idx] == 2:
            return
        levels = tuple(int(x) for x in self._nodes[idx])
        chk = self._consider(levels, full=True)
        self._done[idx] = True
        self._status[idx] = 1 if chk.mono_ok else 2
        if self._use_suppressed_bound and chk.mono_ok and chk.mono_outlier is not None:
            tuples = np.flatnonzero(chk.mono_outlier[chk.cls]).astype(np.int32)
            stale = (-1,) * len(levels)  # per-column extra cost not computed yet
            hists = self._suppressed_hists(tuples)
            size = sum(x.nbytes for x in hists)
            # Own histograms are bounded (inherited entries share their parents' arrays).
            if self._known_bytes + size <= SUPPRESSED_CACHE_BYTES:
                self._known_bytes += size
                own = (hists, float(self.w[tuples].sum()), np.zeros(len(levels)), stale)
                # Cost it at this node's levels once; each child then recomputes only the column it lowers.
                self._known_supp[idx] = self._suppressed_bound(idx, own)[1]

    # A node's records that fail the monotone part (k-anonymity, distinct l-diversity, ...) also fail it at
    # every specialization: classes only split. With a metric in which a suppressed record never costs
    # less than a generalized one (Loss, entropy), the cost of those records suppressed is a lower bound
    # that tightens the free one, and a node whose tightened bound cannot beat the best is never checked.
    @staticmethod
    def _inherit_from(table: dict[int, tuple], parents: list[int]) -> tuple | None:  # type: ignore[type-arg]
        best = None
        for p in parents:
            hit = table.get(p)
            if hit is not None and (best is None or hit[1] > best[1]):  # the most records suppressed
                best = hit
        return best

    def _suppressed_bound(self, idx: int, known: tuple) -> tuple[float, tuple]:  # type: ignore[type-arg]
        """(bound, the known set with its per-column extra cost at this node's levels). The set is kept as
        one histogram per column over the column's values present in the table, so the extra cost of a
        column at any level is a pass over those values, and only columns whose level differs from the
        one it was computed for are recomputed."""
        hists, wsum, extra, at = known
        if wsum <= 0:
            return float(self._bound[idx]), known
        levels = tuple(int(x) for x in self._nodes[idx])
        extra = extra.copy()
        for d, lvl in enumerate(levels):
            if at[d] != lvl:
                counts = np.bincount(self._cmap[d][lvl], weights=hists[d], minlength=self.card[d][lvl])
                if self.metric == "entropy-nonmonotonic":
                    # The suppressed records' generalized values, entropy-coded: this total only grows as
                    # records are added (x log x is convex), so a subset of the suppressed bounds it.
                    v = counts[counts > 0]
                    extra[d] = float((v * np.log2(wsum / v)).sum())
                else:
                    extra[d] = max(0.0, float((counts * self._supp_cost(d, lvl)).sum()))
        per_col = np.array([self._normalize(d, self.total[d][lv] + extra[d]) for d, lv in enumerate(levels)])
        return float(self._aggregate(per_col)), (hists, wsum, extra, levels)

    def _supp_cost(self, d: int, lvl: int) -> np.ndarray:
        """What suppressing a record adds over generalizing it, per value id at ``lvl`` (Loss: ARX's
        share + sFactor (1 - share) against gFactor share; entropy: log2(n / f) of the generalized value)."""
        key = (d, lvl)
        hit = self._cost_cache.get(key)
        if hit is None:
            if self.metric == "loss":
                share = self.hier[d].shares(lvl)
                hit = share + self.s_factor * (1 - share) - self.g_factor * share
            else:
                fl = np.bincount(self.gen[d][lvl], weights=self.w, minlength=self.card[d][lvl])
                with np.errstate(divide="ignore"):
                    hit = np.where(fl > 0, np.log2(self.n / np.maximum(fl, 1e-300)), 0.0)
            self._cost_cache[key] = hit
        return hit

    def _suppressed_hists(self, tuples: np.ndarray) -> list[np.ndarray]:
        """Per column, the records of ``tuples`` counted by the column's values present in the table."""
        if not hasattr(self, "_cmap"):
            self._cleaf, self._cmap = [], []
            for d, h in enumerate(self.hier):
                present, inv = np.unique(self.leaf[:, d], return_inverse=True)
                self._cleaf.append(inv.reshape(-1))
                self._cmap.append([h.codes[lvl][present] for lvl in range(h.height)])
        wt = self.w[tuples]
        return [
            np.bincount(self._cleaf[d][tuples], weights=wt, minlength=len(self._cmap[d][0]))
            for d in range(len(self.hier))
        ]

    def _top_down(self) -> Iterator[str]:
        """By lattice height from the top, promising nodes only; a node with a failing generalization
        fails without a check."""
        nodes, status = self._nodes, self._status
        heights = nodes.sum(axis=1, dtype=np.int64)
        strides = [math.prod(self.heights[d + 1 :]) for d in range(len(self.heights))]
        for h in range(int(heights.max()), -1, -1):
            layer = np.flatnonzero(heights == h)
            inherited = np.zeros(len(layer), dtype=bool)
            for d, st in enumerate(strides):
                can = nodes[layer, d] < self.heights[d] - 1
                inherited[can] |= status[layer[can] + st] == 2
            status[layer[inherited]] = 2
            todo = layer[~inherited]
            todo = todo[np.argsort(self._bound[todo], kind="stable")]
            previous = dict(self._known_supp)  # the layer above: parents of this layer's nodes
            self._known_supp = {}
            # Arrays of two layers up are no longer reachable; count what the layer above still holds.
            self._known_bytes = sum(
                sum(x.nbytes for x in v[0]) for v in {id(v[0]): v for v in previous.values()}.values()
            )
            for idx in todo:
                idx = int(idx)
                parents = [idx + st for d, st in enumerate(strides) if nodes[idx, d] < self.heights[d] - 1]
                if not self._promising(idx):
                    if self._use_suppressed_bound:  # pass what must be suppressed on to the children
                        known = self._inherit_from(previous, parents)
                        if known is not None:
                            self._known_supp[idx] = known
                    continue
                if status[parents].max(initial=0) == 2:  # a probe below failed a parent since the layer began
                    status[idx] = 2
                    continue
                if self._probing and (status[parents] == 0).any():
                    # A parent that was never checked (its bound ruled it out) may still fail the monotone
                    # part and take this node and its siblings with it: probe it, while probes pay off.
                    failed = False
                    for p in parents:
                        if status[p] == 0 and not self._out_of_budget():
                            failed |= self._probe(p)
                            yield "step"
                            if failed:
                                break
                    if failed:
                        status[idx] = 2
                        continue
                known = None
                if self._use_suppressed_bound:
                    known = self._inherit_from(previous, parents)
                    if known is not None and self._best is not None:
                        bound, known = self._suppressed_bound(idx, known)
                        if bound > self._best_score + 1e-12:
                            self._known_supp[idx] = known  # its children inherit what it must suppress
                            continue
                before = self._checked
                self._visit(idx)
                if known is not None and idx not in self._known_supp:
                    self._known_supp[idx] = known
                if self._checked != before:
                    yield "step"

    def _probe(self, idx: int) -> bool:
        """Check only the monotone part of a node; True when it fails. Probing stops for the rest of the
        search once fewer than a third of at least 30 probes found a failure."""
        chk = self.check_node(tuple(int(x) for x in self._nodes[idx]), full=False)
        self._checked += 1
        self._status[idx] = 1 if chk.mono_ok else 2
        self._probes[0] += 1
        self._probes[1] += not chk.mono_ok
        if self._probes[0] >= 30 and self._probes[1] < self._probes[0] / 3:
            self._probing = False
        return not chk.mono_ok

    def _best_first(self) -> Iterator[str]:
        """By lower bound: once the bound passes the best score, nothing left can beat it."""
        nodes = self._nodes
        initial = self._bound.copy()  # the order and the stop use the bounds as they were at the start
        order = np.lexsort(
            (*(nodes[:, d] for d in reversed(range(nodes.shape[1]))), nodes.sum(axis=1), initial)
        )
        for idx in order:
            if self._best is not None and initial[idx] > self._best_score + 1e-12:
                return
            if not self._promising(int(idx)):  # a bound raised since (DM) can still rule a node out
                continue
            before = self._checked
            self._visit(int(idx))
            if self._checked != before:
                yield "step"

    # ------------------------------------------------------------------ heuristics
    def _node_score(self, levels: tuple[int, ...]) -> float | None:
        """Score of a node that passes every model, None when it fails (cached)."""
        if levels not in self._score_cache:
            self._consider(levels, full=True)
        return self._score_cache[levels]

    def _greedy_top_down(self) -> None:
        """From the top node, specialize one attribute at a time, to the passing child with the best
        score, until no child passes (ARX's best-effort top-down in spirit)."""
        cur = tuple(h - 1 for h in self.heights)
        if self._node_score(cur) is None:
            return
        while not self._out_of_budget():
            kids = [(*cur[:d], cur[d] - 1, *cur[d + 1 :]) for d in range(len(cur)) if cur[d] > 0]
            scored = []
            for kid in kids:
                s = self._node_score(kid)
                if s is not None:
                    scored.append((s, sum(kid), kid))
                if self._out_of_budget():
                    return
            if not scored:
                return
            cur = min(scored)[2]

    def _greedy_bottom_up(self) -> None:
        """From the bottom, greedy ascent with restarts (ARX's Lightning in spirit): climb to the
        generalization with the lowest bound until a node passes and no generalization's bound is below
        its score (with suppression a passing node can still be beaten above it), then restart from the
        frontier node with the lowest bound; every generalization met joins the frontier. It stops when
        nothing on the frontier can beat the best, or at the limits (BOTTOM_UP_STEPS checks when none is
        given: the frontier of a wide lattice never empties)."""
        if self._max_steps is None and self._deadline is None:
            self._max_steps = self._checked + BOTTOM_UP_STEPS
        start = tuple(0 for _ in self.heights)
        heap = [(float(self.bounds(np.array([start]))[0]), start)]
        seen = {start}
        while heap and not self._out_of_budget():
            bound, cur = heapq.heappop(heap)
            if self._best is not None and bound > self._best_score + 1e-12:
                return
            while not self._out_of_budget():
                score = self._node_score(cur)
                ups = [
                    (*cur[:d], cur[d] + 1, *cur[d + 1 :])
                    for d in range(len(cur))
                    if cur[d] < self.heights[d] - 1
                ]
                ups = [u for u in ups if u not in seen]
                if not ups:
                    break
                bs = self.bounds(np.array(ups))
                for bnd, u in zip(bs, ups, strict=True):
                    seen.add(u)
                    heapq.heappush(heap, (float(bnd), u))
                nxt = int(np.argmin(bs))
                if score is not None and bs[nxt] >= score:
                    break  # passing, and no generalization can do better: restart from the frontier
                cur = ups[nxt]  # climb on; it stays on the frontier for a later restart

    def _genetic(self, seed: int) -> None:
        """A genetic search over level vectors (ARX offers one for very wide tables): tournament
        selection, uniform crossover, one-level mutations; infeasible nodes rank last."""
        rng = np.random.default_rng(seed)
        hi = np.array(self.heights) - 1
        pop_size = 30
        pop = [tuple(int(x) for x in rng.integers(0, hi + 1)) for _ in range(pop_size - 1)]
        pop.append(tuple(int(x) for x in hi))

        def fitness(ind: tuple[int, ...]) -> float:
            s = self._node_score(ind)
            return math.inf if s is None else s

        while not self._out_of_budget():
            fit = [fitness(p) for p in pop]
            if self._out_of_budget():
                return
            nxt = [pop[int(np.argmin(fit))]]
            while len(nxt) < pop_size:
                a, b = (min(rng.choice(pop_size, 2, replace=False), key=lambda i: fit[i]) for _ in range(2))
                mask = rng.random(len(hi)) < 0.5
                child = np.where(mask, np.array(pop[a]), np.array(pop[b]))
                d = int(rng.integers(len(hi)))
                child[d] = int(np.clip(child[d] + rng.choice([-1, 1]), 0, hi[d]))
                nxt.append(tuple(int(x) for x in child))
            pop = nxt
            if self._max_steps is None and self._deadline is None and self._checked > 50 * pop_size:
                return  # unbounded runs stop after 50 generations' worth of checks

    # ------------------------------------------------------------------ result
    def check(self, levels: tuple[int, ...]) -> tuple[bool, np.ndarray, np.ndarray, np.ndarray]:
        """(passes all models, outlier flag per distinct tuple, class id per tuple, class sizes)."""
        chk = self.check_node(levels, full=True)
        return chk.ok, chk.outlier[chk.cls], chk.cls, chk.size

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


__all__ = ["METRICS", "STRATEGIES", "Lattice", "Models", "Result", "mask_cell"]
