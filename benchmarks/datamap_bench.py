"""Data-map benchmarks: cells per second on a generated Parquet table (8 columns, mixed personal and
non-personal), PostgreSQL sampled vs full, and the Spark engine vs the single-process engine.

    .venv/bin/python benchmarks/datamap_bench.py                 # 10M-row Parquet, 1M-row PostgreSQL
    .venv/bin/python benchmarks/datamap_bench.py --rows 1000000 --pg-rows 200000 --no-spark
    .venv/bin/python benchmarks/datamap_bench.py --no-parquet --no-postgres --no-spark \
        --wide 1000,10000,100000 --bomb-gib 10          # hostile input: wide CSV, decompression bomb

Writes benchmarks/results/datamap.json. Data is generated with a fixed seed, vectorized (numpy), under
benchmarks/data/ (not committed).
"""

from __future__ import annotations

import argparse
import io
import json
import os
import platform
import sys
import time
from pathlib import Path

import numpy as np
import polars as pl

ROOT = Path(__file__).resolve().parent
DATA = ROOT / "data"
RESULTS = ROOT / "results" / "datamap.json"

_W = np.array([7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2])
_REGIONS = np.array(["110101", "310104", "440305", "620102", "330106", "510107", "420102", "320102"])
_PREFIXES = np.array(["138", "139", "186", "150", "177", "199", "135", "158", "188", "133"])
_SURNAMES = list("王李张刘陈杨黄赵吴周徐孙马胡朱郭何罗高林")
_GIVEN = [
    "伟",
    "芳",
    "娜",
    "秀英",
    "敏",
    "静",
    "丽",
    "强",
    "磊",
    "军",
    "洋",
    "勇",
    "艳",
    "杰",
    "娟",
    "涛",
    "明",
]

EXPECTED_PI = {
    ("phone", "PHONE_NUMBER"),
    ("sfzh", "CN_RESIDENT_ID"),
    ("email", "EMAIL_ADDRESS"),
    ("name", "PERSON"),
}


def generate(rows: int, seed: int = 42) -> pl.DataFrame:
    """8 columns: 4 personal (phone, resident ID with a valid check digit, e-mail, Chinese name), 4 not
    (integer order id, amount, timestamp, status)."""
    rng = np.random.default_rng(seed)
    region = np.array([int(r) for r in _REGIONS], dtype=np.int64)[rng.integers(0, len(_REGIONS), rows)]
    born = (
        rng.integers(1950, 2006, rows) * 10_000 + rng.integers(1, 13, rows) * 100 + rng.integers(1, 29, rows)
    )
    body = region * 10**11 + born * 1000 + rng.integers(0, 1000, rows)  # 17 digits
    total = np.zeros(rows, dtype=np.int64)
    for k, w in enumerate(_W):  # digit k from the left is digit 16-k from the right
        total += (body // 10 ** (16 - k)) % 10 * w
    check = np.array(list("10X98765432"))[total % 11]
    ids = pl.Series(body).cast(pl.String) + pl.Series(check)
    phone = pl.Series(_PREFIXES[rng.integers(0, len(_PREFIXES), rows)]) + pl.Series(
        rng.integers(0, 100_000_000, rows)
    ).cast(pl.String).str.zfill(8)
    name = pl.Series(np.array(_SURNAMES)[rng.integers(0, len(_SURNAMES), rows)]) + pl.Series(
        np.array(_GIVEN)[rng.integers(0, len(_GIVEN), rows)]
    )
    email = (
        pl.lit("user")
        + pl.Series(rng.integers(0, 10**9, rows)).cast(pl.String)
        + pl.Series(np.array(["@example.com", "@mail.cn", "@corp.com.cn"])[rng.integers(0, 3, rows)])
    )
    return pl.DataFrame(
        {
            "order_id": np.arange(10_000_000_000, 10_000_000_000 + rows, dtype=np.int64),
            "phone": phone,
            "sfzh": ids,
            "email": pl.select(email).to_series(),
            "name": name,
            "amount": rng.random(rows) * 1000,
            "created_at": pl.Series(rng.integers(1_600_000_000, 1_700_000_000, rows) * 1_000_000).cast(
                pl.Datetime("us")
            ),
            "status": pl.Series(np.array(["paid", "shipped", "refunded", "open"])[rng.integers(0, 4, rows)]),
        }
    )


def parquet_path(rows: int) -> Path:
    p = DATA / f"datamap_{rows}.parquet"
    if not p.exists():
        DATA.mkdir(parents=True, exist_ok=True)
        t = time.perf_counter()
        parts = []
        step = 1_000_000
        for i in range(0, rows, step):
            parts.append(generate(min(step, rows - i), seed=42 + i // step))
        df = pl.concat(parts)
        df = df.with_columns(order_id=pl.int_range(10_000_000_000, 10_000_000_000 + rows, dtype=pl.Int64))
        tmp = p.with_suffix(".tmp")
        df.write_parquet(tmp, row_group_size=500_000)
        tmp.rename(p)
        print(f"generated {p} ({rows} rows) in {time.perf_counter() - t:.1f} s")
    return p


def _cpu() -> float:
    import resource

    ru = resource.getrusage(resource.RUSAGE_SELF)
    return ru.ru_utime + ru.ru_stime


def found(dm: object) -> set[tuple[str, str]]:
    return {(str(r["column"]), str(r["entity"])) for r in dm.rows}  # type: ignore[attr-defined]


def bench_parquet(rows: int) -> dict[str, object]:
    from piguard.sources.tables import scan_tables

    p = parquet_path(rows)
    cpu0 = _cpu()
    t = time.perf_counter()
    dm = scan_tables(str(p), full=True)
    full_s = time.perf_counter() - t
    cpu_s = _cpu() - cpu0
    t = time.perf_counter()
    sampled = scan_tables(str(p))
    sample_s = time.perf_counter() - t
    cells = rows * 8
    out = {
        "rows": rows,
        "columns": 8,
        "cells": cells,
        "full_seconds": round(full_s, 2),
        "cells_per_second": round(cells / full_s),
        # The machine is shared with other jobs: CPU seconds this process got, and what two whole cores
        # would give at that per-CPU-second rate (an estimate, labelled as such).
        "cpu_seconds": round(cpu_s, 1),
        "cells_per_cpu_second": round(cells / cpu_s),
        "estimated_cells_per_second_on_2_free_cores": round(2 * cells / cpu_s),
        "sampled_seconds": round(sample_s, 2),
        "sampled_rows": sampled.tables[0]["rows_scanned"],
        "found_full": sorted(found(dm)),
        "found_sampled": sorted(found(sampled)),
        "verdicts_correct_full": found(dm) == EXPECTED_PI,
        "verdicts_correct_sampled": found(sampled) == EXPECTED_PI,
    }
    print(
        f"parquet {rows} rows x 8 cols: full {full_s:.1f} s = {cells / full_s / 1e6:.2f} M cells/s "
        f"({cells / cpu_s / 1e6:.2f} M cells per CPU-second); "
        f"sampled {sample_s:.2f} s; verdicts full ok={out['verdicts_correct_full']} "
        f"sampled ok={out['verdicts_correct_sampled']}"
    )
    return out


def bench_postgres(rows: int, url: str) -> dict[str, object]:
    import psycopg
    import sqlalchemy as sa

    from piguard.sources.tables import scan_tables

    schema = "dm_bench"
    table = f"customers_{rows}"
    dsn = sa.make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute(f"CREATE SCHEMA IF NOT EXISTS {schema}")
        exists = conn.execute(
            "SELECT count(*) FROM information_schema.tables WHERE table_schema=%s AND table_name=%s",
            (schema, table),
        ).fetchone()[0]  # type: ignore[index]
        load_s = 0.0
        if not exists:
            t = time.perf_counter()
            conn.execute(
                f"CREATE TABLE {schema}.{table} (order_id bigint primary key, phone text, sfzh text, "
                "email text, name text, amount double precision, created_at timestamp, status text)"
            )
            step = 1_000_000
            for i in range(0, rows, step):
                df = generate(min(step, rows - i), seed=42 + i // step).with_columns(
                    order_id=pl.int_range(i, i + min(step, rows - i), dtype=pl.Int64)
                )
                buf = io.BytesIO()
                df.write_csv(buf, include_header=False)
                with conn.cursor().copy(f"COPY {schema}.{table} FROM STDIN WITH (FORMAT csv)") as cp:
                    cp.write(buf.getvalue())
            conn.execute(f"ANALYZE {schema}.{table}")
            load_s = time.perf_counter() - t
            print(f"loaded {rows} rows into PostgreSQL in {load_s:.1f} s")
    t = time.perf_counter()
    sampled = scan_tables(url, include=[f"{schema}.{table}"])
    sample_s = time.perf_counter() - t
    t = time.perf_counter()
    full = scan_tables(url, full=True, include=[f"{schema}.{table}"])
    full_s = time.perf_counter() - t
    out = {
        "rows": rows,
        "load_seconds": round(load_s, 1),
        "sampled_seconds": round(sample_s, 2),
        "sampled_rows": sampled.tables[0]["rows_scanned"] if sampled.tables else 0,
        "sampled_method": sampled.tables[0]["method"] if sampled.tables else None,
        "full_seconds": round(full_s, 2),
        "full_rows": full.tables[0]["rows_scanned"] if full.tables else 0,
        "full_cells_per_second": round(rows * 8 / full_s),
        "pi_columns_full": sorted(found(full)),
        "pi_columns_sampled": sorted(found(sampled)),
        "sampled_finds_every_full_column": found(full) <= found(sampled),
        "skipped": sampled.skipped + full.skipped,
    }
    print(
        f"postgres {rows} rows: sampled {sample_s:.2f} s "
        f"({out['sampled_rows']} rows, {out['sampled_method']}); "
        f"full {full_s:.1f} s; sampled finds every full PI column: {out['sampled_finds_every_full_column']}"
    )
    return out


def bench_spark(rows: int) -> dict[str, object]:
    from piguard.sources.spark import scan_path_spark
    from piguard.sources.tables import scan_tables

    p = parquet_path(rows)
    t = time.perf_counter()
    sdm = scan_path_spark(str(p), full=True)
    spark_s = time.perf_counter() - t
    t = time.perf_counter()
    pdm = scan_tables(str(p), full=True)
    polars_s = time.perf_counter() - t
    out = {
        "rows": rows,
        "spark_local2_seconds": round(spark_s, 2),
        "spark_cells_per_second": round(rows * 8 / spark_s),
        "single_process_seconds": round(polars_s, 2),
        "single_process_cells_per_second": round(rows * 8 / polars_s),
        "same_verdicts": found(sdm) == found(pdm),
        "skipped": sdm.skipped,
    }
    print(
        f"spark local[2] {rows} rows: {spark_s:.1f} s vs single process {polars_s:.1f} s; "
        f"same verdicts: {out['same_verdicts']}"
    )
    return out


def wide_csv(columns: int, rows: int = 3) -> Path:
    """A CSV as wide as a hostile export: a third phone numbers, a third names, a third status words."""
    p = DATA / f"wide_{columns}.csv"
    if p.exists():
        return p
    DATA.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(7)
    with p.open("w", encoding="utf-8") as fh:
        fh.write(",".join(f"c{i}" for i in range(columns)) + "\n")
        for r in range(rows):
            cells = []
            for i in range(columns):
                kind = i % 3
                if kind == 0:
                    cells.append(f"{_PREFIXES[(i + r) % len(_PREFIXES)]}{rng.integers(0, 10**8):08d}")
                elif kind == 1:
                    cells.append(_SURNAMES[(i + r) % len(_SURNAMES)] + _GIVEN[(i * 7 + r) % len(_GIVEN)])
                else:
                    cells.append(["已完成", "处理中", "已取消"][(i + r) % 3])
            fh.write(",".join(cells) + "\n")
    return p


def bench_wide(widths: list[int]) -> dict[str, object]:
    """Seconds to map a CSV of 3 rows by its number of columns: linear (it was quadratic: 1k columns 5.5 s,
    10k > 120 s), and the long-form pass against the column-by-column one it replaces for wide tables."""
    import piguard.detect.columns as columns
    from piguard.sources.tables import scan_tables

    scan_tables(str(wide_csv(100)))  # load the text detectors' models once, outside the timings
    out: dict[str, object] = {"rows": 3, "runs": []}
    for n in widths:
        p = wide_csv(n)
        t = time.perf_counter()
        dm = scan_tables(str(p))
        long_s = time.perf_counter() - t
        run: dict[str, object] = {
            "columns": n,
            "seconds": round(long_s, 2),
            "ms_per_column": round(1000 * long_s / n, 3),
            "pi_columns": len({r["column"] for r in dm.rows}),
        }
        if n <= 10_000:
            saved = columns.WIDE_MIN_COLUMNS
            columns.WIDE_MIN_COLUMNS = 10**9
            columns.header_hint.cache_clear()
            try:
                t = time.perf_counter()
                per_col = scan_tables(str(p))
                run["column_by_column_seconds"] = round(time.perf_counter() - t, 2)
                run["same_verdicts"] = found(per_col) == found(dm)
            finally:
                columns.WIDE_MIN_COLUMNS = saved
        out["runs"].append(run)  # type: ignore[union-attr]
        print(f"wide CSV {n} columns x 3 rows: {long_s:.2f} s ({run})")
    return out


def bench_bomb(inflated_gib: int) -> dict[str, object]:
    """``piguard scan`` on a gzip of ``inflated_gib`` GiB of text lines (the issue's 22 MB .gz of 10 GB ran
    15 minutes): seconds, peak memory, and the skip line. The file is gzip members of one compressed block
    written over and over, so building it takes seconds."""
    import gzip
    import resource
    import subprocess

    p = DATA / f"bomb_{inflated_gib}g.log.gz"
    if not p.exists():
        DATA.mkdir(parents=True, exist_ok=True)
        line = "客户来电 手机 13812345678 备注 " + "-" * 200 + "\n"
        member = gzip.compress((line * ((64 << 20) // len(line.encode()))).encode(), compresslevel=9)
        with p.open("wb") as fh:
            for _ in range(inflated_gib * 16):
                fh.write(member)
    exe = str(Path(sys.executable).parent / "piguard")
    t = time.perf_counter()
    res = subprocess.run(
        [exe, "scan", str(p), "--format", "jsonl", "--no-progress"], capture_output=True, timeout=3600
    )
    seconds = time.perf_counter() - t
    peak_kib = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    out = {
        "compressed_bytes": p.stat().st_size,
        "inflated_bytes": inflated_gib << 30,
        "seconds": round(seconds, 2),
        "peak_rss_mib": round(peak_kib / 1024),
        "exit_code": res.returncode,
        "findings_before_the_bound": res.stdout.count(b"\n"),
        "skip": res.stderr.decode("utf-8", "replace").strip().splitlines()[-1:],
    }
    print(f"gzip bomb of {inflated_gib} GiB ({p.stat().st_size >> 20} MiB): {out}")
    return out


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--rows", type=int, default=10_000_000)
    ap.add_argument("--pg-rows", type=int, default=1_000_000)
    ap.add_argument("--spark-rows", type=int, default=1_000_000)
    ap.add_argument("--no-parquet", action="store_true")
    ap.add_argument("--no-postgres", action="store_true")
    ap.add_argument("--no-spark", action="store_true")
    ap.add_argument("--wide", default="", help="comma-separated column counts, e.g. 1000,10000,100000")
    ap.add_argument("--bomb-gib", type=int, default=0, help="gzip bomb of this many GiB (0: skip)")
    args = ap.parse_args()
    # Parts run separately are merged into one results file; each part records its own command and load.
    results: dict[str, object] = json.loads(RESULTS.read_text("utf-8")) if RESULTS.exists() else {}
    results.pop("command", None)  # each part carries its own command
    results["machine"] = {
        "cpus": os.cpu_count(),
        "python": platform.python_version(),
        "polars": pl.__version__,
    }
    command = "python benchmarks/datamap_bench.py " + " ".join(sys.argv[1:])

    def stamp(part: dict[str, object]) -> dict[str, object]:
        # The machine is shared: the load average says how much of the 2 cores the run really had.
        return {**part, "command": command, "load_average_after": os.getloadavg()[0]}

    if not args.no_parquet:
        results["parquet"] = stamp(bench_parquet(args.rows))
    if not args.no_postgres:
        url = os.environ.get("PIGUARD_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test")
        results["postgres"] = stamp(bench_postgres(args.pg_rows, url))
    if not args.no_spark:
        results["spark"] = stamp(bench_spark(args.spark_rows))
    if args.wide:
        results["wide_csv"] = stamp(bench_wide([int(x) for x in args.wide.split(",")]))
    if args.bomb_gib:
        results["gzip_bomb"] = stamp(bench_bomb(args.bomb_gib))
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    tmp = RESULTS.with_suffix(".tmp")
    tmp.write_text(json.dumps(results, indent=2, ensure_ascii=False, default=str), encoding="utf-8")
    tmp.rename(RESULTS)
    print(f"wrote {RESULTS}")


if __name__ == "__main__":
    main()
