"""Read CSV/TSV (delimiter sniffed, UTF-8 or GB18030) and Parquet as all-text tables; write atomically."""

from __future__ import annotations

import csv
import io
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path

import polars as pl

from piguard.deid.errors import DeidError, safe_message

DELIMITERS = ",;\t|"


@dataclass
class TableFormat:
    kind: str  # csv | parquet | jsonl | json | xlsx (outputs: csv, parquet or jsonl by extension)
    delimiter: str = ","


def sniff_delimiter(sample: str) -> str:
    try:
        return csv.Sniffer().sniff(sample, delimiters=DELIMITERS).delimiter
    except csv.Error:
        first = sample.splitlines()[0] if sample else ""
        counts = {d: first.count(d) for d in DELIMITERS}
        best = max(counts, key=lambda d: counts[d])
        return best if counts[best] else ","


def read_table(path: str | Path) -> tuple[pl.DataFrame, TableFormat]:
    """All columns as strings (hierarchies and operators work on text); nulls for empty cells."""
    p = Path(path)
    if not p.exists():
        raise DeidError(f"{p}: input table not found")
    if not p.is_file():  # a FIFO or device would block or never end
        raise DeidError(f"{p}: not a regular file")
    suffix = p.suffix.lower()
    if suffix in (".parquet", ".pq"):
        try:
            df = pl.read_parquet(p)
        except Exception as exc:  # polars raises several kinds for corrupt files
            raise DeidError(f"{p}: not a readable Parquet file ({type(exc).__name__})") from None
        return df.select(pl.all().cast(pl.String)), TableFormat("parquet")
    if suffix in (".jsonl", ".ndjson", ".json"):
        try:
            df = pl.read_ndjson(p) if suffix != ".json" else pl.read_json(p)
        except Exception as exc:
            raise DeidError(f"{p}: not a readable JSON table ({type(exc).__name__})") from None
        return df.select(pl.all().cast(pl.String)), TableFormat("jsonl" if suffix != ".json" else "json")
    if suffix == ".xlsx":
        return _read_xlsx(p), TableFormat("xlsx")
    raw = p.read_bytes()
    for enc in ("utf-8-sig", "gb18030"):
        try:
            text = raw.decode(enc)
            break
        except UnicodeDecodeError:
            continue
    else:  # pragma: no cover - gb18030 decodes nearly anything
        raise DeidError(f"{p}: cannot decode as UTF-8 or GB18030")
    if not text.strip():
        raise DeidError(f"{p}: empty table")
    delim = "\t" if suffix == ".tsv" else sniff_delimiter(text[:65536])
    try:
        df = pl.read_csv(
            io.BytesIO(text.encode("utf-8")), separator=delim, infer_schema=False, truncate_ragged_lines=False
        )
    except Exception as exc:
        msg = safe_message(str(exc)) if str(exc) else type(exc).__name__
        raise DeidError(f"{p}: malformed table: {msg}") from None
    dup = [c for c in df.columns if c.endswith("_duplicated_0")]
    if dup:
        raise DeidError(f"{p}: duplicate column name '{dup[0].removesuffix('_duplicated_0')}'")
    return df, TableFormat("csv", delim)


def _read_xlsx(p: Path) -> pl.DataFrame:
    """First sheet, first row as header, every cell as text (openpyxl, read-only streaming)."""
    import openpyxl

    try:
        wb = openpyxl.load_workbook(p, read_only=True, data_only=True)
    except Exception as exc:
        raise DeidError(f"{p}: not a readable .xlsx workbook ({type(exc).__name__})") from None
    try:
        rows = wb.worksheets[0].iter_rows(values_only=True)
        header = next(rows, None)
        if not header:
            raise DeidError(f"{p}: empty worksheet")
        names = [str(h) if h is not None else f"column_{i + 1}" for i, h in enumerate(header)]
        if len(set(names)) != len(names):
            raise DeidError(f"{p}: duplicate column names in the header row")
        data: list[list[str | None]] = [[] for _ in names]
        for r in rows:
            for i in range(len(names)):
                v = r[i] if i < len(r) else None
                data[i].append(None if v is None else str(v))
    finally:
        wb.close()
    return pl.DataFrame({n: pl.Series(n, col, dtype=pl.String) for n, col in zip(names, data, strict=True)})


def write_table_atomic(df: pl.DataFrame, path: str | Path, fmt: TableFormat | None = None) -> None:
    """Write next to the target and rename, so a failure never leaves a half-written output."""
    p = Path(path)
    suffix = p.suffix.lower()
    kind = {".parquet": "parquet", ".pq": "parquet", ".jsonl": "jsonl", ".ndjson": "jsonl"}.get(suffix, "csv")
    delim = fmt.delimiter if fmt and fmt.kind == "csv" else ("\t" if p.suffix.lower() == ".tsv" else ",")
    p.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{p.name}.", suffix=".tmp", dir=p.parent)
    os.close(fd)
    try:
        if kind == "parquet":
            df.write_parquet(tmp)
        elif kind == "jsonl":
            df.write_ndjson(tmp)
        else:
            df.write_csv(tmp, separator=delim)
        os.replace(tmp, p)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def write_text_atomic(text: str, path: str | Path) -> None:
    p = Path(path)
    p.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{p.name}.", suffix=".tmp", dir=p.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(text)
        os.replace(tmp, p)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
