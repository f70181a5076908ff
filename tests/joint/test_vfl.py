"""Vertical federated logistic regression between two processes: the provider (``joint train serve``) and
the lender (``joint train run``). The federated model must be the model plain SGD would train on the
joined table (same batches), and joint scoring must score with both parts."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import polars as pl
import pytest

from piguard.joint.identifiers import normalise
from piguard.joint.vfl import Encoding

from .conftest import Members, run_cli

LAWFUL = ["--purpose", "credit_assessment", "--legal-basis", "consent", "--consent", "separate"]


def _tables(tmp_path: Path) -> tuple[Path, Path, pl.DataFrame, pl.DataFrame]:
    rng = np.random.default_rng(7)
    n = 360
    phones = [f"138{i:08d}" for i in range(n)]
    income, debt = rng.normal(size=n), rng.normal(size=n)
    region = rng.choice(["north", "south", "west"], size=n)
    late = rng.normal(size=n)
    z = 1.4 * income - 1.1 * debt + 1.3 * late + np.where(region == "north", 0.8, -0.4)
    y = np.where(rng.random(n) < 1 / (1 + np.exp(-z)), "bad", "good")
    lender = pl.DataFrame({"phone": phones[:300], "income": income[:300], "debt": debt[:300], "y": y[:300]})
    # The provider writes phones with +86 and holds customers the lender does not have (and misses some).
    provider = pl.DataFrame(
        {"tel": [f"+86 {p}" for p in phones[40:]], "late_payments": late[40:], "region": region[40:]}
    )
    lp, pp = tmp_path / "lender.csv", tmp_path / "provider.csv"
    lender.write_csv(lp)
    provider.write_csv(pp)
    return lp, pp, lender, provider


@pytest.mark.slow  # several processes (and Paillier or SecretFlow start-up)
def test_federated_model_equals_centralised_sgd_and_scores(tmp_path: Path, members: Members, serve) -> None:
    lp, pp, lender, provider = _tables(tmp_path)
    p_model, l_model = tmp_path / "provider-model.json", tmp_path / "lender-model.json"
    srv = serve(
        "train",
        "serve",
        "--ids",
        str(pp),
        "--column",
        "tel",
        "--model-out",
        str(p_model),
        "--key",
        str(members.key("provider")),
        "--trust",
        str(members.trust),
        *LAWFUL,
        "--data",
        "CREDIT_RECORD",
    )
    r = run_cli(
        "joint",
        "train",
        "run",
        srv.url,
        "--ids",
        str(lp),
        "--column",
        "phone",
        "--label",
        "y",
        "--positive",
        "bad",
        "--model-out",
        str(l_model),
        "--epochs",
        "2",
        "--batch",
        "64",
        "--lr",
        "0.5",
        "--momentum",
        "0.9",
        "--key-bits",
        "1024",
        "--key",
        str(members.key("bank")),
        "--trust",
        str(members.trust),
        *LAWFUL,
        "--data",
        "CREDIT_RECORD",
        timeout=300,
    )
    assert r.returncode == 0, r.stderr
    report = json.loads(r.stdout)
    assert report["aligned"] == 260  # rows 40..299 are common
    srv.proc.wait(60)  # --once: the provider exits after writing its part
    lm, pm = json.loads(l_model.read_text()), json.loads(p_model.read_text())
    assert pm["features"] == ["late_payments", "region=north", "region=south", "region=west"]
    assert "late_payments" not in json.dumps(lm) and "income" not in json.dumps(pm)

    # Plain SGD on the joined table, same aligned order and same batches (the lender's seed 0).
    enc_l = Encoding.fit(lender, ["income", "debt"])
    enc_p = Encoding.fit(provider, ["late_payments", "region"])
    xl, xp = enc_l.transform(lender), enc_p.transform(provider)
    keys_p = normalise(provider["tel"]).keys.to_list()
    where_p = {k: i for i, k in enumerate(keys_p)}
    keys_l = normalise(lender["phone"]).keys.to_list()
    rows_l = [i for i, k in enumerate(keys_l) if k in where_p]
    x = np.column_stack([xl[rows_l], xp[[where_p[keys_l[i]] for i in rows_l]]])
    y = (lender["y"].to_numpy()[rows_l] == "bad").astype(float)
    w, b = np.zeros(x.shape[1]), 0.0
    vw, vb = np.zeros_like(w), 0.0
    rng = np.random.default_rng(0)
    for _ in range(2):
        order = rng.permutation(len(y))
        for s in range(0, len(y), 64):
            idx = order[s : s + 64]
            d = 1 / (1 + np.exp(-(x[idx] @ w + b))) - y[idx]
            vw = 0.9 * vw + x[idx].T @ d / idx.size
            vb = 0.9 * vb + float(d.mean())
            w -= 0.5 * vw
            b -= 0.5 * vb
    np.testing.assert_allclose(np.array(lm["weights"] + pm["weights"]), w, atol=1e-8)
    assert abs(lm["bias"] - b) < 1e-8
    assert w[0] > 0 and w[1] < 0 and w[2] > 0  # income up, debt down, late payments up: it learnt

    # Joint scoring of one applicant and of one the provider does not hold.
    score_srv = serve(
        "score",
        "serve",
        "--ids",
        str(pp),
        "--column",
        "tel",
        "--model",
        str(p_model),
        "--key",
        str(members.key("provider")),
        "--trust",
        str(members.trust),
        *LAWFUL,
    )
    applicants = tmp_path / "applicants.csv"
    lender[[45, 5]].drop("y").write_csv(applicants)
    out = tmp_path / "scores.csv"
    r = run_cli(
        "joint",
        "score",
        "query",
        score_srv.url,
        "--ids",
        str(applicants),
        "--column",
        "phone",
        "--model",
        str(l_model),
        "--out",
        str(out),
        "--key",
        str(members.key("bank")),
        "--trust",
        str(members.trust),
        *LAWFUL,
    )
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout) == {"scored": 1, "not_held_by_provider": 1, "invalid_dropped": 0}
    scores = pl.read_csv(out)["score"].to_list()
    z45 = xl[45] @ np.array(lm["weights"]) + lm["bias"] + xp[45 - 40] @ np.array(pm["weights"])
    assert abs(scores[0] - 1 / (1 + np.exp(-z45))) < 1e-9
    assert scores[1] is None
