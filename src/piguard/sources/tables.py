"""The data map: which personal information every source, table and column holds.

Public API (used by ``piguard scan``)::

    from piguard.sources.tables import is_table_target, is_tabular_file, scan_tables
    dm = scan_tables("postgresql+psycopg://user@host/db")          # sampled
    dm = scan_tables("lake/customers/", full=True)                  # every row, in batches
    dm.rows          # one dict per (column, entity): the JSON contract
    dm.combinations  # tables whose columns together identify people
    dm.skipped       # [{source, table, reason}] -- nothing here stops the scan

Readers hand the classifier bounded batches (polars DataFrames); no reader loads a whole table.
"""

from __future__ import annotations

import codecs
import fnmatch
import json
import os
import random
import tempfile
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import polars as pl

from piguard import taxonomy
from piguard.detect.columns import TableClassifier, combinations, header_only_note

ROW_KEYS = (
    "source",
    "table",
    "column",
    "entity",
    "share",
    "rows_scanned",
    "sensitive",
    "confidence",
    "examples_masked",
)
TABULAR_SUFFIXES = {".csv", ".tsv", ".json", ".jsonl", ".ndjson", ".parquet", ".xlsx"}
BINARY_TABLE_SUFFIXES = {".parquet", ".xlsx"}
SQL_SCHEMES = ("sqlite", "postgresql", "postgres", "mysql", "mariadb")
BATCH_ROWS = 200_000
PARQUET_SAMPLE_GROUPS = 20
SNIFF_BYTES = 64 * 1024
# A JSON document (not JSON Lines) is parsed whole; beyond this size it is skipped with a hint.
MAX_JSON_DOCUMENT_BYTES = 512 * 1024 * 1024


@dataclass
class TableScan:
    """One table to map: where it is, how it is read, and a factory for its batches."""

    source: str
    table: str
    method: str  # e.g. "TABLESAMPLE SYSTEM (0.3%)", "every 100th row", "full"
    batches: Callable[[], Iterator[pl.DataFrame]]
    notes: list[str] = field(default_factory=list)
    skips: list[dict[str, str]] = field(default_factory=list)  # parts of the table that could not be read


@dataclass
class DataMap:
    rows: list[dict[str, object]] = field(default_factory=list)
    combinations: list[dict[str, object]] = field(default_factory=list)
    skipped: list[dict[str, str]] = field(default_factory=list)
    tables: list[dict[str, object]] = field(default_factory=list)  # every table mapped, with or without PI
    notes: list[dict[str, str]] = field(default_factory=list)
    evidence: list[dict[str, object]] = field(default_factory=list)  # why each row was reported

    def skip(self, source: str, table: str, reason: str) -> None:
        self.skipped.append({"source": source, "table": table, "reason": reason})

    def extend(self, other: DataMap) -> None:
        self.rows.extend(other.rows)
        self.combinations.extend(other.combinations)
        self.skipped.extend(other.skipped)
        self.tables.extend(other.tables)
        self.notes.extend(other.notes)
        self.evidence.extend(other.evidence)

    def as_dict(self) -> dict[str, object]:
        return {
            "sources": self.rows,
            "combinations": self.combinations,
            "skipped": self.skipped,
            "tables": self.tables,
            "notes": self.notes,
            "evidence": self.evidence,
        }


# --- what is a table -----------------------------------------------------------------------------------
def _is_sql_url(target: str) -> bool:
    if "://" not in target:
        return False
    scheme = target.split("://", 1)[0].split("+", 1)[0].lower()
    return scheme in SQL_SCHEMES


def _parquet_files(root: Path) -> list[Path]:
    return sorted(p for p in root.rglob("*.parquet") if p.is_file())


def is_table_target(target: str) -> bool:
    """SQLAlchemy URLs, Parquet and Excel files, and directories holding Parquet."""
    if _is_sql_url(target):
        return True
    if "://" in target:
        return False
    p = Path(target)
    if p.suffix.lower() in BINARY_TABLE_SUFFIXES and p.is_file():
        return True
    if p.is_dir():
        try:
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
) -> DataMap:
    """Map the personal information in ``target`` (a database URL, a tabular file, or a directory).

    ``include``: shell patterns on the table name (``schema.table`` for databases); tables that match none
    are not read. Never raises for bad input: every problem becomes an entry in ``DataMap.skipped``.
    """
    dm = DataMap()
    if engine not in ("polars", "spark"):
        dm.skip(target, "*", f"unknown engine {engine!r}; valid: polars, spark")
        return dm
    if engine == "spark":
        from piguard.sources.spark import scan_path_spark

        if _is_sql_url(target):
            dm.skip(
                redact_url(target),
                "*",
                "the Spark engine reads Parquet datasets; use engine polars for databases",
            )
            return dm

        return scan_path_spark(target, full=full, sample_rows=sample_rows)
    for item in iter_table_scans(target, full=full, sample_rows=sample_rows):
        if isinstance(item, dict):
            dm.skipped.append(item)
            continue
        if include and not any(fnmatch.fnmatchcase(item.table, pat) for pat in include):
            continue
        map_table(item, dm)
    return dm


def iter_table_scans(target: str, *, full: bool, sample_rows: int) -> Iterator[TableScan | dict[str, str]]:
    if _is_sql_url(target):
        from piguard.sources.sql import iter_sql_tables

        yield from iter_sql_tables(target, full=full, sample_rows=sample_rows)
        return
    p = Path(target)
    if not p.exists():
        yield {"source": target, "table": "*", "reason": "no such file or directory"}
        return
    if p.is_dir():
        yield from _dir_tables(p, full=full, sample_rows=sample_rows)
        return
    yield from file_tables(str(p), full=full, sample_rows=sample_rows)


def map_table(ts: TableScan, dm: DataMap) -> None:
    """Classify one table batch by batch; a failure in mid-table skips the table, not the scan."""
    clf = TableClassifier()
    dm.skipped.extend(ts.skips)
    try:
        for batch in ts.batches():
            clf.add(batch)
    except Exception as exc:  # readers raise driver and format errors of every kind; each skips one table
        dm.skip(ts.source, ts.table, describe_error(exc))
        return
    add_table_result(dm, ts.source, ts.table, ts.method, clf, ts.notes)


def add_table_result(
    dm: DataMap, source: str, table: str, method: str, clf: TableClassifier, notes: list[str] | None = None
) -> None:
    tax = taxonomy.entities()
    table_entities: dict[str, list[str]] = {}
    for v in clf.verdicts():
        et = tax.get(v.entity)
        dm.rows.append(
            {
                "source": source,
                "table": table,
                "column": v.column,
                "entity": v.entity,
                "share": v.share,
                "rows_scanned": clf.rows,
                "sensitive": bool(et and et.sensitive),
                "confidence": v.confidence,
                "examples_masked": list(v.examples_masked),
            }
        )
        dm.evidence.append(
            {"source": source, "table": table, "column": v.column, "entity": v.entity, "evidence": v.evidence}
        )
        table_entities.setdefault(v.column, []).append(v.entity)
    for st in clf.columns.values():
        if st.skipped_reason:
            dm.skip(source, table, f"column {st.name!r}: {st.skipped_reason}")
        if st.truncated:
            dm.notes.append(
                {
                    "source": source,
                    "table": table,
                    "note": f"column {st.name!r}: {st.truncated} cell(s) over "
                    f"1 MiB, only the first 1 MiB of each was scanned",
                }
            )
        note = header_only_note(st)
        if note and st.name not in table_entities:
            dm.notes.append({"source": source, "table": table, "note": f"column {st.name!r}: {note}"})
    for n in notes or []:
        dm.notes.append({"source": source, "table": table, "note": n})
    combo = combinations(table_entities)
    if combo is not None:
        dm.combinations.append({"source": source, "table": table, **combo})
    dm.tables.append(
        {
            "source": source,
            "table": table,
            "rows_scanned": clf.rows,
            "columns": len(clf.columns),
            "pi_columns": len(table_entities),
            "sensitive_columns": sum(
                1 for ents in table_entities.values() if any(taxonomy.is_sensitive(e) for e in ents)
            ),
            "method": method,
        }
    )


def redact_url(text: str) -> str:
    """Never echo a password from a database URL."""
    import re

    return re.sub(r"(://[^:/@\s]+):[^@/\s]+@", r"\1:***@", text)


def describe_error(exc: BaseException) -> str:
    """One line for the report; database URLs inside driver messages lose their passwords."""
    import re

    msg = str(getattr(exc, "orig", None) or exc).strip().splitlines()
    first = msg[0] if msg else type(exc).__name__
    first = re.sub(r"(://[^:/@\s]+):[^@/\s]+@", r"\1:***@", first)
    return f"{type(exc).__name__}: {first[:300]}"


# --- files ---------------------------------------------------------------------------------------------
def _dir_tables(root: Path, *, full: bool, sample_rows: int) -> Iterator[TableScan | dict[str, str]]:
    """A directory holding Parquet files directly (or in hive partitions key=value/) is one table; otherwise
    each sub-directory with Parquet is a table, and other tabular files are tables of their own."""
    direct = [p for p in root.iterdir() if p.is_file() and p.suffix.lower() == ".parquet"]
    partitions = [p for p in root.iterdir() if p.is_dir() and "=" in p.name]
    if direct or partitions:
        try:
            yield _parquet_table(
                str(root), root.name, _parquet_files(root), full=full, sample_rows=sample_rows
            )
        except Exception as exc:
            yield {"source": str(root), "table": root.name, "reason": describe_error(exc)}
        # Other tables lying beside the Parquet files are tables of their own.
        for p in sorted(root.iterdir()):
            if p.is_file() and p.suffix.lower() != ".parquet" and is_tabular_file(str(p)):
                yield from file_tables(str(p), full=full, sample_rows=sample_rows)
        return
    for p in sorted(root.iterdir()):
        if p.is_dir():
            yield from _dir_tables(p, full=full, sample_rows=sample_rows)
        elif p.is_file() and is_tabular_file(str(p)):
            yield from file_tables(str(p), full=full, sample_rows=sample_rows)


def file_tables(path: str, *, full: bool, sample_rows: int) -> Iterator[TableScan | dict[str, str]]:
    suffix = Path(path).suffix.lower()
    name = Path(path).name
    try:
        if suffix == ".parquet":
            yield _parquet_table(path, name, [Path(path)], full=full, sample_rows=sample_rows)
        elif suffix in (".csv", ".tsv"):
            yield _csv_table(path, "\t" if suffix == ".tsv" else ",", full=full, sample_rows=sample_rows)
        elif suffix in (".jsonl", ".ndjson"):
            yield _jsonl_table(path, full=full, sample_rows=sample_rows)
        elif suffix == ".json":
            yield _json_table(path, full=full, sample_rows=sample_rows)
        elif suffix == ".xlsx":
            yield from _excel_tables(path, full=full, sample_rows=sample_rows)
        else:
            yield {"source": path, "table": name, "reason": f"not a tabular file ({suffix or 'no suffix'})"}
    except Exception as exc:  # opening a corrupt file fails in format-specific ways
        yield {"source": path, "table": name, "reason": describe_error(exc)}


# Parquet
def _parquet_table(source: str, table: str, files: list[Path], *, full: bool, sample_rows: int) -> TableScan:
    import pyarrow.parquet as pq

    # Open every file now so a corrupt one is reported by name before the table is read.
    opened: list[tuple[Path, pq.ParquetFile]] = []
    bad: list[str] = []
    for f in files:
        try:
            opened.append((f, pq.ParquetFile(f)))
        except Exception as exc:  # ArrowInvalid, OSError: not Parquet, truncated footer...
            bad.append(f"{f.name}: {describe_error(exc)}")
    if not opened:
        raise ValueError(f"no readable Parquet file ({'; '.join(bad)[:300]})")
    total = sum(pf.metadata.num_rows for _, pf in opened)
    step = 1 if full or total <= sample_rows else max(1, total // sample_rows)
    method = "full" if full else ("all rows" if step == 1 else f"every {step}th row (systematic sample)")
    groups = [(f, pf, g) for f, pf in opened for g in range(pf.metadata.num_row_groups)]
    if step > 1 and len(groups) >= 4:
        # A big dataset: read the head of randomly chosen row groups instead of decoding every page.
        rng = random.Random(0)
        chosen = sorted(rng.sample(range(len(groups)), min(PARQUET_SAMPLE_GROUPS, len(groups))))
        per = -(-sample_rows // len(chosen))
        method = f"{per} rows from each of {len(chosen)} random row groups (of {len(groups)}; {total} rows)"

        def sampled() -> Iterator[pl.DataFrame]:
            import pyarrow as pa

            for i in chosen:
                f, pf, g = groups[i]
                try:
                    rb = next(pf.iter_batches(batch_size=per, row_groups=[g]), None)
                except Exception as exc:
                    raise ValueError(f"{f}: {describe_error(exc)}") from None
                if rb is not None and rb.num_rows:
                    df = pl.from_arrow(pa.Table.from_batches([rb]))
                    assert isinstance(df, pl.DataFrame)
                    yield df

        skips = [{"source": source, "table": table, "reason": f"unreadable Parquet file {b}"} for b in bad]
        return TableScan(source, table, method, sampled, skips=skips)

    def batches() -> Iterator[pl.DataFrame]:
        import pyarrow as pa

        for f, pf in opened:
            offset = 0
            try:
                for rb in pf.iter_batches(batch_size=BATCH_ROWS):
                    df = pl.from_arrow(pa.Table.from_batches([rb]))
                    assert isinstance(df, pl.DataFrame)
                    if step > 1:
                        # Keep rows whose global index is a multiple of step, across batch edges.
                        first = (-offset) % step
                        df = df.gather_every(step, offset=first) if first < df.height else df.clear()
                    offset += rb.num_rows
                    if df.height:
                        yield df
            except Exception as exc:
                raise ValueError(f"{f}: {describe_error(exc)}") from None

    skips = [{"source": source, "table": table, "reason": f"unreadable Parquet file {b}"} for b in bad]
    return TableScan(source, table, method, batches, skips=skips)


# CSV / TSV
def _sniff_encoding(path: str) -> str:
    with open(path, "rb") as fh:
        head = fh.read(SNIFF_BYTES)
    if head.startswith(codecs.BOM_UTF8):
        return "utf-8-sig"
    if head.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        return "utf-16"
    try:
        head.decode("utf-8")
        return "utf-8"
    except UnicodeDecodeError as exc:
        if exc.start >= len(head) - 4:
            return "utf-8"
    return "gb18030"  # GBK and GB2312 are subsets


def _utf8_clean(path: str) -> bool:
    """Whole file valid UTF-8? (C-speed decode, block by block; a split character at a block edge is fine)."""
    dec = codecs.getincrementaldecoder("utf-8")()
    with open(path, "rb") as fh:
        while block := fh.read(4 << 20):
            try:
                dec.decode(block)
            except UnicodeDecodeError:
                return False
    return True


def _transcode(path: str, encoding: str) -> tuple[str, int]:
    """Write a UTF-8 copy for polars. Lines that fail the file's encoding are tried as UTF-8 and GB18030 in
    turn (files stitched from several exports mix encodings); returns (temp path, lines that needed it)."""
    fd, tmp = tempfile.mkstemp(prefix="piguard-", suffix=".csv")
    mixed = 0
    alt = ("utf-8", "gb18030")
    with os.fdopen(fd, "wb") as out, open(path, "rb") as fh:
        if encoding == "utf-16":
            out.write(fh.read().decode("utf-16", errors="replace").encode("utf-8"))
            return tmp, 0
        if encoding == "utf-8-sig":
            fh.read(3)
            encoding = "utf-8"
        pending = b""
        while True:
            block = fh.read(4 << 20)
            data = pending + block
            if block:
                cut = data.rfind(b"\n") + 1
                if cut == 0:
                    pending = data
                    continue
                data, pending = data[:cut], data[cut:]
            try:
                out.write(data.decode(encoding).encode("utf-8"))
            except UnicodeDecodeError:
                for line in data.splitlines(keepends=True):
                    for enc in (encoding, *alt):
                        try:
                            out.write(line.decode(enc).encode("utf-8"))
                            if enc != encoding:
                                mixed += 1
                            break
                        except UnicodeDecodeError:
                            continue
                    else:
                        mixed += 1
                        out.write(line.decode(encoding, errors="replace").encode("utf-8"))
            if not block:
                break
    return tmp, mixed


def _csv_table(path: str, sep: str, *, full: bool, sample_rows: int) -> TableScan:
    encoding = _sniff_encoding(path)
    notes: list[str] = []
    size = os.path.getsize(path)
    with open(path, "rb") as fh:
        head = fh.read(SNIFF_BYTES)
    lines_in_head = max(1, head.count(b"\n"))
    est_rows = max(1, size * lines_in_head // max(1, len(head)))
    step = 1 if full or est_rows <= sample_rows else max(1, est_rows // sample_rows)
    method = "full" if full else ("all rows" if step == 1 else f"every {step}th row (systematic sample)")

    def batches() -> Iterator[pl.DataFrame]:
        src, tmp = path, None
        if encoding != "utf-8" or not _utf8_clean(path):
            src, mixed = _transcode(path, "utf-8" if encoding == "utf-8" else encoding)
            tmp = src
            if mixed:
                notes.append(f"{mixed} line(s) not in {encoding} were decoded as UTF-8 or GB18030")
            if encoding != "utf-8":
                notes.append(f"decoded as {encoding}")
        try:
            lf = pl.scan_csv(
                src,
                separator=sep,
                infer_schema=False,
                truncate_ragged_lines=True,
                encoding="utf8-lossy",
                raise_if_empty=False,
            )
            if step > 1:
                lf = lf.gather_every(step).head(sample_rows)
            yield from lf.collect_batches(chunk_size=BATCH_ROWS)
        finally:
            if tmp:
                os.unlink(tmp)

    return TableScan(path, Path(path).name, method, batches, notes)


# JSON Lines and JSON
def flatten(df: pl.DataFrame) -> pl.DataFrame:
    """Nested objects become dotted columns (``customer.contact.phone``); lists of objects become JSON text
    so their values are still scanned as free text."""
    while True:
        structs = [c for c, t in df.schema.items() if isinstance(t, pl.Struct)]
        if not structs:
            break
        for c in structs:
            fields = [f.name for f in df.schema[c].fields]  # type: ignore[attr-defined]
            if not fields:
                df = df.drop(c)
                continue
            df = df.with_columns(pl.col(c).struct.rename_fields([f"{c}.{f}" for f in fields])).unnest(c)
    nested_lists = [
        c for c, t in df.schema.items() if isinstance(t, pl.List) and isinstance(t.inner, pl.Struct | pl.List)
    ]
    if nested_lists:
        df = df.with_columns(
            pl.col(c)
            .list.eval(
                pl.element().struct.json_encode()
                if isinstance(df.schema[c].inner, pl.Struct)  # type: ignore[attr-defined]
                else pl.element().cast(pl.String, strict=False)
            )
            .list.join(" ")
            for c in nested_lists
        )
    return df


def _jsonl_table(path: str, *, full: bool, sample_rows: int) -> TableScan:
    limit = None if full else sample_rows
    method = "full" if full else f"first {sample_rows} records"
    notes: list[str] = []

    def batches() -> Iterator[pl.DataFrame]:
        # Parsed in Python line by line: one bad line must not lose the file, and records may differ in
        # shape. Parsing is reading, not classifying: the cells are classified vectorized afterwards.
        records: list[dict[str, object]] = []
        bad = 0
        seen = 0
        with open(path, "rb") as fh:
            for raw in fh:
                if limit is not None and seen >= limit:
                    break
                line = raw.strip()
                if not line:
                    continue
                seen += 1
                try:
                    obj = json.loads(_decode_line(line))
                except ValueError:
                    bad += 1
                    continue
                records.append(obj if isinstance(obj, dict) else {"value": obj})
                if len(records) >= 20_000:
                    yield _records_frame(records)
                    records = []
        if records:
            yield _records_frame(records)
        if bad:
            notes.append(f"{bad} malformed JSON line(s) skipped")

    return TableScan(path, Path(path).name, method, batches, notes)


def _decode_line(line: bytes) -> str:
    try:
        return line.decode("utf-8")
    except UnicodeDecodeError:
        return line.decode("gb18030", errors="replace")


def _records_frame(records: list[object]) -> pl.DataFrame:
    df = pl.json_normalize(records, separator=".", infer_schema_length=None, strict=False)  # type: ignore[arg-type]
    return flatten(df)


def _json_table(path: str, *, full: bool, sample_rows: int) -> TableScan:
    size = os.path.getsize(path)
    if size > MAX_JSON_DOCUMENT_BYTES:
        raise ValueError(
            f"JSON document of {size >> 20} MiB is too large to parse whole; convert it to JSON Lines"
        )
    with open(path, "rb") as fh:
        raw = fh.read()
    doc = json.loads(_decode_line(raw.lstrip(codecs.BOM_UTF8)))
    records, where = _find_records(doc)
    if not full and len(records) > sample_rows:
        rng = random.Random(0)
        records = rng.sample(records, sample_rows)
    method = "full" if full else f"{min(len(records), sample_rows)} records"
    table = Path(path).name + (f":{where}" if where else "")

    def batches() -> Iterator[pl.DataFrame]:
        for i in range(0, len(records), 20_000):
            yield _records_frame(records[i : i + 20_000])

    return TableScan(path, table, method, batches)


def _find_records(doc: object, where: str = "") -> tuple[list[object], str]:
    """The list of records in a JSON document: the top-level array, or the largest array of objects inside."""
    if isinstance(doc, list):
        return [d if isinstance(d, dict) else {"value": d} for d in doc], where
    if isinstance(doc, dict):
        best: tuple[list[object], str] | None = None
        for k, v in doc.items():
            records = isinstance(v, list) and v and all(isinstance(x, dict) for x in v[:100])
            if records and (best is None or len(v) > len(best[0])):
                best = (v, f"{where}.{k}" if where else k)
        if best is not None:
            return best
        return [doc], where
    return [{"value": doc}], where


# Excel
def _excel_tables(path: str, *, full: bool, sample_rows: int) -> Iterator[TableScan]:
    import openpyxl

    wb = openpyxl.load_workbook(path, read_only=True, data_only=True)
    names = list(wb.sheetnames)
    wb.close()
    for sheet in names:
        yield TableScan(
            path,
            f"{Path(path).name}:{sheet}",
            "full" if full else f"first {sample_rows} rows",
            _excel_batches(path, sheet, None if full else sample_rows),
        )


def _excel_batches(path: str, sheet: str, limit: int | None) -> Callable[[], Iterator[pl.DataFrame]]:
    def batches() -> Iterator[pl.DataFrame]:
        import openpyxl

        wb = openpyxl.load_workbook(path, read_only=True, data_only=True)
        try:
            ws = wb[sheet]
            header: list[str] | None = None
            rows: list[tuple[object, ...]] = []
            seen = 0
            for row in ws.iter_rows(values_only=True):
                if header is None:
                    if not any(v is not None and str(v).strip() for v in row):
                        continue
                    header = _unique_names([str(v).strip() if v is not None else "" for v in row])
                    continue
                if limit is not None and seen >= limit:
                    break
                seen += 1
                rows.append(row)
                if len(rows) >= 20_000:
                    yield _rows_frame(header, rows)
                    rows = []
            if header is not None and rows:
                yield _rows_frame(header, rows)
        finally:
            wb.close()

    return batches


def _unique_names(names: list[str]) -> list[str]:
    out: list[str] = []
    seen: set[str] = set()
    for i, n in enumerate(names):
        n = n or f"column_{i + 1}"
        base, k = n, 2
        while n in seen:
            n, k = f"{base}_{k}", k + 1
        seen.add(n)
        out.append(n)
    return out


def _rows_frame(header: list[str], rows: list[tuple[object, ...]]) -> pl.DataFrame:
    """Rows of Python values to a frame; every cell becomes text (leading zeros and long digit runs
    survive; Excel stores IDs as text or as floats that must not turn into 1.1e17)."""
    width = len(header)
    cols: list[list[str | None]] = [[] for _ in range(width)]
    for row in rows:
        for i in range(width):
            v = row[i] if i < len(row) else None
            cols[i].append(None if v is None else _cell_text(v))
    return pl.DataFrame({h: pl.Series(h, c, dtype=pl.String) for h, c in zip(header, cols, strict=True)})


def _cell_text(v: object) -> str:
    if isinstance(v, float) and v.is_integer() and abs(v) < 1e19:
        return str(int(v))
    if isinstance(v, bytes | bytearray | memoryview):
        return ""
    return str(v)
