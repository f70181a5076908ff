"""The Spark path: group counts in Spark, the same lattice search on the driver, the rewrite in Spark. It must
choose the same transformation as the single-machine path and its output must pass the independent checker."""

from __future__ import annotations

import json
from pathlib import Path

import jsonschema
import polars as pl
import pytest
from deid_checker import check_output
from typer.testing import CliRunner

from piguard.cli import app
from piguard.deid import DeidConfig, DeidError, Models, deidentify
from piguard.deid.models import LDiversity
from shared_data import needs_shared, shared_path

ADULT = shared_path("data", "anon", "adult")
pytestmark = needs_shared(ADULT)
QIS = ["sex", "age", "race", "marital-status", "education", "native-country", "workclass", "occupation"]


@pytest.fixture(scope="module")
def spark():  # type: ignore[no-untyped-def]
    from pyspark.sql import SparkSession

    s = (
        SparkSession.builder.master("local[1]")
        .appName("piguard-deid-test")
        .config("spark.ui.enabled", "false")
        .config("spark.sql.shuffle.partitions", "2")
        .getOrCreate()
    )
    yield s
    s.stop()


def test_spark_engine_matches_local_path(spark, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    from piguard.deid.spark import deidentify_spark

    models = Models(k=5, suppression=0.02, l_diversity=[LDiversity("salary-class", 2)])
    cfg = DeidConfig(audit=False, quasi=QIS, hierarchy_dir=str(ADULT), models=models)
    local = deidentify(pl.read_csv(ADULT / "adult_subset.csv", separator=";", infer_schema=False), cfg)
    out, rep = tmp_path / "out_dir", tmp_path / "r.json"
    res = CliRunner().invoke(
        app,
        [
            "deid",
            str(ADULT / "adult_subset.csv"),
            "--out",
            str(out),
            "--engine",
            "spark",
            "--quasi",
            ",".join(QIS),
            "--hierarchies",
            str(ADULT),
            "--k",
            "5",
            "--suppression",
            "0.02",
            "--l-diversity",
            "salary-class:2",
            "--report",
            str(rep),
        ],
    )
    assert res.exit_code == 0, res.stderr
    r = json.loads(rep.read_text(encoding="utf-8"))
    assert r["utility"]["search"]["engine"] == "spark"
    from test_deid_safety import schema

    jsonschema.Draft202012Validator(schema()).validate(r)
    assert r["declared_state"] == "anonymized" and r["rescan"]["sampled"] is True
    assert r["levels"] == local.report["levels"]
    assert r["suppressed_rows"] == local.report["suppressed_rows"]
    assert r["equivalence_classes"] == local.report["equivalence_classes"]
    assert r["risk"]["prosecutor"] == pytest.approx(local.report["risk"]["prosecutor"])
    got = pl.read_csv(sorted(out.glob("*.csv")), separator=";", infer_schema=False)
    assert check_output(got, QIS, k=5, suppression=0.02, l_div=[("salary-class", 2, "distinct", 1.0)]) == []
    assert sorted(got.rows()) == sorted(local.table.rows())
    assert not list(tmp_path.glob(".out_dir*"))
    sdf = spark.read.csv(str(ADULT / "adult_subset.csv"), sep=";", header=True)
    with pytest.raises(DeidError, match="not available in the Spark path"):
        deidentify_spark(
            sdf,
            DeidConfig(
                audit=False,
                quasi=QIS,
                hierarchy_dir=str(ADULT),
                models=models,
                columns={"salary-class": {"op": "mask"}},
            ),
        )


def test_spark_path_audits_columns_too(spark) -> None:  # type: ignore[no-untyped-def]
    """The Spark path classifies a sample: a phone column nobody configured is dropped, free text with
    identifiers is refused (Spark cannot mask text), and the report declares the state."""
    from piguard.deid.safety import DeidRefused
    from piguard.deid.spark import deidentify_spark

    rows = [(f"1390000{i:04d}", ["男", "女"][i % 2], str(20 + i % 30), "ok") for i in range(60)]
    sdf = spark.createDataFrame(rows, schema=["手机号", "性别", "年龄", "备注"])
    out, rep = deidentify_spark(sdf, DeidConfig(quasi=["性别", "年龄"], models=Models(k=5)))
    assert "手机号" not in out.columns and rep["columns"]["手机号"]["treatment"] == "drop"
    assert rep["declared_state"] == "anonymized"
    noted = [
        (f"1390000{i:04d}", ["男", "女"][i % 2], str(20 + i % 30), f"请致电1390000{i:04d}") for i in range(60)
    ]
    sdf = spark.createDataFrame(noted, schema=["手机号", "性别", "年龄", "备注"])
    with pytest.raises(DeidRefused, match="cannot mask text"):
        deidentify_spark(sdf, DeidConfig(quasi=["性别", "年龄"], models=Models(k=5)))
