"""JSON Lines and JSON documents as tables: nested objects become dotted columns.

JSON Lines is parsed line by line (one bad line must not lose the file, and records may differ in shape);
a JSON document is parsed whole, so it is bounded in size (``MAX_JSON_DOCUMENT_BYTES``), and its records
are the top-level array or the largest array of objects inside.
"""

from __future__ import annotations

import codecs
import json
import os
import random
from collections.abc import Iterator
from pathlib import Path

import polars as pl

from piguard.sources.datamap import TableScan
from piguard.sources.files import open_regular
from piguard.sources.paths import display_path

# A JSON document (not JSON Lines) is parsed whole; beyond this size it is skipped with a hint.
MAX_JSON_DOCUMENT_BYTES = 512 * 1024 * 1024
RECORDS_PER_BATCH = 20_000


def flatten(df: pl.DataFrame) -> pl.DataFrame:
    """Nested objects become dotted columns (``customer.contact.phone``); lists of objects become JSON text
    so their values are still scanned as free text."""
    while True:
        schema = df.schema
        structs = [c for c, t in schema.items() if isinstance(t, pl.Struct)]
        if not structs:
            break
        for c in structs:
            fields = [f.name for f in schema[c].fields]  # type: ignore[attr-defined]
            if not fields:
                df = df.drop(c)
                continue
            df = df.with_columns(pl.col(c).struct.rename_fields([f"{c}.{f}" for f in fields])).unnest(c)
    schema = df.schema
    nested_lists = [
        c for c, t in schema.items() if isinstance(t, pl.List) and isinstance(t.inner, pl.Struct | pl.List)
    ]
    if nested_lists:
        df = df.with_columns(
            pl.col(c)
            .list.eval(
                pl.element().struct.json_encode()
                if isinstance(schema[c].inner, pl.Struct)  # type: ignore[attr-defined]
                else pl.element().cast(pl.String, strict=False)
            )
            .list.join(" ")
            for c in nested_lists
        )
    return df


def _decode_line(line: bytes) -> str:
    try:
        return line.decode("utf-8")
    except UnicodeDecodeError:
        return line.decode("gb18030", errors="replace")


def _loads(raw: bytes) -> object:
    try:
        return json.loads(_decode_line(raw))
    except RecursionError:  # the C decoder stops cleanly at Python's recursion limit
        raise ValueError("JSON nested too deeply to be a table") from None


def _records_frame(records: list[object]) -> pl.DataFrame:
    df = pl.json_normalize(records, separator=".", infer_schema_length=None, strict=False)  # type: ignore[arg-type]
    return flatten(df)


def jsonl_table(path: str, *, full: bool, sample_rows: int) -> TableScan:
    limit = None if full else sample_rows
    method = "full" if full else f"first {sample_rows} records"
    notes: list[str] = []

    def batches() -> Iterator[pl.DataFrame]:
        # Parsing is reading, not classifying: the cells are classified vectorized afterwards.
        records: list[object] = []
        bad = 0
        seen = 0
        with open_regular(path) as fh:
            for raw in fh:
                if limit is not None and seen >= limit:
                    break
                line = raw.strip()
                if not line:
                    continue
                seen += 1
                try:
                    obj = _loads(line)
                except ValueError:
                    bad += 1
                    continue
                records.append(obj if isinstance(obj, dict) else {"value": obj})
                if len(records) >= RECORDS_PER_BATCH:
                    yield _records_frame(records)
                    records = []
        if records:
            yield _records_frame(records)
        if bad:
            notes.append(f"{bad} malformed JSON line(s) skipped")

    name = display_path(Path(path).name)
    return TableScan(
        display_path(path), name, method, batches, notes, expected_rows=limit, identifiers=[name]
    )


def json_table(path: str, *, full: bool, sample_rows: int) -> TableScan:
    with open_regular(path) as fh:
        size = os.fstat(fh.fileno()).st_size
        if size > MAX_JSON_DOCUMENT_BYTES:
            raise ValueError(
                f"JSON document of {size >> 20} MiB is too large to parse whole; convert it to JSON Lines"
            )
        raw = fh.read().lstrip(codecs.BOM_UTF8)
    doc = _loads(raw)
    del raw
    records, where = _find_records(doc)
    if not full and len(records) > sample_rows:
        rng = random.Random(0)
        records = rng.sample(records, sample_rows)
    method = "full" if full else f"{min(len(records), sample_rows)} records"
    name = display_path(Path(path).name)
    table = name + (f":{where}" if where else "")

    def batches() -> Iterator[pl.DataFrame]:
        for i in range(0, len(records), RECORDS_PER_BATCH):
            yield _records_frame(records[i : i + RECORDS_PER_BATCH])

    return TableScan(
        display_path(path), table, method, batches, expected_rows=len(records), identifiers=[name, where]
    )


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


__all__ = ["MAX_JSON_DOCUMENT_BYTES", "flatten", "json_table", "jsonl_table"]
