"""Testing a passport's claims against the bytes: the personal-information inventory (the data map's column
scan), direct identifiers cell by cell, and k-anonymity / l-diversity recomputed on the declared
quasi-identifiers. Issue and verify run the same code, so a passport never claims what its data contradicts.

Every value shown is masked by the detectors' masking; raw values never leave this module.
"""

from __future__ import annotations

import csv
import math
import re
import tempfile
from collections import Counter, defaultdict
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from functools import cache
from pathlib import Path

import numpy as np
import polars as pl

from piguard import taxonomy
from piguard.passport import records

DEFAULT_SAMPLE = 10_000
# Direct identifiers the structured detectors validate mechanically (check digits, number plans): the cell
# check looks for these. Names and addresses are judged per column by the data map.
_SCAN_CHUNK_CHARS = 1 << 20


class ClaimsError(ValueError):
    """The data cannot be read for a claim check; the message names the file (never a value)."""


@cache
def direct_entities() -> frozenset[str]:
    return frozenset(e.id for e in taxonomy.entities().values() if e.identifier == "direct")


@cache
def cell_entities() -> tuple[str, ...]:
    from piguard.detect import STRUCTURED_ENTITIES

    return tuple(e for e in STRUCTURED_ENTITIES if e in direct_entities())


def shown(column: str) -> str:
    """A column name as messages show it: quoted, with anything a detector finds in it masked (a CSV
    without a header row has data values as its "column names")."""
    from piguard.detect import scan_text

    out = column
    for f in sorted(scan_text(column), key=lambda f: -f.start):
        out = out[: f.start] + f.masked + out[f.end :]
    return repr(out)


# --- inventory ------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class InventoryRow:
    file: str
    column: str
    entity: str
    share: float
    sensitive: bool
    identifier: str
    examples_masked: tuple[str, ...] = ()

    def as_dict(self) -> dict[str, object]:
        return {
            "file": self.file, "column": self.column, "entity": self.entity, "share": self.share,
            "sensitive": self.sensitive, "identifier": self.identifier,
        }  # fmt: skip


@dataclass
class Inventory:
    rows: list[InventoryRow]
    rows_scanned: int
    method: str  # full | sampled
    problems: list[str]  # files or tables the scan could not read (no values in them)


def _is_tabular(fmt: str, path: str) -> bool:
    from piguard.sources.tables import is_tabular_file

    return fmt in ("csv", "tsv", "jsonl", "parquet") or is_tabular_file(path)


def inventory(
    files: Iterable[tuple[str, str, str, int]], *, full: bool, sample_rows: int = DEFAULT_SAMPLE
) -> Inventory:
    """The data map of (name, path, format, records) files: one row per column and entity."""
    from piguard.sources.tables import scan_tables

    tax = taxonomy.entities()
    rows: list[InventoryRow] = []
    problems: list[str] = []
    scanned = 0
    for name, path, fmt, n_records in files:
        if not _is_tabular(fmt, path):
            got, n = _text_inventory(name, path)
            rows.extend(got)
            scanned += n
            continue
        with tempfile.TemporaryDirectory(prefix="piguard-sample-") as tmp:
            target = path
            if not full and fmt in records.TEXT_MODES and n_records > sample_rows:
                target = _write_sample(path, fmt, n_records, sample_rows, Path(tmp) / Path(path).name)
            dm = scan_tables(target, full=True, sample_rows=sample_rows)
        problems.extend(f"{name}: {str(s['reason']).replace(target, name)}" for s in dm.skipped)
        scanned += sum(int(t.get("rows_scanned", 0)) for t in dm.tables)  # type: ignore[call-overload]
        for r in dm.rows:
            et = tax.get(str(r["entity"]))
            if et is not None and not et.personal:
                continue
            rows.append(
                InventoryRow(
                    name, str(r["column"]), str(r["entity"]), round(float(r["share"]), 4),  # type: ignore[arg-type]
                    bool(et and et.sensitive), et.identifier if et else "none",
                    tuple(str(x) for x in r.get("examples_masked") or ())[:3],  # type: ignore[attr-defined]
                )
            )  # fmt: skip
    return Inventory(rows, scanned, "full" if full else "sampled", problems)


def _write_sample(path: str, fmt: str, n_records: int, sample_rows: int, out: Path) -> str:
    """An evenly spaced sample of a text table's records (with its header) in a file of the same kind,
    so the data map reads ``sample_rows`` records instead of parsing the whole file to pick them."""
    step = math.ceil(n_records / sample_rows)
    with records._Mapped(path) as buf:
        spans = records.text_spans(buf, fmt, 0, step, sample_rows)
        with open(out, "wb") as fh:
            if spans and records.TEXT_MODES[fmt][1]:
                fh.write(bytes(buf[: spans[0][0]]))  # the header (and its line break)
            for a, b in spans:
                fh.write(bytes(buf[a:b]))
                fh.write(b"\n")
    return str(out)


def _text_inventory(name: str, path: str) -> tuple[list[InventoryRow], int]:
    """A file that is not a table: the entities the text scanner finds, share = lines holding them."""
    from piguard.pipeline import ScanOptions, scan_file

    lines_with: dict[str, set[int]] = defaultdict(set)
    examples: dict[str, list[str]] = defaultdict(list)
    total = 0
    for ev in scan_file(path, ScanOptions(workers=1)):
        if ev.skip is not None:
            return [], 0
        for f in ev.findings:
            ent = str(f["entity"])
            lines_with[ent].add(int(f["line"]))  # type: ignore[call-overload]
            if len(examples[ent]) < 3:
                examples[ent].append(str(f["masked"]))
    with open(path, "rb") as fh:
        total = sum(1 for _ in fh) or 1
    tax = taxonomy.entities()
    out = []
    for ent, lines in sorted(lines_with.items()):
        et = tax.get(ent)
        out.append(
            InventoryRow(name, "", ent, round(len(lines) / total, 4), bool(et and et.sensitive),
                         et.identifier if et else "none", tuple(examples[ent]))
        )  # fmt: skip
    return out, total


# --- direct identifiers, cell by cell ---------------------------------------------------------------------
@dataclass(frozen=True)
class CellHit:
    file: str
    record: int  # 1-based canonical record number
    column: str | None
    entity: str
    masked: str


@dataclass
class CellScan:
    hits: list[CellHit]
    records_scanned: int
    records_total: int


def _record_texts(path: str, fmt: str, n: int, step: int, limit: int) -> Iterable[tuple[int, str]]:
    """(0-based index, decoded text) of records 0, step, 2*step, ... of a file."""
    if fmt in records.TEXT_MODES:
        with records._Mapped(path) as buf:
            for i, (a, b) in enumerate(records.text_spans(buf, fmt, 0, step, limit)):
                yield i * step, bytes(buf[a:b]).decode("utf-8", errors="replace")
        return
    if fmt == "parquet":
        import pyarrow.parquet as pq

        pf = pq.ParquetFile(path)
        index = 0
        for batch in pf.iter_batches(batch_size=65536):
            rows = batch.num_rows
            picks = [i for i in range(rows) if (index + i) % step == 0]
            if picks:
                sub = batch.take(picks).to_pylist()
                for i, row in zip(picks, sub, strict=True):
                    yield index + i, "\t".join("" if v is None else str(v) for v in row.values())
            index += rows
        return
    raise ClaimsError(f"{path}: not a table or text records")


def _field_at(fmt: str, header: list[str] | None, text: str, start: int) -> tuple[str | None, str]:
    """The column a hit at ``start`` of a record lies in, and that field's text: separators before it
    outside quotes (CSV), tabs (TSV, and Parquet records, which are rendered tab-joined)."""
    if header is None or fmt not in ("csv", "tsv", "parquet"):
        return None, ""
    sep = "," if fmt == "csv" else "\t"
    idx, quoted, field_start = 0, False, 0
    for i, ch in enumerate(text[:start]):
        if ch == '"' and fmt == "csv":
            quoted = not quoted
        elif ch == sep and not quoted:
            idx, field_start = idx + 1, i + 1
    end = start
    while end < len(text) and (text[end] != sep or (quoted and fmt == "csv")):
        if text[end] == '"' and fmt == "csv":
            quoted = not quoted
        end += 1
    field = text[field_start:end].strip().strip('"')
    return (header[idx] if idx < len(header) else None), field


_TOKEN = re.compile(r"[0-9A-Za-z]+")


class _TokenColumns:
    """Keyed pseudonyms are random tokens: now and then one is all digits and passes a check digit (a
    16-hex pseudonym is all digits about once in 1,800, and one in ten of those passes Luhn). A hit that
    is the whole cell, in a column whose values are mostly letter-bearing tokens of exactly its length, is
    such a token and is not counted. A column's shape is judged on the first records scanned, and only
    when a hit needs it."""

    KEEP = 2000

    def __init__(self, fmt: str, header: list[str] | None) -> None:
        self.fmt, self.header = fmt, header or []
        self.texts: list[str] = []
        self._lengths: dict[str, dict[int, float]] = {}

    def feed(self, text: str) -> None:
        if len(self.texts) < self.KEEP:
            self.texts.append(text)

    def _profile(self, column: str) -> dict[int, float]:
        if column not in self._lengths:
            idx = self.header.index(column) if column in self.header else -1
            rows = csv.reader(self.texts) if self.fmt == "csv" else (t.split("\t") for t in self.texts)
            values = [r[idx] for r in rows if 0 <= idx < len(r) and r[idx]]
            tokens = Counter(len(v) for v in values if _TOKEN.fullmatch(v) and not v.isdigit())
            self._lengths[column] = {n: c / max(1, len(values)) for n, c in tokens.items()}
        return self._lengths[column]

    def is_token(self, column: str | None, field: str, hit_len: int) -> bool:
        if column is None or len(field) != hit_len or not _TOKEN.fullmatch(field):
            return False
        return self._profile(column).get(len(field), 0.0) >= 0.5


def _header(path: str, fmt: str) -> list[str] | None:
    if fmt in ("csv", "tsv"):
        with open(path, "rb") as fh:
            first = fh.readline().decode("utf-8-sig", errors="replace").rstrip("\r\n")
        return next(csv.reader([first], delimiter="," if fmt == "csv" else "\t"), None)
    if fmt == "parquet":
        import pyarrow.parquet as pq

        return list(pq.ParquetFile(path).schema_arrow.names)
    return None


def scan_cells(name: str, path: str, fmt: str, n_records: int, *, full: bool,
               sample: int = DEFAULT_SAMPLE, max_hits: int = 20) -> CellScan:  # fmt: skip
    """Validated direct identifiers (ID numbers, phones, cards, e-mail...) in the records of one file:
    every record with ``full``, else an evenly spaced sample. Hits carry masked values only."""
    from piguard.detect import scan_text

    if fmt not in ("csv", "tsv", "jsonl", "parquet") or n_records == 0:
        return CellScan([], 0, n_records)
    step = 1 if full or n_records <= sample else math.ceil(n_records / sample)
    limit = n_records if step == 1 else sample
    header = _header(path, fmt)
    tokens = _TokenColumns(fmt, header)
    if full and fmt in records.TEXT_MODES:
        return _scan_cells_contiguous(name, path, fmt, n_records, header, tokens, max_hits)
    hits: list[CellHit] = []
    scanned = 0
    ents = cell_entities()
    # Records are joined into ~1 MB texts so the compiled detector runs once per chunk, not per record.
    batch: list[tuple[int, str]] = []
    size = 0

    def flush() -> None:
        nonlocal batch, size
        if not batch:
            return
        text = "\n".join(t for _, t in batch)
        starts = np.cumsum([0] + [len(t) + 1 for _, t in batch[:-1]])
        for f in scan_text(text, entities=ents):
            k = int(np.searchsorted(starts, f.start, side="right") - 1)
            idx, rec = batch[k]
            if len(hits) < max_hits:
                col, field = _field_at(fmt, header, rec, f.start - int(starts[k]))
                if not tokens.is_token(col, field, f.end - f.start):
                    hits.append(CellHit(name, idx + 1, col, f.entity, f.masked))
        batch, size = [], 0

    for idx, text in _record_texts(path, fmt, n_records, step, limit):
        tokens.feed(text)
        batch.append((idx, text.replace("\n", " ")))
        size += len(text) + 1
        scanned += 1
        if size >= _SCAN_CHUNK_CHARS:
            flush()
            if len(hits) >= max_hits:
                break
    flush()
    return CellScan(hits, scanned, n_records)


def _scan_cells_contiguous(
    name: str, path: str, fmt: str, n_records: int, header: list[str] | None, tokens: _TokenColumns,
    max_hits: int,
) -> CellScan:  # fmt: skip
    """Every record of a text table: the file is scanned as it lies, ~1 MB of whole records at a time, and
    a hit's byte offset finds its record among the record spans (one C pass) by bisection."""
    from piguard.detect import scan_text

    ents = cell_entities()
    hits: list[CellHit] = []
    with records._Mapped(path) as buf:
        spans = records.text_span_array(buf, fmt, n_records)
        n = len(spans)
        starts = spans[:, 0]
        for a, b in spans[: _TokenColumns.KEEP]:
            tokens.feed(bytes(buf[a:b]).decode("utf-8", errors="replace"))
        i = 0
        while i < n and len(hits) < max_hits:
            j = min(n, max(i + 1, int(np.searchsorted(starts, starts[i] + _SCAN_CHUNK_CHARS, side="left"))))
            lo, hi = int(starts[i]), int(spans[j - 1, 1])
            text = bytes(buf[lo:hi]).decode("utf-8", errors="replace")
            for f in scan_text(text, entities=ents):
                at = lo + len(text[: f.start].encode("utf-8"))
                k = int(np.searchsorted(starts, at, side="right") - 1)
                ra, rb = int(spans[k, 0]), int(spans[k, 1])
                rec = bytes(buf[ra:rb]).decode("utf-8", errors="replace")
                col, field = _field_at(
                    fmt, header, rec, len(bytes(buf[ra:at]).decode("utf-8", errors="replace"))
                )
                if not tokens.is_token(col, field, f.end - f.start) and len(hits) < max_hits:
                    hits.append(CellHit(name, k + 1, col, f.entity, f.masked))
            i = j
    return CellScan(hits, n, n)


# --- k-anonymity and l-diversity ---------------------------------------------------------------------------
@dataclass
class ModelCheck:
    k: int | None  # smallest equivalence class (suppressed records excluded)
    classes: int
    suppressed: int
    l_failures: dict[str, int]  # column -> classes that fail the declared l-diversity
    l_measured: dict[str, int]  # column -> smallest number of distinct values in a class


SUPPRESSED = "*"


def read_columns(
    path: str, fmt: str, columns: list[str], query: Callable[[pl.LazyFrame], pl.LazyFrame] | None = None
) -> pl.DataFrame:
    """``columns`` of a table as text, through ``query`` (a lazy plan, so only those columns are built)."""
    try:
        if fmt == "parquet":
            lf = pl.scan_parquet(path)
        elif fmt == "jsonl":
            lf = pl.read_ndjson(path, infer_schema_length=None).lazy()
        elif fmt in ("csv", "tsv"):
            from piguard.deid.tableio import sniff_delimiter

            with open(path, "rb") as fh:
                sample = fh.read(65536).decode("utf-8", errors="replace")
            sep = "\t" if fmt == "tsv" else sniff_delimiter(sample)
            lf = pl.scan_csv(path, separator=sep, infer_schema=False, encoding="utf8-lossy",
                             truncate_ragged_lines=True, raise_if_empty=False)  # fmt: skip
        else:
            raise ClaimsError(f"{path}: k and l are checked on CSV, TSV, JSON Lines and Parquet tables")
        have = lf.collect_schema().names()
        missing = [c for c in columns if c not in have]
        if missing:
            raise ClaimsError(f"{path}: declared column {missing[0]!r} is not in the data")
        lf = lf.select([pl.col(c).cast(pl.String) for c in columns])
        return (query(lf) if query else lf).collect()
    except ClaimsError:
        raise
    except Exception as exc:  # polars' parse errors quote cells: never pass their text on
        raise ClaimsError(f"{path}: cannot read the table ({type(exc).__name__})") from None


def check_models(
    path: str, fmt: str, quasi: list[str], l_models: list[tuple[str, int, str, float]]
) -> ModelCheck:
    """Recompute k and l on the delivered table. Records whose quasi-identifiers are all ``*`` are the
    suppressed ones (as piguard deid and ARX write them) and are left out, as the models leave them out.
    One pass counts the records of every (quasi-identifiers, sensitive values) combination; the rest works
    on those counts. l-diversity is judged by piguard.deid's own model classes."""
    from piguard.deid import LDiversity

    sens = [c for c in dict.fromkeys(c for c, *_ in l_models) if c not in quasi]
    cols = [*quasi, *sens]
    groups = read_columns(path, fmt, cols, lambda lf: lf.fill_null("").group_by(cols).len())
    starred = pl.all_horizontal([pl.col(q) == SUPPRESSED for q in quasi])
    suppressed = int(groups.filter(starred)["len"].sum())
    kept = groups.filter(~starred)
    if kept.height == 0:
        return ModelCheck(None, 0, suppressed, {}, {})
    sizes = kept.group_by(quasi).agg(pl.col("len").sum())["len"]
    fails: dict[str, int] = {}
    measured: dict[str, int] = {}
    for column, l_value, variant, c in l_models:
        # Each class's value counts, largest first; classes with the same number of distinct values are
        # judged together as one histogram matrix (the models look at counts, not at which value is which).
        per_class = (
            kept.group_by([*quasi, column]).agg(pl.col("len").sum())
            .group_by(quasi).agg(pl.col("len").sort(descending=True).alias("counts"))["counts"]
        )  # fmt: skip
        model = LDiversity(column, int(l_value), variant, float(c))
        failing, widths = 0, per_class.list.len()
        for width in widths.unique().to_list():
            rows = per_class.filter(widths == width).to_list()
            failing += int((~model.fulfilled(np.array(rows, dtype=np.int64))).sum())
        fails[f"{column}:{variant}:{l_value}"] = failing
        measured[column] = int(widths.min())  # type: ignore[arg-type]
    return ModelCheck(int(sizes.min()), len(sizes), suppressed, fails, measured)  # type: ignore[arg-type]
