"""The Spark engine on local[2] with real pyspark and Java: same classifier, same verdicts."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import polars as pl
import pytest
from datamap_data import EXPECTED, customers, verdicts

from piguard.sources.spark import scan_dataframe_spark, spark_session
from piguard.sources.tables import scan_tables
from schema_check import assert_valid, strict_json


@pytest.fixture(scope="module")
def spark() -> Iterator[Any]:
    session = spark_session("local[2]")
    yield session
    session.stop()


def test_spark_engine_matches_single_process(tmp_path: Path, spark: Any) -> None:
    lake = tmp_path / "customers"
    lake.mkdir()
    df = customers(600)
    for i in range(3):  # three files: several partitions, merged on the driver
        df.slice(i * 200, 200).write_parquet(lake / f"part-{i}.parquet")
    dm = scan_tables(str(lake), engine="spark", full=True)
    assert verdicts(dm.rows) == EXPECTED
    assert dm.tables[0]["rows_scanned"] == 600
    single = scan_tables(str(lake), full=True)
    by_spark = {(r["column"], r["entity"]): r["share"] for r in dm.rows}
    by_polars = {(r["column"], r["entity"]): r["share"] for r in single.rows}
    assert by_spark == pytest.approx(by_polars)
    assert [c["columns"] for c in dm.combinations] == [c["columns"] for c in single.combinations]
    assert_valid("datamap", strict_json(json.dumps(dm.as_dict())), "the Spark engine's DataMap.as_dict()")


def test_spark_dataframe_sampling_and_binary_columns(spark: Any) -> None:
    pdf = customers(3000).select("sfzh", "col7", "amount").with_columns(photo=pl.lit(b"\x00\x01"))
    sdf = spark.createDataFrame(pdf.to_arrow())
    dm = scan_dataframe_spark(sdf, source="mem", table="t", full=False, sample_rows=500)
    assert verdicts(dm.rows) == {("sfzh", "CN_RESIDENT_ID"), ("col7", "PHONE_NUMBER")}
    assert 0 < int(dm.tables[0]["rows_scanned"]) <= 500  # type: ignore[call-overload]
    assert [s["reason"] for s in dm.skipped] == ["column 'photo': binary column, not scanned"]
    assert_valid("datamap", strict_json(json.dumps(dm.as_dict())), "scan_dataframe_spark(...).as_dict()")
    missing = scan_tables("/nonexistent/lake", engine="spark")
    assert missing.skipped[0]["reason"] == "no such file or directory"


def test_spark_engine_on_a_lake_of_datasets(tmp_path: Path, spark: Any) -> None:
    """The README's form, ``piguard scan lake/ --engine spark``: every dataset under lake/ is a table
    (Spark alone fails on lake/ with UNABLE_TO_INFER_SCHEMA)."""
    lake = tmp_path / "lake"
    (lake / "customers").mkdir(parents=True)
    df = customers(400)
    df.head(200).write_parquet(lake / "customers" / "part-0.parquet")
    df.tail(200).write_parquet(lake / "customers" / "part-1.parquet")
    (lake / "customers" / "_SUCCESS").write_bytes(b"")
    (lake / "customers" / "README.csv").write_text("not,part,of,the,dataset\n")
    orders = lake / "orders" / "dt=2024-01-01"
    orders.mkdir(parents=True)
    df.select("order_no", "col7").write_parquet(orders / "part-0.parquet")
    dm = scan_tables(str(lake), engine="spark", full=True)
    assert dm.skipped == [], dm.skipped
    assert {t["table"] for t in dm.tables} == {"customers", "orders"}
    assert verdicts(dm.rows, "customers") == EXPECTED
    assert verdicts(dm.rows, "orders") == {("col7", "PHONE_NUMBER")}
    only = scan_tables(str(lake), engine="spark", include=["orders"])
    assert {t["table"] for t in only.tables} == {"orders"}


def test_cli_spark_scan_keeps_sparks_logs_off_the_terminal(tmp_path: Path) -> None:
    """`piguard scan lake/ --engine spark` as a user runs it: the report on stdout and, on stderr, none of
    Spark's WARN lines, Java stack frames or pyspark's pandas warning (PIGUARD_DEBUG=1 brings them back)."""
    import os
    import subprocess
    import sys

    lake = tmp_path / "lake"
    (lake / "customers").mkdir(parents=True)
    customers(200).write_parquet(lake / "customers" / "part-0.parquet")
    env = {k: v for k, v in os.environ.items() if k != "PIGUARD_DEBUG"}
    res = subprocess.run(
        [str(Path(sys.executable).parent / "piguard"), "scan", str(lake), "--engine", "spark",
         "--format", "json", "--no-progress"],
        capture_output=True, text=True, timeout=300, env=env, cwd=tmp_path,
    )  # fmt: skip
    assert res.returncode in (0, 1), res.stderr
    assert {s["table"] for s in json.loads(res.stdout)["sources"]} == {"customers"}
    noise = [
        line for line in res.stderr.splitlines()
        if " WARN " in line or line.startswith("\tat ") or "FutureWarning" in line
    ]  # fmt: skip
    assert noise == [], res.stderr
