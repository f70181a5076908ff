"""Parquet files and datasets (a directory of Parquet files, or ``key=value/`` partitions) as tables.

Read with pyarrow batch by batch. Sampling reads the head of randomly chosen row groups of a big dataset,
or every k-th row of a small one. A corrupt file in a dataset is named and skipped; the rest is read.
"""

from __future__ import annotations

import contextlib
import random
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import polars as pl

from piguard.sources.datamap import BATCH_ROWS, TableScan
from piguard.sources.files import open_regular
from piguard.sources.paths import display_path
from piguard.sources.redact import describe_error

PARQUET_SAMPLE_GROUPS = 20


def parquet_files(root: Path) -> list[Path]:
    return sorted(p for p in root.rglob("*.parquet") if p.is_file())


def is_dataset_dir(root: Path) -> bool:
    """Parquet files directly inside, or hive partitions (``key=value/``): one dataset, one table."""
    try:
        return any(
            (p.is_file() and p.suffix.lower() == ".parquet") or (p.is_dir() and "=" in p.name)
            for p in root.iterdir()
        )
    except OSError:
        return False


@contextlib.contextmanager
def _open(f: Path) -> Iterator[Any]:
    """A ``ParquetFile`` on a Python file object, not on the name: names that are not UTF-8 reach pyarrow's
    C++ intact this way, and ``open_regular`` refuses a FIFO. Closed afterwards, so a dataset of ten
    thousand files never holds ten thousand descriptors."""
    import pyarrow.parquet as pq

    with open_regular(str(f)) as fh:
        pf = pq.ParquetFile(fh)
        try:
            yield pf
        finally:
            pf.close()


def _metadata(f: Path) -> Any:
    with _open(f) as pf:
        return pf.metadata


def _frame(rb: Any) -> pl.DataFrame:
    import pyarrow as pa

    df = pl.from_arrow(pa.Table.from_batches([rb]))
    assert isinstance(df, pl.DataFrame)
    return df


def parquet_table(source: str, table: str, files: list[Path], *, full: bool, sample_rows: int) -> TableScan:
    # Read every footer now so a corrupt file is reported by name before the table is read.
    opened: list[tuple[Path, Any]] = []
    bad: list[str] = []
    for f in files:
        try:
            opened.append((f, _metadata(f)))
        except Exception as exc:  # ArrowInvalid, OSError: not Parquet, truncated footer...
            bad.append(f"{display_path(f.name)}: {describe_error(exc, keep=[f.name])}")
    if not opened:
        raise ValueError(f"no readable Parquet file ({'; '.join(bad)[:300]})")
    source, table = display_path(source), display_path(table)
    skips = [{"source": source, "table": table, "reason": f"unreadable Parquet file {b}"} for b in bad]
    total = sum(md.num_rows for _, md in opened)
    step = 1 if full or total <= sample_rows else max(1, total // sample_rows)
    method = "full" if full else ("all rows" if step == 1 else f"every {step}th row (systematic sample)")
    groups = [(f, g) for f, md in opened for g in range(md.num_row_groups)]
    if step > 1 and len(groups) >= 4:
        # A big dataset: read the head of randomly chosen row groups instead of decoding every page.
        rng = random.Random(0)
        chosen = sorted(rng.sample(range(len(groups)), min(PARQUET_SAMPLE_GROUPS, len(groups))))
        per = -(-sample_rows // len(chosen))
        method = f"{per} rows from each of {len(chosen)} random row groups (of {len(groups)}; {total} rows)"

        def sampled() -> Iterator[pl.DataFrame]:
            for i in chosen:
                f, g = groups[i]
                try:
                    with _open(f) as pf:
                        rb = next(pf.iter_batches(batch_size=per, row_groups=[g]), None)
                except Exception as exc:
                    raise ValueError(f"{display_path(f.name)}: {describe_error(exc)}") from None
                if rb is not None and rb.num_rows:
                    yield _frame(rb)

        return TableScan(source, table, method, sampled, skips=skips, expected_rows=sample_rows)

    def batches() -> Iterator[pl.DataFrame]:
        for f, _ in opened:
            offset = 0
            try:
                with _open(f) as pf:
                    for rb in pf.iter_batches(batch_size=BATCH_ROWS):
                        df = _frame(rb)
                        if step > 1:
                            # Keep rows whose global index is a multiple of step, across batch edges.
                            first = (-offset) % step
                            df = df.gather_every(step, offset=first) if first < df.height else df.clear()
                        offset += rb.num_rows
                        if df.height:
                            yield df
            except Exception as exc:
                raise ValueError(f"{display_path(f.name)}: {describe_error(exc)}") from None

    return TableScan(source, table, method, batches, skips=skips, expected_rows=-(-total // step))


__all__ = ["is_dataset_dir", "parquet_files", "parquet_table"]
