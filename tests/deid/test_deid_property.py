"""Random small tables: the lattice search returns the optimum that a naive exhaustive search (plain Python,
no piguard code) finds, for k-anonymity, distinct l-diversity and t-closeness with suppression."""

from __future__ import annotations

import itertools
import math
from collections import Counter

import polars as pl
from deid_checker import check_output
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from piguard.deid import DeidConfig, DeidError, Hierarchy, Lattice, Models, deidentify
from piguard.deid.lattice import METRICS
from piguard.deid.models import LDiversity, TCloseness

# Three quasi-identifiers with small trees (value -> level1 -> ... -> "*").
TREES = {
    "a": {f"a{i}": [f"a{i}", f"A{i // 2}", f"AA{i // 4}", "*"] for i in range(8)},
    "b": {f"b{i}": [f"b{i}", f"B{i // 3}", "*"] for i in range(6)},
    "c": {f"c{i}": [f"c{i}", "*"] for i in range(3)},
}
QIS = list(TREES)


def naive_optimum(
    rows: list[dict[str, str]], k: int, supp: float, l_val: int | None, t: float | None
) -> float | None:
    n = len(rows)
    budget = math.floor(supp * n + 1e-9)
    glob = Counter(r["s"] for r in rows)
    best = None
    for levels in itertools.product(*[range(len(next(iter(TREES[q].values())))) for q in QIS]):
        classes: dict[tuple[str, ...], list[dict[str, str]]] = {}
        for r in rows:
            classes.setdefault(
                tuple(TREES[q][r[q]][lv] for q, lv in zip(QIS, levels, strict=True)), []
            ).append(r)
        out = []
        for members in classes.values():
            sens = Counter(m["s"] for m in members)
            ok = len(members) >= k
            if l_val is not None:
                ok &= len(sens) >= l_val
            if t is not None:
                ok &= 0.5 * sum(abs(sens[v] / len(members) - glob[v] / n) for v in glob) <= t + 1e-12
            if not ok:
                out.extend(members)
        if len(out) > budget:
            continue
        out_ids = {id(m) for m in out}
        per_col = []
        for q, lv in zip(QIS, levels, strict=True):
            share = Counter(p[lv] for p in TREES[q].values())
            tot = sum(1.0 if id(r) in out_ids else share[TREES[q][r[q]][lv]] / len(TREES[q]) for r in rows)
            lo = n / len(TREES[q])
            per_col.append(max(0.0, (tot - lo) / (n - lo)))
        score = math.prod(x + 1 for x in per_col) ** (1 / len(per_col)) - 1
        best = score if best is None or score < best else best
    return best


@st.composite
def cases(draw):  # type: ignore[no-untyped-def]
    n = draw(st.integers(8, 40))
    rows = [
        {
            "a": f"a{draw(st.integers(0, 7))}",
            "b": f"b{draw(st.integers(0, 5))}",
            "c": f"c{draw(st.integers(0, 2))}",
            "s": draw(st.sampled_from(["x", "y", "z"])),
        }
        for _ in range(n)
    ]
    k = draw(st.integers(1, 4))
    supp = draw(st.sampled_from([0.0, 0.1, 0.25]))
    l_val = draw(st.sampled_from([None, 2]))
    t = draw(st.sampled_from([None, 0.3, 0.5]))
    return rows, k, supp, l_val, t


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(cases())
def test_search_matches_naive_exhaustive_optimum(case) -> None:  # type: ignore[no-untyped-def]
    rows, k, supp, l_val, t = case
    df = pl.DataFrame(rows)
    hier = {q: Hierarchy(q, [p for p in TREES[q].values()]) for q in QIS}
    models = Models(
        k=k,
        suppression=supp,
        l_diversity=[LDiversity("s", l_val)] if l_val else [],
        t_closeness=[TCloseness("s", t)] if t is not None else [],
    )
    want = naive_optimum(rows, k, supp, l_val, t)
    try:
        res = Lattice({c: df[c] for c in df.columns}, hier, QIS, models).search()
    except DeidError:
        assert want is None
        return
    assert want is not None
    assert abs(res.score - want) < 1e-9
    out = _deid_with(df, hier, models)
    assert (
        check_output(
            out,
            QIS,
            k=k,
            suppression=supp,
            l_div=[("s", l_val, "distinct", 1.0)] if l_val else [],
            t_close=[("s", t)] if t is not None else [],
        )
        == []
    )


def _deid_with(df: pl.DataFrame, hier: dict[str, Hierarchy], models: Models) -> pl.DataFrame:
    import tempfile
    from pathlib import Path

    with tempfile.TemporaryDirectory() as tmp:
        for q, h in hier.items():
            (Path(tmp) / f"{q}.csv").write_text(h.to_csv(), encoding="utf-8")
        return deidentify(df, DeidConfig(audit=False, quasi=QIS, hierarchy_dir=tmp, models=models)).table


@st.composite
def search_cases(draw):  # type: ignore[no-untyped-def]
    rows, k, supp, l_val, t = draw(cases())
    metric = draw(st.sampled_from(sorted(METRICS)))
    variant = draw(st.sampled_from(["distinct", "entropy", "recursive"]))
    avg = draw(st.sampled_from([None, 0.3, 0.5]))
    supp = draw(st.sampled_from([supp, 0.5, 1.0]))
    return rows, k, supp, l_val, t, metric, variant, avg


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(search_cases())
def test_pruned_search_equals_brute_force_for_every_metric(case) -> None:  # type: ignore[no-untyped-def]
    """The search's pruning (inherited failures, necessary conditions, bounds tightened by what must be
    suppressed, probes, DM bounds raised from checked nodes) never skips the optimum: the same node
    evaluation over every node of the lattice finds the same best score."""
    rows, k, supp, l_val, t, metric, variant, avg = case
    df = pl.DataFrame(rows)
    hier = {q: Hierarchy(q, [p for p in TREES[q].values()]) for q in QIS}
    models = Models(
        k=k,
        suppression=supp,
        l_diversity=[LDiversity("s", l_val, variant, 1.5)] if l_val else [],
        t_closeness=[TCloseness("s", t)] if t is not None else [],
        average_risk=avg,
    )
    cols = {c: df[c] for c in df.columns}
    brute = Lattice(cols, hier, QIS, models, metric)
    best = None
    for levels in itertools.product(*[range(h.height) for h in brute.hier]):
        chk = brute.check_node(levels)
        if chk.ok:
            s = brute.score(levels, chk)
            best = s if best is None or s < best else best
    try:
        res = Lattice(cols, hier, QIS, models, metric).search()
    except DeidError:
        assert best is None
        return
    assert best is not None and res.proven_optimal
    assert abs(res.score - best) <= 1e-9 * max(1.0, abs(best))
