"""ARX's own JUnit test cases (arx-deidentifier/arx, extracted into data/arx_testsuite.json): piguard's
search must find the optimum ARX finds, with ARX's metric, for a sample of Adult cases that cover each
metric and model piguard offers. The whole suite, cup included, runs in benchmarks/deid_arx_suite.py."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import pytest

from shared_data import needs_shared, shared_path

ADULT = shared_path("data", "anon", "adult")
pytestmark = needs_shared(ADULT)
CASES = {
    c["id"]: c
    for c in json.loads((Path(__file__).parent / "data" / "arx_testsuite.json").read_text())["cases"]
}

# One or two cases per metric / model, all on Adult (seconds each).
SAMPLE = [
    "KAnonymity#0",  # k=5, 4 % suppression, ARX's monotonic non-uniform entropy
    "LDiversity#0",  # entropy 5-diversity, ARX's non-monotonic entropy with suppression
    "TCloseness#0",  # equal-distance t-closeness + k, DM*
    "DPresence#6",  # d-presence (0.05, 0.15) against the population table, AECS
    "DPresence#11",  # d-presence with 5 % suppression, non-monotonic entropy
    "KMap#0",  # k-map estimated with a zero-truncated Poisson model (US population)
    "KMap#4",  # k-map against the population table
    "EntropyLDiversity#4",  # entropy l-diversity (Shannon) with ARX's practical monotonicity
    "RiskBased#0",  # average re-identification risk as a target
    "Combinations#3",  # hierarchical t-closeness + k
]


def _runner():  # type: ignore[no-untyped-def]
    path = Path(__file__).resolve().parents[2] / "benchmarks" / "deid_arx_suite.py"
    spec = importlib.util.spec_from_file_location("deid_arx_suite", path)
    assert spec and spec.loader
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


@pytest.mark.parametrize("case_id", SAMPLE)
def test_arx_case_optimum(case_id: str) -> None:
    case = CASES[case_id]
    assert case["dataset"] == "adult"
    r = _runner().run_case(case, time_limit=120)
    assert "skipped" not in r, r.get("skipped")
    assert r["proven_optimal"] is True
    assert r["match"] is True, (
        r["score"],
        r["expected_score"],
        r["transformation"],
        r["expected_transformation"],
    )
    if r["expected_transformation"] is not None and not case.get("practical_monotonicity"):
        assert r["score"] == pytest.approx(case["expected_score"], rel=1e-9)
