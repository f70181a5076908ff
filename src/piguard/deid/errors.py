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
