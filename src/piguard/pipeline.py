"""Scan files and directories: sources -> detection -> findings, using both cores across files.

``scan_paths`` yields events in a stable order (the order files are listed), so reports are reproducible
whatever the parallelism. Large files are streamed chunk by chunk in this process so memory stays bounded;
small files go to a process pool.
"""

from __future__ import annotations

import multiprocessing
import os
from collections.abc import Iterator
from concurrent.futures import Future, ProcessPoolExecutor
from dataclasses import dataclass, field

from piguard.detect import DEFAULT_MIN_CONFIDENCE, Registry, default_registry, findings_from_hits
from piguard.sources.files import Skip, TextFile, UnreadableInput, file_size, iter_paths, read_chunks

# Files at least this big are streamed in the main process (bounded memory); smaller ones use the pool.
STREAM_THRESHOLD = 32 * 1024 * 1024
# Below this total, starting worker processes costs more than it saves.
POOL_MIN_TOTAL = 4 * 1024 * 1024


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
    findings: list[dict[str, object]] = field(default_factory=list)
    done: bool = True
    encoding: str = ""
    bytes: int = 0
    skip: Skip | None = None
    note: str | None = None


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
    try:
        for chunk in read_chunks(path, info):
            hits = reg.find(chunk.text, ents)
            found = findings_from_hits(
                chunk.text,
                hits,
                entities=ents,
                min_confidence=opts.min_confidence,
                include_non_personal=opts.include_non_personal,
                base_offset=chunk.offset,
                base_line=chunk.line,
            )
            rows: list[dict[str, object]] = []
            for f in found:
                row: dict[str, object] = {
                    "path": path,
                    "line": f.line,
                    "start": f.start,
                    "end": f.end,
                    "entity": f.entity,
                    "confidence": f.confidence,
                    "sensitive": f.sensitive,
                    "masked": f.masked,
                    "detector": f.detector,
                }
                if opts.with_values:
                    row["value"] = chunk.text[f.start - chunk.offset : f.end - chunk.offset]
                rows.append(row)
            yield FileEvent(path, rows, done=False, encoding=info.encoding)
    except UnreadableInput as exc:
        yield FileEvent(path, [], done=True, encoding=info.encoding, skip=Skip(path, str(exc)))
        return
    except MemoryError:
        yield FileEvent(path, [], done=True, skip=Skip(path, "out of memory while scanning"))
        return
    note = "invalid byte sequences replaced with U+FFFD" if info.replaced_bytes else None
    yield FileEvent(path, [], done=True, encoding=info.encoding, bytes=file_size(path), note=note)


def scan_file(path: str, opts: ScanOptions) -> list[FileEvent]:
    """Scan one file completely and merge its events (used by pool workers)."""
    events = list(_scan_chunks(path, opts))
    merged = FileEvent(path)
    for ev in events:
        merged.findings.extend(ev.findings)
        merged.encoding = ev.encoding or merged.encoding
        merged.skip, merged.note, merged.bytes = ev.skip or merged.skip, ev.note or merged.note, ev.bytes
    return [merged]


def _worker_init() -> None:
    # One polars thread per worker process: the pool already uses every core.
    os.environ.setdefault("POLARS_MAX_THREADS", "1")


def scan_paths(paths: list[str], opts: ScanOptions | None = None) -> Iterator[FileEvent | Skip]:
    """Yield ``FileEvent`` per file (several for streamed large files) and ``Skip`` for inputs that could
    not be walked. Findings carry masked values only unless ``opts.with_values``."""
    opts = opts or ScanOptions()
    walk_skips: list[Skip] = []
    files = list(iter_paths(paths, walk_skips))
    yield from walk_skips
    sizes = {f: file_size(f) for f in files}
    small = [f for f in files if sizes[f] < STREAM_THRESHOLD]
    workers = opts.workers or (os.cpu_count() or 1)
    use_pool = workers > 1 and len(small) > 1 and sum(sizes[f] for f in small) >= POOL_MIN_TOTAL
    if not use_pool:
        for f in files:
            yield from (_scan_chunks(f, opts) if sizes[f] >= STREAM_THRESHOLD else scan_file(f, opts))
        return
    ctx = multiprocessing.get_context("spawn")  # fork after polars' thread pool starts can deadlock
    with ProcessPoolExecutor(max_workers=workers, mp_context=ctx, initializer=_worker_init) as pool:
        futures: dict[str, Future[list[FileEvent]]] = {f: pool.submit(scan_file, f, opts) for f in small}
        for f in files:
            if f in futures:
                try:
                    yield from futures.pop(f).result()
                except Exception as exc:  # a worker died (e.g. killed); the batch goes on
                    yield FileEvent(f, [], skip=Skip(f, f"worker failed: {type(exc).__name__}"))
            else:
                yield from _scan_chunks(f, opts)
