"""Scan files and directories: sources -> detection -> findings, using both cores across files.

``scan_paths`` yields events in a stable order (the order files are listed), so reports are reproducible
whatever the parallelism. Findings travel as columns (``detect.batch.FindingBatch``: one per chunk of
decoded text), never as an object per finding. Large and compressed files are streamed chunk by chunk in
this process, each chunk's findings handed on before the next chunk is read, so neither the text nor the
findings of a file are ever held whole; smaller files go to a process pool.
"""

from __future__ import annotations

import os
from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from piguard.detect import DEFAULT_MIN_CONFIDENCE, Registry, default_registry
from piguard.detect.batch import FindingBatch, find_batch, find_batch_utf8, structured_only
from piguard.sources.files import (
    RawChunk,
    Skip,
    TextFile,
    UnreadableInput,
    file_size,
    iter_paths,
    read_chunks,
)

if TYPE_CHECKING:
    from collections.abc import Iterable
    from concurrent.futures import Future

# Files at least this big are streamed in the main process (bounded memory); smaller ones use the pool.
STREAM_THRESHOLD = 32 * 1024 * 1024
# Below this total, starting worker processes costs more than it saves.
POOL_MIN_TOTAL = 4 * 1024 * 1024
# Compressed files can hold any amount of text (a 7 MB .gz of 2 GB of lines): always streamed here.
_COMPRESSED = (".gz", ".bz2", ".xz", ".zst", ".lz4", ".zip")


@dataclass(frozen=True)
class ScanOptions:
    entities: frozenset[str] | None = None
    min_confidence: float = DEFAULT_MIN_CONFIDENCE
    include_non_personal: bool = False
    detector_files: tuple[str, ...] = ()
    model_dirs: tuple[str, ...] = ()  # adapted models, in place of the detectors for their entities
    with_values: bool = False  # only when the user explicitly asks for unmasked output
    workers: int = 0  # 0: one per core


@dataclass
class FileEvent:
    """Findings from one file (or one chunk of a large file); ``done`` marks the file's last event."""

    path: str
    batches: list[FindingBatch] = field(default_factory=list)
    done: bool = True
    encoding: str = ""
    bytes: int = 0
    skip: Skip | None = None
    note: str | None = None

    @property
    def count(self) -> int:
        return sum(b.count for b in self.batches)

    @property
    def findings(self) -> list[dict[str, object]]:
        """The findings as JSONL-contract rows (an object each: for tests and small files only)."""
        return [row for b in self.batches for row in b.rows(self.path)]


_registry_cache: dict[tuple[tuple[str, ...], tuple[str, ...]], Registry] = {}


def _registry(opts: ScanOptions) -> Registry:
    if not opts.detector_files and not opts.model_dirs:
        return default_registry()
    key = (opts.detector_files, opts.model_dirs)
    reg = _registry_cache.get(key)
    if reg is None:
        reg = Registry.default()
        for m in opts.model_dirs:
            reg.use_model(m)
        for f in opts.detector_files:
            reg.load_yaml(f)
        _registry_cache[key] = reg
    return reg


def _scan_chunks(path: str, opts: ScanOptions) -> Iterator[FileEvent]:
    reg = _registry(opts)
    info = TextFile(path)
    ents = set(opts.entities) if opts.entities is not None else None
    # Only the compiled structured engine runs: it takes the file's UTF-8 bytes and decodes them itself.
    raw = structured_only(reg, ents)
    offset, line = 0, 1
    try:
        for chunk in read_chunks(path, info, raw=raw):
            if isinstance(chunk, RawChunk):
                found = find_batch_utf8(
                    chunk.data,
                    entities=ents,  # type: ignore[arg-type]  (structured_only: never None)
                    min_confidence=opts.min_confidence,
                    include_non_personal=opts.include_non_personal,
                    base_offset=offset,
                    base_line=line,
                    with_values=opts.with_values,
                )
                if found is not None:
                    batch, nchars, newlines = found
                    offset, line = offset + nchars, line + newlines
                    yield FileEvent(path, [batch] if batch.count else [], done=False, encoding=info.encoding)
                    continue
                text = chunk.decode()  # not valid UTF-8: with its bad bytes replaced, as any other text
            else:
                text = chunk.text
            batch = find_batch(
                text,
                reg,
                entities=ents,
                min_confidence=opts.min_confidence,
                include_non_personal=opts.include_non_personal,
                base_offset=offset if raw else chunk.offset,  # type: ignore[union-attr]
                base_line=line if raw else chunk.line,  # type: ignore[union-attr]
                with_values=opts.with_values,
            )
            if raw:
                offset, line = offset + len(text), line + text.count("\n")
            yield FileEvent(path, [batch] if batch.count else [], done=False, encoding=info.encoding)
    except UnreadableInput as exc:
        yield FileEvent(path, [], done=True, encoding=info.encoding, skip=Skip(path, str(exc)))
        return
    except MemoryError:
        yield FileEvent(path, [], done=True, skip=Skip(path, "out of memory while scanning"))
        return
    note = "invalid byte sequences replaced with U+FFFD" if info.replaced_bytes else None
    yield FileEvent(path, [], done=True, encoding=info.encoding, bytes=file_size(path), note=note)


def scan_file(path: str, opts: ScanOptions) -> list[FileEvent]:
    """Scan one file completely and merge its events (used by pool workers, for files under
    ``STREAM_THRESHOLD`` and not compressed, so what is merged stays small)."""
    events = list(_scan_chunks(path, opts))
    merged = FileEvent(path)
    for ev in events:
        merged.batches.extend(ev.batches)
        merged.encoding = ev.encoding or merged.encoding
        merged.skip, merged.note, merged.bytes = ev.skip or merged.skip, ev.note or merged.note, ev.bytes
    return [merged]


def _worker_init() -> None:
    # One polars thread per worker process: the pool already uses every core.
    os.environ.setdefault("POLARS_MAX_THREADS", "1")


def _streamed(path: str, size: int) -> bool:
    return size >= STREAM_THRESHOLD or path.lower().endswith(_COMPRESSED)


def scan_paths(paths: Iterable[str], opts: ScanOptions | None = None) -> Iterator[FileEvent | Skip]:
    """Yield ``FileEvent`` per file (several for streamed large files) and ``Skip`` for inputs that could
    not be walked. Findings carry masked values only unless ``opts.with_values``."""
    opts = opts or ScanOptions()
    walk_skips: list[Skip] = []
    files = list(iter_paths(list(paths), walk_skips))
    yield from walk_skips
    sizes = {f: file_size(f) for f in files}
    small = [f for f in files if not _streamed(f, sizes[f])]
    workers = opts.workers or (os.cpu_count() or 1)
    use_pool = workers > 1 and len(small) > 1 and sum(sizes[f] for f in small) >= POOL_MIN_TOTAL
    if not use_pool:
        for f in files:
            yield from (_scan_chunks(f, opts) if _streamed(f, sizes[f]) else scan_file(f, opts))
        return
    import multiprocessing  # (the pool's modules: imported only by a scan that uses it)
    from concurrent.futures import ProcessPoolExecutor

    ctx = multiprocessing.get_context("spawn")  # fork after polars' thread pool starts can deadlock
    small_set = set(small)
    ahead = workers * 4  # files in flight at once: the results of a whole tree are never held together
    with ProcessPoolExecutor(max_workers=workers, mp_context=ctx, initializer=_worker_init) as pool:
        queue: deque[tuple[str, Future[list[FileEvent]] | None]] = deque()
        in_flight = 0
        for f in files:
            fut = pool.submit(scan_file, f, opts) if f in small_set else None
            queue.append((f, fut))
            in_flight += fut is not None
            while in_flight > ahead:
                in_flight -= queue[0][1] is not None
                yield from _settle(*queue.popleft(), opts)
        while queue:
            yield from _settle(*queue.popleft(), opts)


def _settle(path: str, fut: Future[list[FileEvent]] | None, opts: ScanOptions) -> Iterator[FileEvent]:
    """A file's events: from its worker, or (large or compressed) streamed here while workers go on."""
    if fut is None:
        yield from _scan_chunks(path, opts)
        return
    try:
        yield from fut.result()
    except Exception as exc:  # a worker died (e.g. killed); the batch goes on
        yield FileEvent(path, [], skip=Skip(path, f"worker failed: {type(exc).__name__}"))
