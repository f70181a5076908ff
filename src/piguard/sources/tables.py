"""The data map: which personal information every source, table and column holds.

Public API (used by ``piguard scan``)::

    from piguard.sources.tables import is_table_target, is_tabular_file, scan_tables
    dm = scan_tables("postgresql+psycopg://user@host/db", include=["crm.*"])   # sampled
    dm = scan_tables("lake/customers/", full=True)                              # every row, in batches
    dm.rows          # one dict per (column, entity): the JSON contract
    dm.combinations  # tables whose columns together identify people
    dm.skipped       # [{source, table, reason}] -- nothing here stops the scan

This module only dispatches: each format has its reader beside it (``csvfile``, ``jsonfile``, ``parquet``,
``excel``, ``sql``, ``spark``), each reader describes its tables as ``TableScan``s, and
``datamap.map_table`` classifies them. Readers never import this module.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from pathlib import Path

from piguard.sources.datamap import ROW_KEYS, DataMap, ProgressFn, TableScan, add_table_result, map_table
from piguard.sources.limits import ReadLimits
from piguard.sources.paths import display_path
from piguard.sources.redact import describe_error, redact_url
from piguard.sources.selection import table_selected

TABULAR_SUFFIXES = {".csv", ".tsv", ".json", ".jsonl", ".ndjson", ".parquet", ".xlsx"}
BINARY_TABLE_SUFFIXES = {".parquet", ".xlsx"}
SQL_SCHEMES = ("sqlite", "postgresql", "postgres", "mysql", "mariadb")


# --- what is a table -----------------------------------------------------------------------------------
def is_sql_url(target: str) -> bool:
    if "://" not in target:
        return False
    scheme = target.split("://", 1)[0].split("+", 1)[0].lower()
    return scheme in SQL_SCHEMES


def is_table_target(target: str) -> bool:
    """SQLAlchemy URLs, SQLite files, Parquet and Excel files, and directories holding Parquet."""
    if is_sql_url(target):
        return True
    if "://" in target:
        return False
    from piguard.sources.sql import is_sqlite_file

    p = Path(target)
    try:
        if p.is_file():
            return p.suffix.lower() in BINARY_TABLE_SUFFIXES or is_sqlite_file(target)
        if p.is_dir():
            return next(iter(p.rglob("*.parquet")), None) is not None
    except OSError:
        return False
    return False


def is_tabular_file(path: str) -> bool:
    """Files the data map can read as tables (CSV and JSON are also scanned as text by ``piguard scan``)."""
    return Path(path).suffix.lower() in TABULAR_SUFFIXES


# --- the scan ------------------------------------------------------------------------------------------
def scan_tables(
    target: str,
    *,
    full: bool = False,
    sample_rows: int = 10000,
    engine: str = "polars",
    include: Sequence[str] | None = None,
    exclude: Sequence[str] | None = None,
    limits: ReadLimits | None = None,
    progress: ProgressFn | None = None,
) -> DataMap:
    """Map the personal information in ``target`` (a database URL, a tabular file, or a directory).

    ``include`` / ``exclude``: shell patterns on the table name (``schema.table`` for databases: ``crm.*``,
    ``*.tmp_*``); a database's schemas that no pattern admits are not even listed. ``limits``: timeouts
    and decompression bounds (defaults, or the environment). ``progress``: called as each table is read.
    Never raises for bad input: every problem becomes an entry in ``DataMap.skipped``.
    """
    dm = DataMap()
    limits = limits or ReadLimits.from_env()
    shown = redact_url(target) if "://" in target else display_path(target)
    if engine not in ("polars", "spark"):
        dm.skip(shown, "*", f"unknown engine {engine!r}; valid: polars, spark")
        return dm
    if engine == "spark":
        if is_sql_url(target):
            dm.skip(shown, "*", "the Spark engine reads Parquet datasets; use engine polars for databases")
            return dm
        from piguard.sources.spark import scan_path_spark

        dm = scan_path_spark(target, full=full, sample_rows=sample_rows, include=include, exclude=exclude)
        return _filtered(dm, include, exclude)
    for item in iter_table_scans(
        target, full=full, sample_rows=sample_rows, include=include, exclude=exclude, limits=limits
    ):
        if isinstance(item, dict):
            dm.skipped.append(item)
            continue
        if not table_selected(item.table, include, exclude):
            continue
        map_table(item, dm, progress)
    return dm


def _filtered(dm: DataMap, include: Sequence[str] | None, exclude: Sequence[str] | None) -> DataMap:
    if not include and not exclude:
        return dm
    out = DataMap()
    keep = lambda d: d.get("table") == "*" or table_selected(str(d.get("table")), include, exclude)  # noqa: E731
    out.rows = [r for r in dm.rows if keep(r)]
    out.combinations = [r for r in dm.combinations if keep(r)]
    out.skipped = [r for r in dm.skipped if keep(r)]
    out.tables = [r for r in dm.tables if keep(r)]
    out.notes = [r for r in dm.notes if keep(r)]
    out.evidence = [r for r in dm.evidence if keep(r)]
    return out


def iter_table_scans(
    target: str,
    *,
    full: bool,
    sample_rows: int,
    include: Sequence[str] | None = None,
    exclude: Sequence[str] | None = None,
    limits: ReadLimits | None = None,
) -> Iterator[TableScan | dict[str, str]]:
    limits = limits or ReadLimits.from_env()
    if is_sql_url(target):
        from piguard.sources.sql import iter_sql_tables

        yield from iter_sql_tables(
            target, full=full, sample_rows=sample_rows, include=include, exclude=exclude, limits=limits
        )
        return
    p = Path(target)
    if not p.exists():
        yield {"source": display_path(target), "table": "*", "reason": "no such file or directory"}
        return
    if p.is_dir():
        yield from _dir_tables(p, full=full, sample_rows=sample_rows, limits=limits)
        return
    yield from file_tables(str(p), full=full, sample_rows=sample_rows, limits=limits, include=include,
                           exclude=exclude)  # fmt: skip


# --- files ---------------------------------------------------------------------------------------------
def _dir_tables(
    root: Path, *, full: bool, sample_rows: int, limits: ReadLimits
) -> Iterator[TableScan | dict[str, str]]:
    """A directory holding Parquet files directly (or in hive partitions key=value/) is one table; otherwise
    each sub-directory with Parquet is a table, and other tabular files are tables of their own."""
    from piguard.sources.parquet import is_dataset_dir, parquet_files, parquet_table

    try:
        entries = sorted(root.iterdir())
    except OSError as exc:
        yield {"source": display_path(str(root)), "table": "*", "reason": f"cannot list: {exc.strerror}"}
        return
    if is_dataset_dir(root):
        try:
            yield parquet_table(str(root), root.name, parquet_files(root), full=full, sample_rows=sample_rows)
        except Exception as exc:
            reason = describe_error(exc, keep=[root.name])
            yield {"source": display_path(str(root)), "table": display_path(root.name), "reason": reason}
        # Other tables lying beside the Parquet files are tables of their own.
        for p in entries:
            if p.is_file() and p.suffix.lower() != ".parquet" and is_tabular_file(str(p)):
                yield from file_tables(str(p), full=full, sample_rows=sample_rows, limits=limits)
        return
    for p in entries:
        if p.is_dir():
            yield from _dir_tables(p, full=full, sample_rows=sample_rows, limits=limits)
        elif p.is_file() and is_tabular_file(str(p)):
            yield from file_tables(str(p), full=full, sample_rows=sample_rows, limits=limits)


def file_tables(
    path: str,
    *,
    full: bool,
    sample_rows: int,
    limits: ReadLimits | None = None,
    include: Sequence[str] | None = None,
    exclude: Sequence[str] | None = None,
) -> Iterator[TableScan | dict[str, str]]:
    """The tables of one file: one for CSV, JSON and Parquet, one per sheet for Excel, one per table for
    SQLite. A file that cannot be opened becomes a skip entry naming it."""
    suffix = Path(path).suffix.lower()
    name = Path(path).name
    try:
        if suffix == ".parquet":
            from piguard.sources.parquet import parquet_table

            yield parquet_table(path, name, [Path(path)], full=full, sample_rows=sample_rows)
        elif suffix in (".csv", ".tsv"):
            from piguard.sources.csvfile import csv_table

            yield csv_table(path, "\t" if suffix == ".tsv" else ",", full=full, sample_rows=sample_rows)
        elif suffix in (".jsonl", ".ndjson"):
            from piguard.sources.jsonfile import jsonl_table

            yield jsonl_table(path, full=full, sample_rows=sample_rows)
        elif suffix == ".json":
            from piguard.sources.jsonfile import json_table

            yield json_table(path, full=full, sample_rows=sample_rows)
        elif suffix == ".xlsx":
            from piguard.sources.excel import excel_tables

            yield from excel_tables(path, full=full, sample_rows=sample_rows, limits=limits)
        else:
            from piguard.sources.sql import is_sqlite_file, iter_sql_tables

            if is_sqlite_file(path):
                yield from iter_sql_tables(
                    "", full=full, sample_rows=sample_rows, include=include, exclude=exclude, limits=limits,
                    sqlite_path=path,
                )  # fmt: skip
                return
            yield {
                "source": display_path(path),
                "table": display_path(name),
                "reason": f"not a tabular file ({display_path(suffix) or 'no suffix'})",
            }
    except Exception as exc:  # opening a corrupt file fails in format-specific ways
        reason = describe_error(exc, keep=[name, display_path(name)])
        yield {"source": display_path(path), "table": display_path(name), "reason": reason}


# Kept for importers of the former single module.
__all__ = [
    "ROW_KEYS", "DataMap", "TableScan", "add_table_result", "describe_error", "file_tables",
    "is_sql_url", "is_table_target", "is_tabular_file", "iter_table_scans", "map_table", "redact_url",
    "scan_tables",
]  # fmt: skip
