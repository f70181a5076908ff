"""Optimal lattice search on ARX's Adult: the optimum ARX finds, and outputs re-checked independently."""

from __future__ import annotations

import itertools

import numpy as np
import polars as pl
import pytest
from deid_checker import arx_loss, check_output

from piguard.deid import DeidConfig, DeidError, Lattice, Models, deidentify, load_hierarchy_dir
from piguard.deid.models import LDiversity, TCloseness
from shared_data import needs_shared, shared_path

ADULT = shared_path("data", "anon", "adult")
pytestmark = needs_shared(ADULT)
QIS = ["sex", "age", "race", "marital-status", "education", "native-country", "workclass", "occupation"]


@pytest.fixture(scope="module")
def adult() -> pl.DataFrame:
    return pl.read_csv(ADULT / "adult.csv", separator=";", infer_schema=False)


@pytest.fixture(scope="module")
def trees() -> dict[str, dict[str, list[str]]]:
    out = {}
    for f in ADULT.glob("adult_hierarchy_*.csv"):
        col = f.stem.split("_hierarchy_", 1)[1]
        rows = [line.split(";") for line in f.read_text(encoding="utf-8").splitlines() if line]
        out[col] = {r[0]: r for r in rows}
    return out


def _run(adult: pl.DataFrame, models: Models, qis: list[str] = QIS, metric: str = "loss"):  # type: ignore[no-untyped-def]
    cfg = DeidConfig(audit=False, quasi=qis, hierarchy_dir=str(ADULT), models=models, metric=metric)
    return deidentify(adult, cfg)


def test_adult_k5_optimum_is_arx_transformation(adult: pl.DataFrame, trees: dict) -> None:
    out = _run(adult, Models(k=5))
    levels = [out.report["levels"][q] for q in QIS]
    assert levels == [0, 4, 0, 2, 3, 2, 2, 1]  # ARX 3.9's optimum under Loss
    assert out.report["suppressed_rows"] == 0
    assert check_output(out.table, QIS, k=5) == []
    assert out.report["min_class_size"] == out.table.group_by(QIS).len()["len"].min()
    assert out.report["equivalence_classes"] == out.table.group_by(QIS).len().height
    # The score the search minimized is ARX's Loss, recomputed independently from the hierarchy files.
    assert out.report["utility"]["search"]["score"] == pytest.approx(
        arx_loss(adult, out.table, QIS, trees, out.report["levels"], 0), abs=1e-9
    )


def test_adult_k5_one_percent_suppression(adult: pl.DataFrame, trees: dict) -> None:
    out = _run(adult, Models(k=5, suppression=0.01))
    rep = out.report
    assert 0 < rep["suppressed_rows"] <= int(0.01 * adult.height)
    assert check_output(out.table, QIS, k=5, suppression=0.01) == []
    # Suppression lets the optimum generalize less than without it.
    assert sum(rep["levels"].values()) < 14
    assert rep["utility"]["search"]["score"] == pytest.approx(
        arx_loss(adult, out.table, QIS, trees, rep["levels"], rep["suppressed_rows"]), abs=1e-9
    )


def test_adult_l_diversity_and_t_closeness(adult: pl.DataFrame) -> None:
    m = Models(
        k=5,
        l_diversity=[LDiversity("salary-class", 2)],
        t_closeness=[TCloseness("salary-class", 0.2)],
        suppression=0.01,
    )
    out = _run(adult, m)
    assert out.report["suppressed_rows"] <= int(0.01 * adult.height)
    assert (
        check_output(
            out.table,
            QIS,
            k=5,
            suppression=0.01,
            l_div=[("salary-class", 2, "distinct", 1.0)],
            t_close=[("salary-class", 0.2)],
        )
        == []
    )
    # Sensitive values are published unchanged.
    assert out.table["salary-class"].to_list() == adult["salary-class"].to_list()


def test_hierarchical_t_closeness_rechecked(adult: pl.DataFrame, trees: dict) -> None:
    qis = ["sex", "age", "race", "education"]
    cfg = DeidConfig(
        audit=False,
        quasi=qis,
        hierarchy_dir=str(ADULT),
        metric="loss",
        models=Models(k=3, t_closeness=[TCloseness("occupation", 0.15, "hierarchical")]),
    )
    out = deidentify(adult, cfg)
    assert check_output(out.table, qis, k=3, t_hier=[("occupation", 0.15, trees["occupation"])]) == []


def test_entropy_metric_and_entropy_l_diversity(adult: pl.DataFrame) -> None:
    qis = ["sex", "age", "race", "marital-status"]
    m = Models(k=2, l_diversity=[LDiversity("education", 3, "entropy")], suppression=0.02)
    out = _run(adult, m, qis, metric="entropy")
    assert check_output(out.table, qis, k=2, suppression=0.02, l_div=[("education", 3, "entropy", 1.0)]) == []
    m = Models(k=2, l_diversity=[LDiversity("occupation", 2, "recursive", 3.0)])
    out = _run(adult, m, qis)
    assert check_output(out.table, qis, k=2, l_div=[("occupation", 2, "recursive", 3.0)]) == []


def _independent_best(
    df: pl.DataFrame, qis: list[str], trees: dict, k: int, suppression: float
) -> tuple[tuple[int, ...], float]:
    """Exhaustive search with polars: every lattice node, suppress small classes, ARX Loss."""
    n = df.height
    heights = [len(next(iter(trees[q].values()))) for q in qis]
    best: tuple[float, tuple[int, ...]] | None = None
    for levels in itertools.product(*[range(h) for h in heights]):
        gen = df.select(
            [
                pl.col(q).replace_strict({v: p[lv] for v, p in trees[q].items()}).alias(q)
                for q, lv in zip(qis, levels, strict=True)
            ]
        )
        sizes = gen.group_by(qis).len()
        small = sizes.filter(pl.col("len") < k)["len"].sum()
        if small > int(suppression * n + 1e-9):
            continue
        gen = gen.join(sizes, on=qis, how="left")
        out_rows = (gen["len"] < k).to_list()
        per_col = []
        for q, lv in zip(qis, levels, strict=True):
            tree = trees[q]
            share: dict[str, int] = {}
            for p in tree.values():
                share[p[lv]] = share.get(p[lv], 0) + 1
            tot = sum(
                1.0 if o else share[tree[v][lv]] / len(tree)
                for v, o in zip(df[q].to_list(), out_rows, strict=True)
            )
            lo = n / len(tree)
            per_col.append(max(0.0, (tot - lo) / (n - lo)))
        score = float(np.prod([x + 1 for x in per_col]) ** (1 / len(per_col)) - 1)
        if best is None or score < best[0] - 1e-12:
            best = (score, levels)
    assert best is not None
    return best[1], best[0]


@pytest.mark.parametrize("k,supp", [(5, 0.0), (10, 0.02)])
def test_search_is_optimal_against_exhaustive_search(trees: dict, k: int, supp: float) -> None:
    df = pl.read_csv(ADULT / "adult_subset.csv", separator=";", infer_schema=False)
    qis = ["sex", "age", "race", "marital-status"]
    want_levels, want_score = _independent_best(df, qis, trees, k, supp)
    h = load_hierarchy_dir(ADULT, qis)
    res = Lattice({c: df[c] for c in df.columns}, h, qis, Models(k=k, suppression=supp)).search()
    assert res.score == pytest.approx(want_score, abs=1e-9)
    assert res.levels == want_levels


def test_impossible_models_are_clear_errors(adult: pl.DataFrame) -> None:
    small = adult.head(10)
    with pytest.raises(DeidError, match="k=11 is larger than the table"):
        deidentify(
            small, DeidConfig(audit=False, quasi=["sex"], hierarchy_dir=str(ADULT), models=Models(k=11))
        )
    with pytest.raises(DeidError, match="no transformation satisfies"):
        deidentify(
            adult,
            DeidConfig(
                audit=False,
                quasi=["sex", "age"],
                hierarchy_dir=str(ADULT),
                models=Models(k=2, l_diversity=[LDiversity("salary-class", 3)]),
            ),
        )
    with pytest.raises(DeidError, match=r"'nope' .* not in the table"):
        deidentify(
            adult, DeidConfig(audit=False, quasi=["nope"], hierarchy_dir=str(ADULT), models=Models(k=2))
        )
    # A quasi-identifier without a hierarchy gets one inferred from its values (flat here: two labels).
    out = deidentify(adult.drop("sex"), DeidConfig(audit=False, quasi=["salary-class"], models=Models(k=2)))
    assert out.report["quasi_identifiers"][0]["hierarchy"]["kind"] == "flat"


def test_mondrian_outputs_satisfy_models(adult: pl.DataFrame) -> None:
    qis = ["sex", "age", "race", "education"]
    cfg = DeidConfig(
        audit=False,
        quasi=qis,
        hierarchy_dir=str(ADULT),
        mode="mondrian",
        models=Models(k=5, l_diversity=[LDiversity("salary-class", 2)]),
    )
    out = deidentify(adult, cfg)
    assert check_output(out.table, qis, k=5, l_div=[("salary-class", 2, "distinct", 1.0)]) == []
    assert out.report["equivalence_classes"] == out.table.group_by(qis).len().height
    # Mondrian keeps more detail than the full-domain optimum on the same models.
    opt = deidentify(
        adult,
        DeidConfig(
            audit=False,
            quasi=qis,
            hierarchy_dir=str(ADULT),
            models=Models(k=5, l_diversity=[LDiversity("salary-class", 2)]),
        ),
    )
    assert out.report["equivalence_classes"] > opt.report["equivalence_classes"]


def test_weighted_group_counts_give_the_same_optimum(adult: pl.DataFrame) -> None:
    """The Spark path feeds group counts instead of rows: the search must not see a difference."""
    qis = ["sex", "age", "race", "education"]
    models = Models(k=4, suppression=0.01, l_diversity=[LDiversity("salary-class", 2)])
    h = load_hierarchy_dir(ADULT, [*qis, "salary-class"])
    rows = Lattice({c: adult[c] for c in adult.columns}, h, qis, models).search()
    counts = adult.group_by([*qis, "salary-class"]).len()
    grouped = Lattice(
        {c: counts[c] for c in counts.columns}, h, qis, models, weights=counts["len"].to_numpy()
    ).search()
    assert grouped.levels == rows.levels
    assert grouped.score == pytest.approx(rows.score, abs=1e-12)
    assert grouped.suppressed_rows == rows.suppressed_rows
    assert sorted(grouped.class_sizes.tolist()) == sorted(rows.class_sizes.tolist())
