"""Text sources: walk paths, sniff encodings, skip binaries, stream decoded text in bounded chunks.

Every problem with an input becomes a ``Skip`` note naming the path; nothing here raises for bad input.

* Only regular files are read: a FIFO, socket or device named on the command line or met in a directory
  is skipped with a note (opening a FIFO would block forever). Files are opened non-blocking and checked
  again after opening, so one swapped for a FIFO in between is refused too.
* ``-`` is standard input (``STDIN``), read once as a stream; gzip is recognised by its magic bytes there.
* ``.gz`` inputs are inflated under ``ReadLimits`` (size and ratio): a decompression bomb ends in a named
  skip after what was read so far, not in a 15-minute scan.
* Encodings are sniffed by ``piguard.sources.encoding``; bytes that are not text in the file's encoding
  are replaced with U+FFFD and counted (``TextFile.bad_bytes``), never a reason to skip the file.
"""

from __future__ import annotations

import codecs
import gzip
import io
import os
import stat
import sys
import zlib
from collections.abc import Generator, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO

from piguard.sources.encoding import ERRORS, SNIFF_BYTES, NotText, ReplacementCounter, sniff
from piguard.sources.limits import ReadLimits
from piguard.sources.paths import display_path

TEXT_SUFFIXES = {
    ".txt", ".log", ".md", ".markdown", ".csv", ".tsv", ".json", ".jsonl", ".ndjson", ".html", ".htm",
    ".xml", ".yaml", ".yml", ".sql", ".ini", ".conf", ".cfg", ".properties", ".rst", ".text", ".out", "",
}  # fmt: skip
BLOCK_BYTES = 4 * 1024 * 1024
# A line longer than this is cut at a safe character so memory stays bounded (a 500 MB single line).
MAX_CHUNK_CHARS = 8 * 1024 * 1024
_SAFE_CUT_SEARCH = 4096
# The path that names standard input.
STDIN = "-"
_GZIP_MAGIC = b"\x1f\x8b"


@dataclass(frozen=True, slots=True)
class Skip:
    """An input that was not (fully) scanned, and why."""

    path: str
    reason: str


@dataclass(frozen=True, slots=True)
class Chunk:
    """Decoded text with its place in the whole decoded file."""

    text: str
    offset: int  # character offset of text[0] in the decoded file
    line: int  # 1-based line number of text[0]


class RawChunk:
    """UTF-8 bytes of a file ending at a line boundary (or the file's end), not yet decoded."""

    __slots__ = ("_counter", "_info", "data")

    def __init__(self, data: memoryview, info: TextFile | None, counter: ReplacementCounter) -> None:
        self.data = data
        self._info, self._counter = info, counter

    def decode(self) -> str:
        """The text, invalid bytes replaced with U+FFFD and counted in the file's ``TextFile``."""
        with self._counter:
            text = str(self.data, "utf-8", ERRORS)
        if self._info is not None and self._counter.bytes:
            self._info.replaced_bytes, self._info.bad_bytes = True, self._counter.bytes
        return text


@dataclass(slots=True)
class TextFile:
    path: str
    encoding: str = "utf-8"
    compressed: bool = False
    size: int = 0
    replaced_bytes: bool = False  # some bytes were not text in ``encoding`` and became U+FFFD
    bad_bytes: int = 0  # how many
    notes: list[str] = field(default_factory=list)  # e.g. a byte-order mark that was not one

    def note(self) -> str | None:
        """One line for the report: what was odd about the bytes, or None."""
        parts = list(self.notes)
        if self.bad_bytes:
            parts.append(f"{self.bad_bytes} invalid byte(s) replaced with U+FFFD")
        return "; ".join(parts) or None


def _kind(mode: int) -> str:
    if stat.S_ISFIFO(mode):
        return "FIFO (named pipe)"
    if stat.S_ISSOCK(mode):
        return "socket"
    if stat.S_ISCHR(mode) or stat.S_ISBLK(mode):
        return "device"
    if stat.S_ISDIR(mode):
        return "directory"
    return "special file"


def iter_paths(paths: list[str], skips: list[Skip]) -> Iterator[str]:
    """Yield regular files under ``paths`` (sorted, depth-first), and ``STDIN`` for ``-``. Symlinks are
    followed; loops, broken links and files that are not regular (FIFOs, sockets, devices) become skip
    notes."""
    seen_dirs: set[tuple[int, int]] = set()
    for raw in paths:
        if raw == STDIN:
            yield STDIN
            continue
        p = Path(raw)
        if p.is_symlink() and not p.exists():
            skips.append(Skip(display_path(raw), "broken symbolic link"))
            continue
        try:
            st = p.stat()
        except FileNotFoundError:
            skips.append(Skip(display_path(raw), "no such file or directory"))
            continue
        except OSError as exc:
            skips.append(Skip(display_path(raw), f"cannot stat: {exc.strerror or exc}"))
            continue
        if stat.S_ISDIR(st.st_mode):
            yield from _walk(p, seen_dirs, skips)
        elif stat.S_ISREG(st.st_mode):
            yield str(p)
        else:
            skips.append(Skip(display_path(raw), f"not a regular file but a {_kind(st.st_mode)}; not read"))


def _walk(root: Path, seen: set[tuple[int, int]], skips: list[Skip]) -> Iterator[str]:
    try:
        st = root.stat()
    except OSError as exc:
        skips.append(Skip(display_path(str(root)), f"cannot stat: {exc.strerror or exc}"))
        return
    key = (st.st_dev, st.st_ino)
    if key in seen:
        skips.append(
            Skip(display_path(str(root)), "directory loop (already visited through a symbolic link)")
        )
        return
    seen.add(key)
    try:
        entries = sorted(os.scandir(root), key=lambda e: e.name)
    except OSError as exc:
        skips.append(Skip(display_path(str(root)), f"cannot list directory: {exc.strerror or exc}"))
        return
    for entry in entries:
        path = Path(entry.path)
        if entry.is_symlink() and not path.exists():
            skips.append(Skip(display_path(entry.path), "broken symbolic link"))
            continue
        try:
            if entry.is_dir():
                yield from _walk(path, seen, skips)
            elif entry.is_file():
                yield entry.path
            else:
                kind = _kind(entry.stat().st_mode)
                skips.append(Skip(display_path(entry.path), f"not a regular file but a {kind}; not read"))
        except OSError as exc:
            skips.append(Skip(display_path(entry.path), f"cannot stat: {exc.strerror or exc}"))


class UnreadableInput(Exception):
    """Raised by ``open_text`` with a message fit for the user (the path is added by the caller)."""


def open_regular(path: str) -> BinaryIO:
    """Open ``path`` for reading only if it is a regular file. Opened non-blocking, so a FIFO put in its
    place after the walk cannot hang the scan, and checked with ``fstat`` on the open descriptor."""
    flags = os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_NOCTTY", 0)
    fd = os.open(path, flags)
    try:
        mode = os.fstat(fd).st_mode
        if not stat.S_ISREG(mode):
            raise UnreadableInput(f"not a regular file but a {_kind(mode)}; not read")
        os.set_blocking(fd, True)
        return os.fdopen(fd, "rb")
    except BaseException:
        os.close(fd)
        raise


class BoundedInflate(io.RawIOBase):
    """A gzip stream that stops with ``UnreadableInput`` once it inflates past ``limits`` (size, ratio).

    The ratio is judged against the compressed bytes consumed so far, so a bomb is stopped within the
    first ``RATIO_GRACE_BYTES`` of output, not after the whole file."""

    def __init__(self, raw: BinaryIO, limits: ReadLimits) -> None:
        self._raw = raw
        self._gz = gzip.GzipFile(fileobj=raw, mode="rb")
        self._limits = limits
        self.inflated = 0
        self._stop: str | None = None

    def readable(self) -> bool:
        return True

    def readinto(self, buf: memoryview) -> int:  # type: ignore[override]
        # The read that crosses a bound is still handed over (it is scanned); the next one stops.
        if self._stop is not None:
            raise UnreadableInput(self._stop)
        n = self._gz.readinto(buf)
        self.inflated += n
        self._stop = self._limits.check_inflation(self.inflated, self._compressed())
        return n

    def _compressed(self) -> int:
        try:
            return self._raw.tell()
        except (OSError, ValueError):  # a pipe: count the inflated bytes only against the size bound
            return self.inflated

    def close(self) -> None:
        try:
            self._gz.close()
        finally:
            self._raw.close()
            super().close()


def _open_binary(path: str, limits: ReadLimits | None = None) -> tuple[BinaryIO, bool]:
    """The caller closes the returned file."""
    limits = limits or ReadLimits.from_env()
    if path == STDIN:
        raw: BinaryIO = io.BufferedReader(_StdinRaw())
        if raw.peek(2)[:2] == _GZIP_MAGIC:
            return io.BufferedReader(BoundedInflate(raw, limits), BLOCK_BYTES), True
        return raw, False
    raw = open_regular(path)
    if path.endswith(".gz"):
        return io.BufferedReader(BoundedInflate(raw, limits), BLOCK_BYTES), True
    return raw, False


class _StdinRaw(io.RawIOBase):
    """Standard input's bytes, left open when the reader is closed (it is not ours to close)."""

    def readable(self) -> bool:
        return True

    def readinto(self, buf: memoryview) -> int:  # type: ignore[override]
        stream = getattr(sys.stdin, "buffer", None)
        if stream is None:  # stdin closed or replaced by a text-only object
            return 0
        data = stream.read1(len(buf)) if hasattr(stream, "read1") else stream.read(len(buf))
        buf[: len(data)] = data
        return len(data)


def _sniff(head: bytes) -> tuple[str, int]:
    """Return (codec, bytes at the start to skip). Kept for callers of the old API."""
    try:
        found = sniff(head)
    except NotText as exc:
        raise UnreadableInput(str(exc)) from None
    return found.codec, found.skip


def is_probably_text(path: str) -> bool:
    name = path[:-3] if path.endswith(".gz") else path
    return Path(name).suffix.lower() in TEXT_SUFFIXES


def read_chunks(
    path: str, info: TextFile | None = None, limits: ReadLimits | None = None, *, raw: bool = False
) -> Iterator[Chunk | RawChunk]:
    """Stream ``path`` as decoded text chunks ending at line boundaries. Raises ``UnreadableInput``
    before the first chunk when the file is binary or cannot be opened; errors in mid-stream (a truncated
    gzip, a decompression bomb) raise ``UnreadableInput`` too, after the chunks already read.

    With ``raw``, a UTF-8 file comes as ``RawChunk``s instead: its bytes, cut where the text chunks would
    be cut, for a consumer that decodes them itself (``RawChunk.decode`` when they are not valid UTF-8)
    and keeps count of offsets and lines (the ``Chunk``s of such a stream, after a line too long for one
    chunk, carry no offsets of their own)."""
    try:
        fh, compressed = _open_binary(path, limits)
    except OSError as exc:
        raise UnreadableInput(f"cannot open: {exc.strerror or exc}") from None
    with fh:
        try:
            head = fh.read(SNIFF_BYTES)
        except (OSError, EOFError, zlib.error) as exc:
            raise UnreadableInput(f"cannot read: {exc}") from None
        try:
            found = sniff(head)
        except NotText as exc:
            raise UnreadableInput(str(exc)) from None
        if info is not None:
            info.encoding, info.compressed = found.codec, compressed
            if found.note:
                info.notes.append(found.note)
        counter = ReplacementCounter()
        counter.bytes = found.bad
        decoder = codecs.getincrementaldecoder(found.codec)(ERRORS)
        offset, line = 0, 1
        pending = ""
        data = head[found.skip :]
        raw = raw and found.codec == "utf-8"
        if raw and info is not None and counter.bytes:
            info.replaced_bytes, info.bad_bytes = True, counter.bytes
        if raw:
            rest = yield from _raw_chunks(fh, data, info, counter)
            if rest is None:
                return
            raw, data = False, rest  # a line too long for one chunk: decoded from here on, cut as text
        while True:
            final = not data
            with counter:
                text = pending + decoder.decode(data, final=final)
            if info is not None and counter.bytes:
                info.replaced_bytes, info.bad_bytes = True, counter.bytes
            if final:
                if text:
                    yield Chunk(text, offset, line)
                return
            cut = text.rfind("\n") + 1
            if cut == 0 and len(text) > MAX_CHUNK_CHARS:
                cut = _safe_cut(text)
            if cut > 0:
                chunk = text[:cut]
                yield Chunk(chunk, offset, line)
                offset += len(chunk)
                line += chunk.count("\n")
                pending = text[cut:]
            else:
                pending = text
            try:
                data = fh.read(BLOCK_BYTES)
            except (OSError, EOFError, zlib.error) as exc:
                raise UnreadableInput(f"read failed after {offset} characters: {exc}") from None


def _raw_chunks(
    fh: BinaryIO, first: bytes, info: TextFile | None, counter: ReplacementCounter
) -> Generator[RawChunk, None, bytes | None]:
    """``read_chunks``' raw mode: the bytes cut where the text would be cut (a newline byte is never part
    of a longer UTF-8 sequence). Blocks are read into two buffers used in turn, so a chunk costs no fresh
    memory and no copy beyond the partial line carried over; a chunk's bytes stay valid until the chunk
    after the next one is read. Returns None at the end, or the bytes held when a line grows past
    ``MAX_CHUNK_CHARS`` (the caller decodes from there on)."""
    bufs = [bytearray(), bytearray()]
    which = 0
    block: bytes | bytearray = first  # held bytes then the block just read, block[:size]
    size = len(first)
    start = 0  # block[start:size] is what no chunk has taken yet
    got = len(first)
    read = size
    while True:
        if read == 0:  # the end of the file
            if size > start:
                yield RawChunk(memoryview(block)[start:size], info, counter)
            return None
        cut = block.rfind(b"\n", start, size) + 1
        if cut == 0 and size - start > MAX_CHUNK_CHARS:
            return bytes(memoryview(block)[start:size])
        if cut > 0:
            yield RawChunk(memoryview(block)[start:cut], info, counter)
            start = cut
        held = memoryview(block)[start:size]
        buf = bufs[which]
        need = len(held) + BLOCK_BYTES
        if len(buf) < need:
            try:
                buf.extend(bytes(need - len(buf)))
            except BufferError:  # a chunk of this buffer is still in use somewhere: take a new one
                buf = bytearray(need)
            bufs[which] = buf
        which ^= 1
        buf[: len(held)] = held
        try:
            with memoryview(buf) as view:
                read = fh.readinto(view[len(held) : len(held) + BLOCK_BYTES]) or 0
        except (OSError, EOFError, zlib.error) as exc:
            raise UnreadableInput(f"read failed after {got} bytes: {exc}") from None
        got += read
        block, start, size = buf, 0, len(held) + read


def _safe_cut(text: str) -> int:
    """Where to cut a huge line: just after a character that no structured token contains."""
    tail_start = max(0, len(text) - _SAFE_CUT_SEARCH)
    for i in range(len(text) - 1, tail_start, -1):
        ch = text[i]
        if not (ch.isascii() and (ch.isalnum() or ch in " -./:@_%+")) and not ("０" <= ch <= "９"):
            return i + 1
    return len(text)


def file_size(path: str) -> int:
    """Bytes of a regular file; 0 for anything else (standard input, FIFOs, missing files)."""
    if path == STDIN:
        return 0
    try:
        st = os.stat(path)
    except OSError:
        return 0
    return st.st_size if stat.S_ISREG(st.st_mode) else 0


__all__ = [
    "STDIN", "Chunk", "RawChunk", "Skip", "TextFile", "UnreadableInput", "display_path", "file_size",
    "is_probably_text", "iter_paths", "open_regular", "read_chunks",
]  # fmt: skip
