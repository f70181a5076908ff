"""Canonical records: what a passport's Merkle tree is built over, per file format (docs/passport.md).

- CSV (``.csv``): records end at LF outside double quotes (RFC 4180: a quoted field may hold line breaks;
  every ``"`` toggles the quoted state, so ``""`` inside quotes toggles twice). The record is its bytes as
  written, without the LF and without one CR before it. The first record is the header and is not a leaf.
- TSV (``.tsv``, ``.tab``): as CSV but without quoting (IANA text/tab-separated-values: fields hold no
  tabs or line breaks); the first record is the header.
- JSON Lines (``.jsonl``, ``.ndjson``): one record per line, bytes as written, no header.
- In these three, empty records (nothing but the terminator) are not records.
- Parquet (``.parquet``): one record per row, in file order. Each cell is the value as Arrow casts it to a
  string (nested values as JSON with sorted keys, binary as its bytes); the record is, for each column in
  schema order, a 4-byte big-endian byte length and the UTF-8 bytes, or ``FF FF FF FF`` for null.
- Any other file: fixed 64 KiB blocks (the last may be shorter); a block is a "record".

The file's SHA-256 (the in-toto subject digest) covers every byte, header and terminators included.
"""

from __future__ import annotations

import hashlib
import json
import mmap
import os
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from piguard.passport import merkle
from piguard.passport.merkle import _merkle

FORMATS = ("csv", "tsv", "jsonl", "parquet", "blocks")
_SUFFIX_FORMAT = {
    ".csv": "csv", ".tsv": "tsv", ".tab": "tsv", ".jsonl": "jsonl", ".ndjson": "jsonl", ".parquet": "parquet",
}  # fmt: skip
TEXT_MODES = {"csv": (1, True), "tsv": (0, True), "jsonl": (0, False)}  # (split mode, has header)
BLOCK_SIZE = 64 * 1024
_DIGEST_CHUNK = 8 * 1024 * 1024


class RecordsError(ValueError):
    """A data file that cannot be read as its format says; the message names the file."""


def file_format(path: str | Path) -> str:
    return _SUFFIX_FORMAT.get(Path(path).suffix.lower(), "blocks")


@dataclass
class FileHashes:
    """What a passport records of one file, plus the leaves (kept for proofs and for naming differences)."""

    name: str
    path: str
    format: str
    size: int
    sha256: str
    records: int
    leaves: bytes


def file_sha256(path: str | Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        while chunk := fh.read(_DIGEST_CHUNK):
            h.update(chunk)  # hashlib releases the GIL on large updates: this thread runs beside the leaves
    return h.hexdigest()


# --- text formats ---------------------------------------------------------------------------------------
def _py_record_ends(buf: bytes | mmap.mmap, start: int, mode: int) -> int:
    """Where the record starting at ``start`` ends (its LF, or the end): the C extension's record_end."""
    end = len(buf)
    if mode == 0:
        nl = buf.find(b"\n", start)
        return end if nl < 0 else nl
    p, quoted = start, False
    while p < end:
        if not quoted:
            nl = buf.find(b"\n", p)
            stop = end if nl < 0 else nl
            q = buf.find(b'"', p, stop)
            if q < 0:
                return stop
            quoted, p = True, q + 1
        else:
            q = buf.find(b'"', p)
            if q < 0:
                return end
            quoted, p = False, q + 1
    return end


def _py_spans(buf: bytes | mmap.mmap, mode: int, skip_header: bool) -> Iterator[tuple[int, int]]:
    """(start, end) of every record after the header, as the C extension splits them."""
    pos, end, need_header = 0, len(buf), skip_header
    while pos < end:
        e = _py_record_ends(buf, pos, mode)
        stop = e - 1 if e > pos and buf[e - 1 : e] == b"\r" else e
        if stop > pos:
            if need_header:
                need_header = False
            else:
                yield pos, stop
        pos = e + 1


def text_leaves(buf: bytes | mmap.mmap, fmt: str, *, compiled: bool = True) -> tuple[bytes, int]:
    """Leaf hashes and record count of a CSV/TSV/JSONL buffer."""
    mode, header = TEXT_MODES[fmt]
    if compiled and _merkle is not None:
        leaves, n, _ = _merkle.leaves(buf, mode, header)
        return leaves, n
    out = bytearray()
    n = 0
    for a, b in _py_spans(buf, mode, header):
        out += merkle.leaf_hash(bytes(buf[a:b]))
        n += 1
    return bytes(out), n


def text_spans(buf: bytes | mmap.mmap, fmt: str, first: int, step: int, limit: int) -> list[tuple[int, int]]:
    """Byte spans of records first, first+step, ... (0-based, after the header), at most ``limit``."""
    mode, header = TEXT_MODES[fmt]
    if _merkle is not None:
        import array

        flat = array.array("q")
        flat.frombytes(_merkle.spans(buf, mode, header, first, step, limit))
        return list(zip(flat[0::2], flat[1::2], strict=True))
    out: list[tuple[int, int]] = []
    for i, span in enumerate(_py_spans(buf, mode, header)):
        if len(out) >= limit:
            break
        if i >= first and (i - first) % step == 0:
            out.append(span)
    return out


def text_span_array(buf: bytes | mmap.mmap, fmt: str, n_records: int) -> np.ndarray:
    """(start, end) byte spans of the first ``n_records`` records after the header, an (n, 2) int64 array."""
    mode, header = TEXT_MODES[fmt]
    if _merkle is not None:
        raw = _merkle.spans(buf, mode, header, 0, 1, n_records)
        return np.frombuffer(raw, dtype=np.int64).reshape(-1, 2)
    return np.array(list(_py_spans(buf, mode, header))[:n_records], dtype=np.int64).reshape(-1, 2)


class _Mapped:
    """A read-only map of a file (an empty file maps to b"")."""

    def __init__(self, path: str) -> None:
        self._fh = open(path, "rb")  # noqa: SIM115 - closed in __exit__
        size = os.fstat(self._fh.fileno()).st_size
        self.buf: bytes | mmap.mmap = (
            b"" if size == 0 else mmap.mmap(self._fh.fileno(), 0, access=mmap.ACCESS_READ)
        )

    def __enter__(self) -> bytes | mmap.mmap:
        return self.buf

    def __exit__(self, *exc: object) -> None:
        if isinstance(self.buf, mmap.mmap):
            self.buf.close()
        self._fh.close()


# --- Parquet --------------------------------------------------------------------------------------------
def _cell_texts(column):  # type: ignore[no-untyped-def]
    """A column as an Arrow large_string (or large_binary) array: the canonical text of each cell."""
    import pyarrow as pa
    import pyarrow.compute as pc

    t = column.type
    if pa.types.is_dictionary(t):
        column = column.dictionary_decode()
        t = column.type
    if pa.types.is_binary(t) or pa.types.is_large_binary(t) or pa.types.is_fixed_size_binary(t):
        return column.cast(pa.large_binary())
    if pa.types.is_nested(t):
        texts = [
            None if v is None else json.dumps(v, ensure_ascii=False, sort_keys=True, default=str)
            for v in column.to_pylist()
        ]
        return pa.array(texts, type=pa.large_string())
    if pa.types.is_large_string(t):
        return column
    return pc.cast(column, pa.large_string())


def _parquet_leaves_py(texts: list, nrows: int) -> bytes:  # type: ignore[type-arg]
    out = bytearray()
    columns = [c.to_pylist() for c in texts]
    for r in range(nrows):
        rec = bytearray()
        for col in columns:
            v = col[r]
            if v is None:
                rec += b"\xff\xff\xff\xff"
            else:
                b = v if isinstance(v, bytes) else v.encode("utf-8")
                rec += len(b).to_bytes(4, "big") + b
        out += merkle.leaf_hash(bytes(rec))
    return bytes(out)


def _batch_leaves(batch, *, compiled: bool = True) -> bytes:  # type: ignore[no-untyped-def]
    texts = [_cell_texts(c) for c in batch.columns]
    if compiled and _merkle is not None:
        cols = []
        for a in texts:
            validity, offsets, data = a.buffers()[:3]
            cols.append((validity, offsets, data if data is not None else b"", a.offset))
        return _merkle.column_leaves(cols, batch.num_rows)  # type: ignore[no-any-return]
    return _parquet_leaves_py(texts, batch.num_rows)


def parquet_record(path: str, index: int) -> bytes:
    """The canonical record of row ``index`` (0-based) of a Parquet file."""
    import pyarrow.parquet as pq

    pf = pq.ParquetFile(path)
    start = 0
    for g in range(pf.num_row_groups):
        rows = pf.metadata.row_group(g).num_rows
        if index < start + rows:
            batch = pf.read_row_group(g).slice(index - start, 1)
            rec = bytearray()
            for col in batch.columns:
                v = _cell_texts(col.combine_chunks()).to_pylist()[0]
                if v is None:
                    rec += b"\xff\xff\xff\xff"
                else:
                    b = v if isinstance(v, bytes) else v.encode("utf-8")
                    rec += len(b).to_bytes(4, "big") + b
            return bytes(rec)
        start += rows
    raise IndexError(index)


def _parquet_leaves(path: str) -> tuple[bytes, int]:
    import pyarrow.parquet as pq

    try:
        pf = pq.ParquetFile(path)
        parts = [_batch_leaves(b) for b in pf.iter_batches(batch_size=65536)]
    except Exception as exc:  # ArrowInvalid, OSError: truncated or not Parquet
        raise RecordsError(f"{path}: not a readable Parquet file ({type(exc).__name__})") from None
    leaves = b"".join(parts)
    return leaves, merkle.count(leaves)


# --- blocks ---------------------------------------------------------------------------------------------
def _block_leaves(path: str) -> tuple[bytes, int]:
    out = bytearray()
    with open(path, "rb") as fh:
        while block := fh.read(BLOCK_SIZE):
            out += merkle.leaf_hash(block)
    return bytes(out), merkle.count(out)


def block_record(path: str, index: int) -> bytes:
    with open(path, "rb") as fh:
        fh.seek(index * BLOCK_SIZE)
        return fh.read(BLOCK_SIZE)


# --- one file -------------------------------------------------------------------------------------------
def hash_file(path: str, name: str, pool: ThreadPoolExecutor) -> FileHashes:
    """SHA-256 of the file and the leaf hash of every canonical record, on two threads."""
    fmt = file_format(path)
    try:
        size = os.path.getsize(path)
        if fmt in TEXT_MODES:
            with _Mapped(path) as buf:
                # One map, read by both threads: hashlib releases the GIL over a buffer, as does the C code.
                digest = pool.submit(lambda: hashlib.sha256(buf).hexdigest())
                leaves, n = text_leaves(buf, fmt)
                sha = digest.result()
        else:
            digest = pool.submit(file_sha256, path)
            leaves, n = _parquet_leaves(path) if fmt == "parquet" else _block_leaves(path)
            sha = digest.result()
    except OSError as exc:
        raise RecordsError(f"{path}: cannot read ({exc.strerror or type(exc).__name__})") from None
    return FileHashes(name, path, fmt, size, sha, n, leaves)


def record_at(path: str, fmt: str, index: int) -> bytes:
    """The canonical record ``index`` (0-based) of a file."""
    if fmt in TEXT_MODES:
        with _Mapped(path) as buf:
            spans = text_spans(buf, fmt, index, 1, 1)
            if not spans:
                raise IndexError(index)
            a, b = spans[0]
            return bytes(buf[a:b])
    if fmt == "parquet":
        return parquet_record(path, index)
    rec = block_record(path, index)
    if not rec:
        raise IndexError(index)
    return rec
