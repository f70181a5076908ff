"""Errors raised by piguard.deid. Messages name the input and column and never carry a raw value."""

from __future__ import annotations


class DeidError(ValueError):
    """A user-facing problem with a de-identification input (table, hierarchy, config, key, model)."""


def mask_cell(value: object) -> str:
    """A masked rendering of a cell for error messages: first character kept, rest starred (max 8)."""
    s = "" if value is None else str(value)
    if len(s) <= 1:
        return "*" if s else "''"
    return s[0] + "*" * min(len(s) - 1, 7)


def safe_message(text: str, limit: int = 200) -> str:
    """A third-party error message (a parser's, a driver's) fit to print: quoted spans, where parsers
    put the offending data, are cut, and whatever personal information the detectors still find is
    masked."""
    import re

    from piguard import scan_text

    first = text.splitlines()[0] if text else ""
    first = re.sub(r"`[^`]*`?|'[^']*'|\"[^\"]*\"", "<value>", first)[:limit]
    out = first
    for f in sorted(scan_text(first), key=lambda f: -f.start):
        out = out[: f.start] + f.masked + out[f.end :]
    return out
