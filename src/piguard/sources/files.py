"""Text sources: walk paths, sniff encodings, skip binaries, stream decoded text in bounded chunks.

Every problem with an input becomes a ``Skip`` note naming the path; nothing here raises for bad input.
"""

from __future__ import annotations

import codecs
import gzip
import os
import stat
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

import charset_normalizer

TEXT_SUFFIXES = {
    ".txt", ".log", ".md", ".markdown", ".csv", ".tsv", ".json", ".jsonl", ".ndjson", ".html", ".htm",
    ".xml", ".yaml", ".yml", ".sql", ".ini", ".conf", ".cfg", ".properties", ".rst", ".text", ".out", "",
}  # fmt: skip
SNIFF_BYTES = 64 * 1024
BLOCK_BYTES = 4 * 1024 * 1024
# A line longer than this is cut at a safe character so memory stays bounded (a 500 MB single line).
MAX_CHUNK_CHARS = 8 * 1024 * 1024
_SAFE_CUT_SEARCH = 4096


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


@dataclass(slots=True)
class TextFile:
    path: str
    encoding: str = "utf-8"
    compressed: bool = False
    size: int = 0
    replaced_bytes: bool = False


def iter_paths(paths: list[str], skips: list[Skip]) -> Iterator[str]:
    """Yield regular files under ``paths`` (sorted, depth-first). Symlinks are followed, loops and broken
    links become skip notes."""
    seen_dirs: set[tuple[int, int]] = set()
    for raw in paths:
        p = Path(raw)
        if p.is_symlink() and not p.exists():
            skips.append(Skip(raw, "broken symbolic link"))
            continue
        if not p.exists():
            skips.append(Skip(raw, "no such file or directory"))
            continue
        if p.is_dir():
            yield from _walk(p, seen_dirs, skips)
        else:
            yield str(p)


def _walk(root: Path, seen: set[tuple[int, int]], skips: list[Skip]) -> Iterator[str]:
    try:
        st = root.stat()
    except OSError as exc:
        skips.append(Skip(str(root), f"cannot stat: {exc.strerror or exc}"))
        return
    key = (st.st_dev, st.st_ino)
    if key in seen:
        skips.append(Skip(str(root), "directory loop (already visited through a symbolic link)"))
        return
    seen.add(key)
    try:
        entries = sorted(os.scandir(root), key=lambda e: e.name)
    except OSError as exc:
        skips.append(Skip(str(root), f"cannot list directory: {exc.strerror or exc}"))
        return
    for entry in entries:
        path = Path(entry.path)
        if entry.is_symlink() and not path.exists():
            skips.append(Skip(entry.path, "broken symbolic link"))
            continue
        try:
            if entry.is_dir():
                yield from _walk(path, seen, skips)
            elif entry.is_file():
                yield entry.path
            else:
                skips.append(Skip(entry.path, "not a regular file"))
        except OSError as exc:
            skips.append(Skip(entry.path, f"cannot stat: {exc.strerror or exc}"))


class UnreadableInput(Exception):
    """Raised by ``open_text`` with a message fit for the user (the path is added by the caller)."""


def _open_binary(path: str) -> tuple[BinaryIO, bool]:
    """The caller closes the returned file."""
    if path.endswith(".gz"):
        return gzip.GzipFile(path, "rb"), True
    return Path(path).open("rb"), False


def _sniff(head: bytes) -> tuple[str, int]:
    """Return (codec, bytes of BOM to skip)."""
    for bom, codec in (
        (codecs.BOM_UTF32_LE, "utf-32-le"),
        (codecs.BOM_UTF32_BE, "utf-32-be"),
        (codecs.BOM_UTF8, "utf-8"),
        (codecs.BOM_UTF16_LE, "utf-16-le"),
        (codecs.BOM_UTF16_BE, "utf-16-be"),
    ):
        if head.startswith(bom):
            return codec, len(bom)
    if b"\x00" in head:
        raise UnreadableInput("binary file (NUL bytes, no Unicode byte-order mark)")
    try:
        head.decode("utf-8")
        return "utf-8", 0
    except UnicodeDecodeError as exc:
        if exc.start >= len(head) - 4:  # a character cut by the sniff window
            return "utf-8", 0
    best = charset_normalizer.from_bytes(head).best()
    if best is None:
        raise UnreadableInput("binary or undecodable file (no text encoding fits)")
    enc = best.encoding.lower()
    # GB2312 and GBK are subsets of GB18030; decode with the superset so rare characters survive.
    if enc in {"gb2312", "gbk", "gb18030", "hz", "cp936"}:
        enc = "gb18030"
    return enc, 0


def is_probably_text(path: str) -> bool:
    name = path[:-3] if path.endswith(".gz") else path
    return Path(name).suffix.lower() in TEXT_SUFFIXES


def read_chunks(path: str, info: TextFile | None = None) -> Iterator[Chunk]:
    """Stream ``path`` as decoded text chunks ending at line boundaries. Raises ``UnreadableInput``
    before the first chunk when the file is binary or cannot be opened; errors in mid-stream (a truncated
    gzip) raise ``UnreadableInput`` too, after the chunks already read."""
    try:
        fh, compressed = _open_binary(path)
    except OSError as exc:
        raise UnreadableInput(f"cannot open: {exc.strerror or exc}") from None
    with fh:
        try:
            head = fh.read(SNIFF_BYTES)
        except (OSError, EOFError, zlib.error) as exc:
            raise UnreadableInput(f"cannot read: {exc}") from None
        codec, bom = _sniff(head)
        if info is not None:
            info.encoding, info.compressed = codec, compressed
        decoder = codecs.getincrementaldecoder(codec)(errors="replace")
        offset, line = 0, 1
        pending = ""
        data = head[bom:]
        while True:
            final = not data
            text = pending + decoder.decode(data, final=final)
            if info is not None and "\ufffd" in text:
                info.replaced_bytes = True
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


def _safe_cut(text: str) -> int:
    """Where to cut a huge line: just after a character that no structured token contains."""
    tail_start = max(0, len(text) - _SAFE_CUT_SEARCH)
    for i in range(len(text) - 1, tail_start, -1):
        ch = text[i]
        if not (ch.isascii() and (ch.isalnum() or ch in " -./:@_%+")) and not ("０" <= ch <= "９"):
            return i + 1
    return len(text)


def file_size(path: str) -> int:
    try:
        st = os.stat(path)
    except OSError:
        return 0
    return st.st_size if stat.S_ISREG(st.st_mode) else 0
