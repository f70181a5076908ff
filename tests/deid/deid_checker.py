"""An independent checker for de-identified outputs: plain polars group-bys and Python arithmetic, sharing
no code with piguard.deid. It reads the published table only.

Suppressed records are published with every quasi-identifier set to "*". The all-"*" group is accepted
when it satisfies the models itself or when all of it fits within the suppression budget.
"""

from __future__ import annotations

import math
from collections import Counter

import polars as pl


def check_output(
    df: pl.DataFrame,
    qis: list[str],
    *,
    k: int = 1,
    suppression: float = 0.0,
    l_div: list[tuple[str, int, str, float]] = (),
    t_close: list[tuple[str, float]] = (),
    t_hier: list[tuple[str, float, dict[str, list[str]]]] = (),
) -> list[str]:
    """Violations found (empty when the output satisfies everything claimed).

    l_div: (column, l, variant, c); t_close: (column, t) with equal ground distance; t_hier: (column, t,
    {leaf: [leaf, level1, ...]}) with hierarchical ground distance.
    """
    n = df.height
    budget = math.floor(suppression * n + 1e-9)
    sens_cols = sorted({c for c, *_ in l_div} | {c for c, _ in t_close} | {c for c, _, _ in t_hier})
    global_dist = {c: Counter(df[c].to_list()) for c in sens_cols}
    problems: list[str] = []
    grouped = df.group_by(qis).agg([pl.len().alias("_n"), *[pl.col(c).alias(f"_s_{c}") for c in sens_cols]])
    for row in grouped.iter_rows(named=True):
        size = row["_n"]
        bad = []
        if size < k:
            bad.append(f"size {size} < k={k}")
        for col, l_val, variant, c in l_div:
            cnt = Counter(row[f"_s_{col}"])
            if variant == "distinct" and len(cnt) < l_val:
                bad.append(f"{len(cnt)} distinct {col} < l={l_val}")
            elif variant == "entropy":
                ent = -sum(v / size * math.log(v / size) for v in cnt.values())
                if ent < math.log(l_val) - 1e-9:
                    bad.append(f"entropy of {col} {ent:.4f} < log {l_val}")
            elif variant == "recursive":
                r = sorted(cnt.values(), reverse=True)
                if len(r) < l_val or not r[0] < c * sum(r[l_val - 1 :]):
                    bad.append(f"recursive ({c},{l_val}) fails on {col}")
        for col, t in t_close:
            cnt = Counter(row[f"_s_{col}"])
            g = global_dist[col]
            d = 0.5 * sum(abs(cnt.get(v, 0) / size - g[v] / n) for v in g)
            if d > t + 1e-9:
                bad.append(f"equal-distance EMD on {col} {d:.4f} > t={t}")
        for col, t, tree in t_hier:
            d = _hier_emd(Counter(row[f"_s_{col}"]), size, global_dist[col], n, tree)
            if d > t + 1e-9:
                bad.append(f"hierarchical EMD on {col} {d:.4f} > t={t}")
        if bad:
            all_star = all(row[q] == "*" for q in qis)
            if all_star and size <= budget:
                continue
            problems.append(f"class {[row[q] for q in qis]}: " + "; ".join(bad))
    return problems


def _hier_emd(cnt: Counter, size: int, glob: Counter, n: int, tree: dict[str, list[str]]) -> float:
    """Li et al. 2007: sum over internal nodes of height(N)/H * min(positive, negative extra)."""
    height = len(next(iter(tree.values()))) - 1
    extra: dict[tuple[int, str], float] = {}
    for leaf in tree:
        e = cnt.get(leaf, 0) / size - glob.get(leaf, 0) / n
        extra[(0, leaf)] = e
    total = 0.0
    for lvl in range(1, height + 1):
        pos: dict[str, float] = {}
        neg: dict[str, float] = {}
        seen = set()
        for _leaf, path in tree.items():
            child, parent = path[lvl - 1], path[lvl]
            if (lvl - 1, child) in seen:
                continue
            seen.add((lvl - 1, child))
            e = extra.get((lvl - 1, child), 0.0)
            pos[parent] = pos.get(parent, 0.0) + max(e, 0.0)
            neg[parent] = neg.get(parent, 0.0) + max(-e, 0.0)
        for parent in pos:
            total += lvl / height * min(pos[parent], neg[parent])
            extra[(lvl, parent)] = pos[parent] - neg[parent]
    return total


def arx_loss(
    df_in: pl.DataFrame,
    df_out: pl.DataFrame,
    qis: list[str],
    trees: dict[str, dict[str, list[str]]],
    levels: dict[str, int],
    suppressed: int,
) -> float:
    """ARX's Loss (geometric mean over columns of normalized generalized information loss), recomputed from
    the hierarchy trees and the levels, with suppressed records counted as fully generalized."""
    n = df_in.height
    per_col = []
    out_star = [all(r) for r in zip(*[[v == "*" for v in df_out[q].to_list()] for q in qis], strict=True)]
    for q in qis:
        tree = trees[q]
        lvl = levels[q]
        size = len(tree)
        share = Counter(path[lvl] for path in tree.values())
        total = 0.0
        for v, star in zip(df_in[q].to_list(), out_star, strict=True):
            total += 1.0 if star and suppressed else share[tree[v][lvl]] / size
        lo = n / size
        per_col.append(max(0.0, (total - lo) / (n - lo)))
    return math.prod(x + 1 for x in per_col) ** (1 / len(per_col)) - 1
