"""CSV and TSV files as tables, read by polars in bounded batches.

UTF-8 files are read in place. Other encodings (sniffed by ``piguard.sources.encoding``: GBK/GB18030,
UTF-16) and files whose lines mix encodings are transcoded line by line to a temporary UTF-8 copy; lines
that fit no encoding are decoded with replacement, and the bad bytes are counted in a note. Every column is
read as text, so leading zeros and long digit runs survive.
"""

from __future__ import annotations

import codecs
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path

import polars as pl

from piguard.sources.datamap import BATCH_ROWS, TableScan
from piguard.sources.encoding import ERRORS, SNIFF_BYTES, NotText, ReplacementCounter, sniff
from piguard.sources.files import open_regular
from piguard.sources.paths import display_path, library_path

BLOCK_BYTES = 4 << 20
# Lines that fail the file's own encoding are tried in these, in turn (files stitched from several exports).
_ALTERNATIVES = ("utf-8", "gb18030")


def _utf8_clean(path: str) -> bool:
    """Whole file valid UTF-8? (C-speed decode, block by block; a split character at a block edge is fine)."""
    dec = codecs.getincrementaldecoder("utf-8")()
    with open_regular(path) as fh:
        while block := fh.read(BLOCK_BYTES):
            try:
                dec.decode(block)
            except UnicodeDecodeError:
                return False
    return True


def _transcode(path: str, codec: str, skip: int) -> tuple[str, int, int]:
    """Write a UTF-8 copy for polars: (temp path, lines that needed another encoding, bad bytes replaced)."""
    fd, tmp = tempfile.mkstemp(prefix="piguard-", suffix=".csv")
    mixed = 0
    counter = ReplacementCounter()
    try:
        with os.fdopen(fd, "wb") as out, open_regular(path) as fh:
            fh.read(skip)
            if codec.startswith(("utf-16", "utf-32")):
                # Wide encodings cannot be cut at b"\n"; an incremental decoder keeps the state across blocks.
                dec = codecs.getincrementaldecoder(codec)(ERRORS)
                with counter:
                    while block := fh.read(BLOCK_BYTES):
                        out.write(dec.decode(block).encode("utf-8"))
                    out.write(dec.decode(b"", final=True).encode("utf-8"))
                return tmp, 0, counter.bytes
            pending = b""
            while True:
                block = fh.read(BLOCK_BYTES)
                data = pending + block
                if block:
                    cut = data.rfind(b"\n") + 1
                    if cut == 0:
                        pending = data
                        continue
                    data, pending = data[:cut], data[cut:]
                try:
                    out.write(data.decode(codec).encode("utf-8"))
                except UnicodeDecodeError:
                    for line in data.splitlines(keepends=True):
                        for enc in (codec, *_ALTERNATIVES):
                            try:
                                out.write(line.decode(enc).encode("utf-8"))
                                mixed += enc != codec
                                break
                            except UnicodeDecodeError:
                                continue
                        else:
                            with counter:
                                out.write(line.decode(codec, ERRORS).encode("utf-8"))
                if not block:
                    break
    except BaseException:
        os.unlink(tmp)
        raise
    return tmp, mixed, counter.bytes


def _read(
    path: str, sep: str, step: int, sample_rows: int, *, quote_char: str | None
) -> Iterator[pl.DataFrame]:
    lf = pl.scan_csv(
        path,
        separator=sep,
        infer_schema=False,
        truncate_ragged_lines=True,
        encoding="utf8-lossy",
        raise_if_empty=False,
        quote_char=quote_char,
    )
    if step > 1:
        lf = lf.gather_every(step).head(sample_rows)
    return lf.collect_batches(chunk_size=BATCH_ROWS)


def csv_table(path: str, sep: str, *, full: bool, sample_rows: int) -> TableScan:
    """One table for a CSV or TSV file (a reader error surfaces when its batches are read)."""
    with open_regular(path) as fh:
        head = fh.read(SNIFF_BYTES)
        size = os.fstat(fh.fileno()).st_size
    try:
        found = sniff(head)
    except NotText as exc:
        raise ValueError(str(exc)) from None
    notes: list[str] = [found.note] if found.note else []
    lines_in_head = max(1, head.count(b"\n"))
    est_rows = max(1, size * lines_in_head // max(1, len(head)))
    step = 1 if full or est_rows <= sample_rows else max(1, est_rows // sample_rows)
    method = "full" if full else ("all rows" if step == 1 else f"every {step}th row (systematic sample)")

    def batches() -> Iterator[pl.DataFrame]:
        tmp = None
        src = path
        if found.codec != "utf-8" or found.skip or not _utf8_clean(path):
            tmp, mixed, bad = _transcode(path, found.codec, found.skip)
            src = tmp
            if mixed:
                notes.append(f"{mixed} line(s) not in {found.codec} were decoded as UTF-8 or GB18030")
            if bad:
                notes.append(f"{bad} invalid byte(s) replaced with U+FFFD")
            if found.codec != "utf-8":
                notes.append(f"decoded as {found.codec}")
        try:
            with library_path(src) as readable:
                yielded = 0
                try:
                    for batch in _read(readable, sep, step, sample_rows, quote_char='"'):
                        yielded += 1
                        yield batch
                except pl.exceptions.ComputeError:
                    if yielded:
                        raise
                    # Quotes that never close (a stray '"' in a free-text field) defeat the CSV parser;
                    # read every quote as a plain character instead of losing the table.
                    notes.append("malformed quoting; read with quotes taken literally")
                    yield from _read(readable, sep, step, sample_rows, quote_char=None)
        finally:
            if tmp:
                os.unlink(tmp)

    name = display_path(Path(path).name)
    return TableScan(
        display_path(path),
        name,
        method,
        batches,
        notes,
        expected_rows=min(est_rows, sample_rows) if not full else est_rows,
        identifiers=[name],
    )


__all__ = ["csv_table"]
