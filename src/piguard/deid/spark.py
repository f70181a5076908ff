"""Spark path for tables that do not fit one machine.

The optimal search only needs how many records share each combination of quasi-identifiers (and
sensitive values). Spark computes those group counts where the data lives; the driver runs the same
lattice search on the counts (``Lattice(weights=...)``); Spark then applies the chosen transformation
row by row: hierarchy lookups via literal maps, and suppression via a broadcast join against the
suppressed combinations. Only the group-count table (bounded by ``max_groups``) ever reaches the driver.

Supported here: generalization of the quasi-identifiers (optimal mode) and the ``keep``/``drop``
operators; other operators need per-value keys and run in the single-machine path.
"""

from __future__ import annotations

import itertools
import time
from typing import TYPE_CHECKING, Any

import numpy as np
import polars as pl

from piguard.deid import safety
from piguard.deid.config import DeidConfig
from piguard.deid.engine import SUPPRESSED, build_hierarchies
from piguard.deid.errors import DeidError
from piguard.deid.lattice import Lattice
from piguard.deid.risk import risk_report

if TYPE_CHECKING:  # pragma: no cover
    from pyspark.sql import DataFrame as SparkDataFrame

MAX_GROUPS = 5_000_000
_COUNT = "__piguard_count"
_FLAG = "__piguard_suppressed"


def deidentify_spark(
    sdf: SparkDataFrame, cfg: DeidConfig, *, max_groups: int = MAX_GROUPS
) -> tuple[SparkDataFrame, dict[str, Any]]:
    """(transformed Spark DataFrame, report) for a Spark DataFrame; the report has the same contract as
    the single-machine path."""
    from pyspark.sql import functions as F

    t0 = time.perf_counter()
    if cfg.mode != "optimal":
        raise DeidError(
            "the Spark path runs the optimal search only (mondrian needs the rows on one machine)"
        )
    if not cfg.quasi:
        raise DeidError("the Spark path needs quasi-identifiers")
    for c in [*cfg.quasi, *cfg.models.sensitive_columns, *cfg.columns]:
        if c not in sdf.columns:
            raise DeidError(f"column '{c}' (named in the configuration) is not in the table")
    for c, spec in cfg.columns.items():
        if spec.get("op") not in ("keep", "drop"):
            raise DeidError(
                f"column '{c}': operator {spec.get('op')} is not available in the Spark path (keep/drop only)"
            )
    plans: dict[str, Any] = {}
    default_drop: list[str] = []
    if cfg.audit:
        # The same column audit as the single-machine path, on a sample the driver can hold.
        audit_in = safety.classify_table(_sample(sdf))
        plans = safety.plan_columns(
            _sample(sdf, 1), audit_in, cfg.quasi, cfg.columns, cfg.models.sensitive_columns, set(cfg.keep)
        )
        for c, plan in plans.items():
            if plan.origin == "default" and plan.treatment == "mask_text":
                raise safety.DeidRefused(
                    f"column '{c}' is free text holding {', '.join(plan.entities)}: the Spark path cannot "
                    f"mask text; drop it (op: drop), release it with --keep, or run without --engine spark"
                )
            if plan.origin == "default" and plan.treatment == "drop":
                default_drop.append(c)
    keys = list(dict.fromkeys([*cfg.quasi, *cfg.models.sensitive_columns]))
    text = [F.coalesce(F.col(f"`{c}`").cast("string"), F.lit("")).alias(c) for c in keys]
    grouped = sdf.select(text).groupBy(keys).agg(F.count(F.lit(1)).alias(_COUNT))
    n_groups = grouped.count()
    if n_groups > max_groups:
        raise DeidError(
            f"{n_groups:,} distinct quasi-identifier combinations exceed the limit of {max_groups:,}"
        )
    counts = (
        pl.from_arrow(grouped.toArrow())
        if hasattr(grouped, "toArrow")
        else pl.DataFrame([r.asDict() for r in grouped.collect()])
    )
    assert isinstance(counts, pl.DataFrame)
    hierarchies = build_hierarchies(counts, cfg)
    for q in cfg.quasi:
        if q not in hierarchies:
            raise DeidError(f"quasi-identifier '{q}' has no hierarchy")
    weights = counts[_COUNT].to_numpy().astype(np.float64)
    lat = Lattice(
        {c: counts[c] for c in keys}, hierarchies, cfg.quasi, cfg.models, cfg.metric, weights=weights
    )
    ts = time.perf_counter()
    res = lat.search(time_limit=cfg.time_limit, max_steps=cfg.max_steps)
    search_ms = round((time.perf_counter() - ts) * 1000, 2)

    out = sdf
    for d, q in enumerate(cfg.quasi):
        h = hierarchies[q]
        lvl = res.levels[d]
        pairs = [(F.lit(row[0]), F.lit(h.labels[lvl][h.codes[lvl][i]])) for i, row in enumerate(h.rows)]
        mapping = F.create_map(*itertools.chain.from_iterable(pairs))
        out = out.withColumn(
            f"__piguard_g_{d}", mapping[F.coalesce(F.col(f"`{q}`").cast("string"), F.lit(""))]
        )
    sup_rows = counts.filter(pl.Series(res.outlier_rows)).select(cfg.quasi).unique()
    if sup_rows.height:
        spark = sdf.sparkSession
        sup = spark.createDataFrame(
            sup_rows.rows(), schema=[f"__piguard_k_{d}" for d in range(len(cfg.quasi))]
        )
        sup = sup.withColumn(_FLAG, F.lit(True))
        for d, q in enumerate(cfg.quasi):
            out = out.withColumn(f"__piguard_k_{d}", F.coalesce(F.col(f"`{q}`").cast("string"), F.lit("")))
        out = out.join(F.broadcast(sup), on=[f"__piguard_k_{d}" for d in range(len(cfg.quasi))], how="left")
    else:
        out = out.withColumn(_FLAG, F.lit(False))
    for d, q in enumerate(cfg.quasi):
        out = out.withColumn(q, F.when(F.col(_FLAG), F.lit(SUPPRESSED)).otherwise(F.col(f"__piguard_g_{d}")))
    drop = [c for c, spec in cfg.columns.items() if spec.get("op") == "drop"] + default_drop
    helper = [c for c in out.columns if c.startswith("__piguard_")]
    out = out.drop(*helper, *drop).select([c for c in sdf.columns if c not in drop])

    n = lat.n
    suppressed = res.suppressed_rows
    risk = risk_report(res.class_sizes, res.class_of_row, n, cfg.risk, row_weights=weights)
    columns_info: dict[str, Any] = {
        q: {"operator": "generalize", "level": res.levels[d], "loss": res.column_loss[q]}
        for d, q in enumerate(cfg.quasi)
    }
    columns_info.update({c: {"operator": "drop", "loss": 1.0} for c in drop})
    report = {
        "models": cfg.models.describe(),
        "levels": res.levels_by_column(),
        "suppressed_rows": suppressed,
        "equivalence_classes": len(res.class_sizes),
        "min_class_size": int(res.class_sizes.min()) if len(res.class_sizes) else 0,
        "risk": risk,
        "utility": {
            "metric": cfg.metric,
            "columns": columns_info,
            "suppressed_share": suppressed / n if n else 0.0,
            "average_class_size": float(res.class_sizes.mean()) if len(res.class_sizes) else 0.0,
            "search": {
                "mode": "optimal",
                "strategy": "optimal",
                "proven_optimal": res.proven_optimal,
                "stopped_by": res.stopped_by,
                "engine": "spark",
                "groups": n_groups,
                "nodes_checked": res.checked,
                "lattice_size": res.lattice_size,
                "search_ms": search_ms,
                "score": res.score,
                "total_ms": round((time.perf_counter() - t0) * 1000, 2),
            },
        },
    }
    report["quasi_identifiers"] = [
        {"column": q, "level": res.levels[d], "hierarchy": hierarchies[q].describe()}
        for d, q in enumerate(cfg.quasi)
    ]
    if cfg.audit:
        rescan = safety.classify_table(_sample(out))
        leaks = [
            f"{c} ({', '.join(a.direct)})"
            for c, a in rescan.items()
            if a.direct
            and plans.get(c) is not None
            and plans[c].origin != "keep"
            and plans[c].treatment != "generalize"
        ]
        if leaks:
            raise safety.DeidRefused(
                f"the re-scan of a sample of the output still finds direct identifiers in column(s) "
                f"{'; '.join(leaks)}: not delivered"
            )
        verdict = safety.declared_state(
            plans, rescan, list(out.columns), models_hold=True, has_model=cfg.models.protects
        )
        levels = res.levels_by_column()
        report["declared_state"] = verdict.state
        report["state_reasons"] = verdict.reasons
        report["columns"] = {c: p.to_dict() for c, p in plans.items()}
        report["passed_through"] = [
            {"column": c, "origin": p.origin, "detected": p.entities}
            for c, p in plans.items()
            if c in out.columns
            and (p.treatment == "keep" or (p.treatment == "generalize" and levels.get(c) == 0))
        ]
        report["rescan"] = {
            "rows": min(SAMPLE_ROWS, n),
            "sampled": True,
            "columns": {c: [f.to_dict() for f in a.findings] for c, a in rescan.items() if a.findings},
            "direct_identifiers": sorted(c for c, a in rescan.items() if a.direct),
        }
    return out, report


SAMPLE_ROWS = 50_000


def _sample(sdf: SparkDataFrame, rows: int = SAMPLE_ROWS) -> pl.DataFrame:
    """The first ``rows`` rows as an all-text polars table, for the column audit on the driver."""
    from pyspark.sql import functions as F

    head = sdf.select([F.col(f"`{c}`").cast("string").alias(c) for c in sdf.columns]).limit(rows)
    got = (
        pl.from_arrow(head.toArrow())
        if hasattr(head, "toArrow")
        else pl.DataFrame([r.asDict() for r in head.collect()], schema=dict.fromkeys(sdf.columns, pl.String))
    )
    assert isinstance(got, pl.DataFrame)
    return got


def run_spark_files(
    input_path: str, out_path: str, cfg: DeidConfig, master: str = "local[*]"
) -> dict[str, Any]:
    """Read INPUT with Spark (CSV/TSV with sniffed delimiter and a header row, or Parquet), de-identify,
    and write OUTPUT as a Spark output directory (written beside it, then renamed into place)."""
    import os
    import shutil
    import uuid
    from pathlib import Path

    from pyspark.sql import SparkSession

    from piguard.deid.tableio import sniff_delimiter
    from piguard.sources.spark import quiet_driver

    remote_in, remote_out = "://" in input_path, "://" in out_path
    src, dst = Path(input_path), Path(out_path)
    if not remote_in and not src.exists():
        raise DeidError(f"{src}: input table not found")
    try:
        spark = (
            quiet_driver(SparkSession.builder.master(master))
            .appName("piguard-deid")
            .config("spark.ui.enabled", "false")
            .getOrCreate()
        )
    except Exception as exc:  # no Java, too little memory for the JVM, a bad master: PySpark's own errors
        raise DeidError(
            f"Spark could not start ({type(exc).__name__}): it needs Java 17 and memory for its JVM; "
            "PIGUARD_DEBUG=1 shows Spark's own messages"
        ) from None
    suffix = Path(input_path.rstrip("/")).suffix.lower()
    is_parquet = suffix in (".parquet", ".pq") or (
        not remote_in and src.is_dir() and any(src.glob("*.parquet"))
    )
    if is_parquet:
        sdf = spark.read.parquet(input_path)
        delim = ","
    else:
        if remote_in:  # no cheap peek at remote bytes: TSV by extension, else comma
            delim = "\t" if suffix == ".tsv" else ","
        else:
            head = next(iter(sorted(src.glob("*.csv"))), None) if src.is_dir() else src
            sample = head.read_bytes()[:65536].decode("utf-8", errors="replace") if head else ""
            delim = "\t" if suffix == ".tsv" else sniff_delimiter(sample)
        sdf = spark.read.csv(input_path, sep=delim, header=True, encoding="UTF-8")
    out, report = deidentify_spark(sdf, cfg)
    writer = out.write.mode("errorifexists")
    as_parquet = Path(out_path.rstrip("/")).suffix.lower() in (".parquet", ".pq")
    if remote_out:
        # Remote stores: Spark's own commit protocol (_temporary, then _SUCCESS) keeps the output whole.
        writer.parquet(out_path) if as_parquet else writer.csv(out_path, sep=delim, header=True)
        return report
    tmp = dst.with_name(f".{dst.name}.{uuid.uuid4().hex}.tmp")
    try:
        writer.parquet(str(tmp)) if as_parquet else writer.csv(str(tmp), sep=delim, header=True)
        if dst.exists():
            old = dst.with_name(f".{dst.name}.{uuid.uuid4().hex}.old")
            os.replace(dst, old)
            os.replace(tmp, dst)
            shutil.rmtree(old, ignore_errors=True) if old.is_dir() else old.unlink(missing_ok=True)
        else:
            os.replace(tmp, dst)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)
    return report
