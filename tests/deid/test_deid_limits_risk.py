"""Bounded search (time and step limits, heuristics for wide tables) and risk as a target (average and
highest risk, k-map, d-presence). Every output is re-checked with plain polars, sharing no code with the
search."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import polars as pl
import pytest
from deid_checker import check_output
from typer.testing import CliRunner

from piguard.cli import app
from piguard.deid import DeidError, Hierarchy, Lattice, Models, load_hierarchy_dir
from piguard.deid.models import DPresence, KMap, LDiversity
from shared_data import needs_shared, shared_path

ADULT = shared_path("data", "anon", "adult")
QIS = ["sex", "age", "race", "marital-status", "education", "native-country", "workclass", "occupation"]
runner = CliRunner()


@pytest.fixture(scope="module")
def subset() -> pl.DataFrame:
    return pl.read_csv(ADULT / "adult_subset.csv", separator=";", infer_schema=False)


@pytest.fixture(scope="module")
def hier() -> dict[str, Hierarchy]:
    return load_hierarchy_dir(ADULT, [*QIS, "salary-class"])


def released(lat: Lattice, df: pl.DataFrame, res) -> pl.DataFrame:  # type: ignore[no-untyped-def]
    """The published table for a result, built from hierarchy labels (suppressed rows: all '*')."""
    cols = {}
    for d, q in enumerate(lat.qis):
        v = lat.labels(d, res.levels)
        v[res.outlier_rows] = "*"
        cols[q] = v.tolist()
    return pl.DataFrame(cols).with_columns(df["salary-class"])


@needs_shared(ADULT)
def test_step_limit_returns_a_valid_best_so_far(subset: pl.DataFrame, hier: dict) -> None:
    models = Models(k=5, suppression=0.02, l_diversity=[LDiversity("salary-class", 2)])
    cols = {c: subset[c] for c in subset.columns}
    full = Lattice(cols, hier, QIS, models).search()
    assert full.proven_optimal and full.stopped_by is None
    lat = Lattice(cols, hier, QIS, models)
    res = lat.search(max_steps=3)
    assert res.checked == 3 and not res.proven_optimal and res.stopped_by == "step_limit"
    assert res.score >= full.score - 1e-12
    out = released(lat, subset, res)
    assert check_output(out, QIS, k=5, suppression=0.02, l_div=[("salary-class", 2, "distinct", 1.0)]) == []
    # A time limit behaves the same way.
    res_t = Lattice(cols, hier, QIS, models).search(time_limit=1e-6)
    assert not res_t.proven_optimal and res_t.stopped_by == "time_limit" and res_t.checked >= 1


@needs_shared(ADULT)
@pytest.mark.parametrize("strategy", ["top-down", "bottom-up", "genetic"])
def test_heuristics_give_valid_transformations(subset: pl.DataFrame, hier: dict, strategy: str) -> None:
    models = Models(k=10, suppression=0.01)
    cols = {c: subset[c] for c in subset.columns}
    best = Lattice(cols, hier, QIS, models).search().score
    lat = Lattice(cols, hier, QIS, models)
    res = lat.search(strategy, max_steps=400)
    assert res.strategy == strategy and not res.proven_optimal
    assert res.score >= best - 1e-12
    assert check_output(released(lat, subset, res), QIS, k=10, suppression=0.01) == []


def test_wide_table_needs_a_heuristic_and_gets_one() -> None:
    """40 binary quasi-identifiers: 2^40 nodes, far past an exhaustive lattice; the greedy top-down search
    still answers, and its result is k-anonymous."""
    rng = np.random.default_rng(3)
    n, width = 2000, 40
    data = {f"q{i}": rng.choice(["a", "b", "c"], n, p=[0.6, 0.3, 0.1]).tolist() for i in range(width)}
    df = pl.DataFrame(data)
    hier = {c: Hierarchy(c, [[v, "ab" if v in "ab" else "c", "*"] for v in "abc"]) for c in df.columns}
    lat = Lattice({c: df[c] for c in df.columns}, hier, list(df.columns), Models(k=5))
    with pytest.raises(DeidError, match="too many for an optimal search"):
        lat.search()
    res = lat.search("top-down", time_limit=20)
    assert not res.proven_optimal
    assert 0 < sum(res.levels) < 2 * width  # neither the bottom nor the top
    sizes = lat.classes(res.levels)[1]
    assert sizes[sizes > 0].min() >= 5


@needs_shared(ADULT)
def test_average_and_highest_risk_as_targets(subset: pl.DataFrame, hier: dict) -> None:
    cols = {c: subset[c] for c in subset.columns}
    models = Models(average_risk=0.01, highest_risk=0.2, suppression=0.05)
    lat = Lattice(cols, hier, QIS, models)
    res = lat.search()
    out = released(lat, subset, res).filter(~pl.all_horizontal([pl.col(q) == "*" for q in QIS]))
    sizes = out.group_by(QIS).len()["len"]
    assert sizes.len() / out.height <= 0.01 + 1e-12  # average prosecutor risk: classes / records
    assert 1 / sizes.min() <= 0.2  # highest risk
    assert res.suppressed_rows <= math.floor(0.05 * subset.height)
    # Without the average-risk target the optimum keeps more detail (the target binds).
    looser = Lattice(cols, hier, QIS, Models(highest_risk=0.2, suppression=0.05)).search()
    assert looser.score < res.score


@needs_shared(ADULT)
def test_k_map_and_d_presence_against_the_population(subset: pl.DataFrame, hier: dict) -> None:
    adult = pl.read_csv(ADULT / "adult.csv", separator=";", infer_schema=False)
    cols = {c: subset[c] for c in subset.columns}
    pop = {q: adult[q] for q in QIS}
    lat = Lattice(cols, hier, QIS, Models(k_map=KMap(20), suppression=0.0), population=pop)
    res = lat.search()
    # Every released class matches at least 20 people of the population (recomputed with polars).
    gen = {q: {r[0]: r[res.levels[d]] for r in hier[q].rows} for d, q in enumerate(QIS)}
    sample_keys = subset.select([pl.col(q).replace_strict(gen[q]) for q in QIS]).unique()
    pop_sizes = adult.select([pl.col(q).replace_strict(gen[q]) for q in QIS]).group_by(QIS).len()
    joined = sample_keys.join(pop_sizes, on=QIS, how="left")
    assert joined["len"].min() >= 20
    # d-presence: each class's share of the population in the sample stays within [0.05, 0.15].
    lat = Lattice(cols, hier, QIS, Models(d_presence=DPresence(0.05, 0.15)), population=pop)
    res = lat.search()
    gen = {q: {r[0]: r[res.levels[d]] for r in hier[q].rows} for d, q in enumerate(QIS)}
    s = subset.select([pl.col(q).replace_strict(gen[q]) for q in QIS]).group_by(QIS).len()
    p = adult.select([pl.col(q).replace_strict(gen[q]) for q in QIS]).group_by(QIS).len()
    delta = p.join(s, on=QIS, how="left").with_columns(pl.col("len_right").fill_null(0) / pl.col("len"))
    assert delta["len_right"].min() >= 0.05 - 1e-12 and delta["len_right"].max() <= 0.15 + 1e-12
    with pytest.raises(DeidError, match="need the population table"):
        Lattice(cols, hier, QIS, Models(d_presence=DPresence(0.0, 0.5)))


def test_k_map_estimate_follows_arx() -> None:
    # ARX's KMap with a zero-truncated Poisson model, 1 % significance, the US population (ARX's figure)
    # and Adult's 30,162 records: a sampling fraction of ~1e-4 makes a class of 2 enough (k' = 2).
    assert KMap(3, 317_238_626, "zero-truncated-poisson", 0.01).derived_k(30162) == 2
    # k = 1000: lambda = 0.095; P(1 | >0) = 0.953 < 0.99, P(1..2 | >0) = 0.998: k' = 3.
    assert KMap(1000, 317_238_626, "zero-truncated-poisson", 0.01).derived_k(30162) == 3
    # A sample that is the whole population needs k records per class.
    assert KMap(5, 1000, "poisson", 0.01).derived_k(1000) == 5
    with pytest.raises(DeidError, match="estimator"):
        KMap(3, 100, "normal").validate()


@needs_shared(ADULT)
def test_cli_risk_targets_time_limit_and_report(tmp_path: Path) -> None:
    from test_deid_safety import valid_report

    rep = tmp_path / "r.json"
    base = [str(ADULT / "adult_subset.csv"), "--out", str(tmp_path / "o.csv"), "--quasi", ",".join(QIS)]
    base += ["--hierarchies", str(ADULT), "--report", str(rep)]
    args = [*base, "--average-risk", "0.05", "--highest-risk", "0.2", "--suppression", "0.05"]
    res = runner.invoke(app, ["deid", *args, "--max-steps", "2"])
    assert res.exit_code == 0, res.stderr
    r = valid_report(rep)
    assert r["models"]["average_risk"] == 0.05 and r["models"]["highest_risk"] == 0.2
    assert r["utility"]["search"]["proven_optimal"] is False
    assert r["utility"]["search"]["stopped_by"] == "step_limit"
    assert "not proven optimal" in res.stdout
    assert r["risk"]["prosecutor"]["highest"] <= 0.2
    assert r["risk"]["prosecutor"]["average"] <= 0.05 + 1e-12
    # d-presence needs the population table; with it, the report names the model.
    bad = runner.invoke(app, ["deid", *base, "--d-presence", "0:0.5"])
    assert bad.exit_code == 2 and "population table" in bad.stderr
    pop = ["--population-table", str(ADULT / "adult.csv")]
    res = runner.invoke(app, ["deid", *base, "--d-presence", "0:0.5", *pop, "--k-map", "5"])
    assert res.exit_code == 0, res.stderr
    r = valid_report(rep)
    assert r["models"]["delta_presence"] == {"delta_min": 0.0, "delta_max": 0.5}
    assert r["models"]["k_map"]["estimator"] == "population-table"
    assert json.loads(rep.read_text())["utility"]["search"]["proven_optimal"] is True
