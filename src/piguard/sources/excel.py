"""Excel workbooks (.xlsx) as tables: each sheet a table, its first non-empty row the header.

An .xlsx is a zip of XML. Before openpyxl parses anything, every member's declared size and compression
ratio are checked against ``ReadLimits`` (zipfile enforces the declared size while inflating, so a member
cannot inflate past what it declares). Sheets are then read in openpyxl's read-only streaming mode, with
their claimed dimensions dropped (a sheet claiming ``A1:XFD1048576`` would pad every row to 16,384 cells)
and rows and columns bounded by Excel's own limits, so a hostile sheet cannot hold the scan.
"""

from __future__ import annotations

import contextlib
import zipfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import polars as pl

from piguard.sources.datamap import TableScan
from piguard.sources.files import open_regular
from piguard.sources.limits import RATIO_GRACE_BYTES, ReadLimits, human
from piguard.sources.paths import display_path

# Excel's own limits (Excel specifications and limits): beyond them a sheet was not written by Excel.
MAX_ROWS = 1_048_576
MAX_COLUMNS = 16_384
ROWS_PER_BATCH = 20_000


class WorkbookTooLarge(ValueError):
    """A workbook whose members inflate past the limits (the message says which and how to raise them)."""


def check_zip_members(path: str, limits: ReadLimits) -> None:
    """Refuse a zip whose members declare more than ``limits`` allow, before anything is inflated."""
    with open_regular(path) as fh, zipfile.ZipFile(fh) as zf:
        total = 0
        for info in zf.infolist():
            total += info.file_size
            if total > limits.max_decompressed:
                raise WorkbookTooLarge(
                    f"workbook inflates to more than {human(limits.max_decompressed)} "
                    "(possible decompression bomb; raise with --max-decompressed)"
                )
            ratio = info.file_size / max(1, info.compress_size)
            if info.file_size > RATIO_GRACE_BYTES and ratio > limits.max_ratio:
                raise WorkbookTooLarge(
                    f"workbook member {info.filename} inflates {ratio:.0f}:1 to {human(info.file_size)} "
                    "(possible decompression bomb; raise with --max-ratio)"
                )


@contextlib.contextmanager
def _load(path: str) -> Iterator[Any]:
    """The workbook in read-only streaming mode, on a file object, not the name: a FIFO is refused and a
    name that is not UTF-8 needs no encoding. Closes the workbook and the file."""
    import openpyxl

    with open_regular(path) as fh:
        wb = openpyxl.load_workbook(fh, read_only=True, data_only=True)
        try:
            yield wb
        finally:
            wb.close()


def excel_tables(
    path: str, *, full: bool, sample_rows: int, limits: ReadLimits | None = None
) -> Iterator[TableScan]:
    check_zip_members(path, limits or ReadLimits.from_env())
    with _load(path) as wb:
        names = list(wb.sheetnames)
    source, base = display_path(path), display_path(Path(path).name)
    for sheet in names:
        notes: list[str] = []
        yield TableScan(
            source,
            f"{base}:{sheet}",
            "full" if full else f"first {sample_rows} rows",
            _excel_batches(path, sheet, None if full else sample_rows, notes),
            notes,
            expected_rows=None if full else sample_rows,
            identifiers=[base, sheet],
        )


def _excel_batches(
    path: str, sheet: str, limit: int | None, notes: list[str]
) -> Callable[[], Iterator[pl.DataFrame]]:
    def batches() -> Iterator[pl.DataFrame]:
        with _load(path) as wb:
            ws = wb[sheet]
            ws.reset_dimensions()  # stream rows as written, not padded to the sheet's claimed size
            header: list[str] | None = None
            width = 0
            rows: list[tuple[object, ...]] = []
            seen = 0
            # Rows may be numbered far apart (r="1" then r="999999999"); openpyxl fills the gap with empty
            # rows, so the walk is bounded by Excel's row limit, not by the rows present.
            for walked, row in enumerate(ws.iter_rows(values_only=True), start=1):
                if walked > MAX_ROWS:
                    notes.append(f"sheet runs past Excel's {MAX_ROWS} rows; the rows beyond were not read")
                    break
                if not any(v is not None and str(v).strip() for v in row[:MAX_COLUMNS]):
                    continue  # an empty row holds nothing, and is no sample
                if header is None:
                    cells = row[:MAX_COLUMNS]
                    header = _unique_names([str(v).strip() if v is not None else "" for v in cells])
                    width = len(header)
                    continue
                if limit is not None and seen >= limit:
                    break
                seen += 1
                rows.append(row[:width])
                if len(rows) >= ROWS_PER_BATCH:
                    yield _rows_frame(header, rows)
                    rows = []
            if header is not None and rows:
                yield _rows_frame(header, rows)

    return batches


def _unique_names(names: list[str]) -> list[str]:
    """Header cells as distinct column names (``name``, ``name_2``...), linear in the number of columns."""
    out: list[str] = []
    seen: set[str] = set()
    next_k: dict[str, int] = {}
    for i, n in enumerate(names):
        n = n or f"column_{i + 1}"
        base, k = n, next_k.get(n, 2)
        while n in seen:
            n, k = f"{base}_{k}", k + 1
        next_k[base] = k
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


__all__ = ["MAX_COLUMNS", "MAX_ROWS", "WorkbookTooLarge", "check_zip_members", "excel_tables"]
