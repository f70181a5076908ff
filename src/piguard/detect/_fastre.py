"""Regex scanning through Rust's regex engine (via polars), with character offsets.

Python's ``re`` tries an alternation of hundreds of words at every position (a few MB/s on Chinese text);
Rust's engine compiles it to a DFA. polars returns the matched strings in order; since our patterns have no
look-around, the n-th match is the first occurrence of its string at or after the end of the previous one,
which ``str.find`` locates in C.

The detectors run a dozen patterns over the same text (a 4 MB chunk of a file): the text is handed to
polars once and kept for the next pattern.
"""

from __future__ import annotations

from typing import Any

from piguard.detect._lazy import LazyModule

pl = LazyModule("polars")

# The texts last handed to polars (a chunk, and its lines beyond ASCII) with their Series.
_recent: list[tuple[str, Any]] = []


def _series(text: str) -> Any:
    for t, s in _recent:
        if t is text:
            return s
    s = pl.Series([text])
    _recent.insert(0, (text, s))
    del _recent[2:]
    return s


def finditer_spans(text: str, pattern: str) -> list[tuple[int, int]]:
    """(start, end) character spans of the leftmost-first, non-overlapping matches of ``pattern``."""
    if not text:
        return []
    found = _series(text).str.extract_all(pattern)[0]
    if found is None or len(found) == 0:
        return []
    spans: list[tuple[int, int]] = []
    append, find = spans.append, text.find  # (a log can hold a match on every line)
    pos = 0
    for m in found.to_list():
        if m:
            i = find(m, pos)
            if i >= 0:  # always, for look-around-free patterns; stay safe
                pos = i + len(m)
                append((i, pos))
    return spans


def contains(text: str, pattern: str) -> bool:
    """Whether ``pattern`` matches anywhere in ``text`` (one pass of the Rust engine)."""
    return bool(text) and bool(_series(text).str.contains(pattern)[0])


_view: list[Any] = [None, None]  # the text last viewed, and its (lines, starts there, starts in the text)


def _lines_beyond_ascii(text: str) -> tuple[str, list[int], list[int]] | None:
    if _view[0] is text:
        return _view[1]
    try:
        from piguard.detect import _cscan  # type: ignore[attr-defined]
    except ImportError:
        return None
    sub, sub_starts, orig_starts = _cscan.nonascii_lines(text)
    view = (sub, memoryview(sub_starts).cast("q").tolist(), memoryview(orig_starts).cast("q").tolist())
    _view[0], _view[1] = text, view
    return view


def cjk_spans(text: str, pattern: str) -> list[tuple[int, int]]:
    """``finditer_spans`` for a pattern that only matches where a character beyond ASCII stands in its
    line (the Chinese rules'): only such lines are scanned, so a log's plain-ASCII lines cost nothing. A
    match that would run from one such line into another not next to it in ``text`` is dropped."""
    view = _lines_beyond_ascii(text)
    if view is None or view[0] is text:
        return finditer_spans(text, pattern)
    sub, sub_starts, orig_starts = view
    if not sub:
        return []
    out: list[tuple[int, int]] = []
    last = len(sub_starts) - 1
    k = 0
    for s, e in finditer_spans(sub, pattern):  # in order: the line index only moves forward
        while k < last and sub_starts[k + 1] <= s:
            k += 1
        j = k
        while j < last and sub_starts[j + 1] < e:
            if orig_starts[j + 1] - orig_starts[j] != sub_starts[j + 1] - sub_starts[j]:
                break  # runs into a line that does not follow this one in the text
            j += 1
        else:
            delta = orig_starts[k] - sub_starts[k]
            out.append((s + delta, e + delta))
    return out


def has_capitalised(text: str) -> bool:
    """Whether ``[A-Z][a-z]`` matches anywhere in ``text``: one C pass when the compiled module is there (a
    regex engine reads a log without such a pair, all INFO and hex ids, at a fifth of the speed)."""
    try:
        from piguard.detect._cscan import has_capitalised as compiled  # type: ignore[attr-defined]
    except ImportError:
        return contains(text, r"[A-Z][a-z]")
    return bool(compiled(text))
