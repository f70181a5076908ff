"""The Spark engine: the same vectorized column classifier, run inside Spark executors with ``mapInArrow``.

Each partition's Arrow batches become polars frames and go through ``TableClassifier`` exactly as in the
single-process engine; each partition returns its partial column statistics (counts, masked examples,
its own verdict on counter-like numbers) as one JSON row, and the driver merges them and decides. No raw
value leaves an executor.

    from piguard.sources.spark import scan_dataframe_spark
    dm = scan_dataframe_spark(spark.read.parquet("s3a://lake/customers/"), source="lake", table="customers")

``scan_path_spark(path)`` reads a Parquet file, a dataset, or a lake of datasets (``lake/customers/``,
``lake/orders/``... found the way the single-process engine finds them) with a session of its own
(``local[2]`` unless ``PIGUARD_SPARK_MASTER`` or an active session says otherwise). See docs/datamap.md
for cluster submission.
"""

from __future__ import annotations

import json
import os
import re
import sys
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

from piguard.detect.columns import ColumnStats, TableClassifier
from piguard.sources.datamap import DataMap, add_table_result
from piguard.sources.parquet import is_dataset_dir
from piguard.sources.paths import display_path
from piguard.sources.redact import describe_error, mask_message
from piguard.sources.selection import table_selected

_STATS_SCHEMA = "stats string"


def _partition_stats(batches: Iterator[Any]) -> Iterator[Any]:
    """Runs in the executor: classify this partition's batches, yield one row of partial stats."""
    import polars as pl
    import pyarrow as pa

    clf = TableClassifier()
    for rb in batches:
        df = pl.from_arrow(pa.Table.from_batches([rb]))
        assert isinstance(df, pl.DataFrame)
        if df.height:
            clf.add(df)
    payload = {"rows": clf.rows, "columns": [st.to_dict() for st in clf.columns.values()]}
    yield pa.RecordBatch.from_pylist([{"stats": json.dumps(payload, ensure_ascii=False)}])


def scan_dataframe_spark(
    sdf: Any,
    *,
    source: str,
    table: str,
    full: bool = True,
    sample_rows: int = 10000,
    dm: DataMap | None = None,
) -> DataMap:
    """Map one Spark DataFrame. ``full=False`` classifies a Bernoulli sample of about ``sample_rows`` rows."""
    dm = dm if dm is not None else DataMap()
    method = "full (Spark mapInArrow)"
    if not full:
        total = sdf.count()
        if total > sample_rows:
            frac = min(1.0, 1.5 * sample_rows / total)
            sdf = sdf.sample(withReplacement=False, fraction=frac, seed=0).limit(sample_rows)
            method = f"Spark sample ({frac:.3g} of {total} rows, at most {sample_rows})"
    # Binary and nested columns are reported, not shipped to Python workers.
    keep, dropped = [], []
    for f in sdf.schema.fields:
        kind = f.dataType.typeName()
        if kind == "binary":
            dropped.append((f.name, "binary column, not scanned"))
        elif kind in ("map", "udt"):
            dropped.append((f.name, f"column of type {kind} not scanned"))
        else:
            keep.append(f.name)
    for name, why in dropped:
        dm.skip(source, table, f"column {name!r}: {why}")
    if not keep:
        return dm
    rows = sdf.select(*[f"`{c}`" for c in keep]).mapInArrow(_partition_stats, _STATS_SCHEMA).collect()
    clf = TableClassifier()
    for row in rows:
        payload = json.loads(row["stats"])
        clf.rows += int(payload["rows"])
        for d in payload["columns"]:
            st = clf.columns.get(d["name"])
            if st is None:
                clf.columns[d["name"]] = ColumnStats.from_dict(d)
            else:
                st.merge_dict(d)
    add_table_result(dm, source, table, method, clf)
    return dm


def quiet_driver(builder: Any) -> Any:
    """Keep Spark's WARN lines and Java stack traces off the user's terminal (piguard reports a failure
    in one line of its own); ``PIGUARD_DEBUG=1`` keeps Spark's default logging. Takes effect when this
    call starts the driver's JVM."""
    if os.environ.get("PIGUARD_DEBUG"):
        return builder
    conf = Path(__file__).with_name("spark_log4j2.properties")
    return builder.config("spark.driver.extraJavaOptions", f"-Dlog4j2.configurationFile=file:{conf}")


def spark_session(master: str | None = None) -> Any:
    import warnings

    # pyspark warns about pandas 3 at every start; the Arrow paths piguard uses are run in tests/datamap.
    warnings.filterwarnings(
        "ignore", message="PySpark does not yet fully support pandas", category=FutureWarning
    )
    from pyspark.sql import SparkSession

    # Workers must run this interpreter so they import the same piguard (on a cluster, ship it: see docs).
    os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
    active = SparkSession.getActiveSession()
    if active is not None and master is None:
        return active
    builder = quiet_driver(
        SparkSession.builder.appName("piguard-datamap")
        .master(master or os.environ.get("PIGUARD_SPARK_MASTER", "local[2]"))
        .config("spark.sql.execution.arrow.maxRecordsPerBatch", "100000")
        .config("spark.ui.enabled", "false")
        .config("spark.ui.showConsoleProgress", "false")
        .config("spark.sql.shuffle.partitions", "4")
    )
    spark = builder.getOrCreate()
    spark.sparkContext.setLogLevel("ERROR")
    return spark


def _spark_error(exc: BaseException) -> str:
    """Spark errors carry a Java stack and a Python traceback; the Python error line is what matters."""
    lines = re.findall(r"^\s*([A-Za-z_.]*(?:Error|Exception): .+)$", str(exc), flags=re.M)
    return mask_message(lines[-1])[:300] if lines else describe_error(exc)


def spark_datasets(root: Path) -> list[tuple[Path, str]]:
    """(directory or file, table name) for every Parquet dataset under ``root``: a directory holding Parquet
    files or ``key=value/`` partitions is one dataset; otherwise each sub-directory is looked into, and
    Parquet files lying loose are datasets of their own."""
    if root.is_file():
        return [(root, root.name)]
    if is_dataset_dir(root):
        return [(root, root.name)]
    out: list[tuple[Path, str]] = []
    try:
        entries = sorted(root.iterdir())
    except OSError:
        return out
    for p in entries:
        if p.is_dir():
            out.extend(spark_datasets(p))
        elif p.is_file() and p.suffix.lower() == ".parquet":
            out.append((p, p.name))
    return out


def scan_path_spark(
    path: str,
    *,
    full: bool = False,
    sample_rows: int = 10000,
    master: str | None = None,
    include: Sequence[str] | None = None,
    exclude: Sequence[str] | None = None,
) -> DataMap:
    """Map a Parquet file, a dataset, or a directory of datasets with Spark (``include`` / ``exclude``:
    patterns on the dataset names, applied before Spark reads anything)."""
    dm = DataMap()
    shown = display_path(path)
    try:
        import pyspark  # noqa: F401
    except ModuleNotFoundError:
        dm.skip(shown, "*", "the Spark engine needs pyspark and Java 17: pip install 'piguard[spark]'")
        return dm
    if "://" in path:
        targets = [(path, Path(path.rstrip("/")).name)]  # a remote lake (s3a://, hdfs://): one dataset
    elif not Path(path).exists():
        dm.skip(shown, "*", "no such file or directory")
        return dm
    else:
        targets = [(str(p), name) for p, name in spark_datasets(Path(path))]
        if not targets:
            dm.skip(shown, "*", "no Parquet dataset found")
            return dm
    targets = [(t, name) for t, name in targets if table_selected(name, include, exclude)]
    if not targets:
        return dm
    try:
        spark = spark_session(master)
    except Exception as exc:  # no Java, or a master that cannot be reached
        where = master or os.environ.get("PIGUARD_SPARK_MASTER", "local[2]")
        dm.skip(
            shown, "*",
            f"cannot start Spark on master {where} (it needs Java 17 and, for a cluster, a master that "
            f"answers): {_spark_error(exc)}",
        )  # fmt: skip
        return dm
    for target, table in targets:
        source = display_path(target)
        try:
            # Only *.parquet files: a CSV or a _SUCCESS marker beside the parts is not part of the dataset.
            sdf = spark.read.option("pathGlobFilter", "*.parquet").parquet(target)
        except Exception as exc:  # Spark wraps Java exceptions; the first line names the problem
            dm.skip(source, table, f"cannot read with Spark: {_spark_error(exc)}")
            continue
        try:
            scan_dataframe_spark(sdf, source=source, table=table, full=full, sample_rows=sample_rows, dm=dm)
        except Exception as exc:
            dm.skip(source, table, f"Spark scan failed: {_spark_error(exc)}")
    return dm
