"""Which tables a scan reads: shell patterns on ``schema.table`` (``--include`` / ``--exclude``)."""

from __future__ import annotations

import fnmatch
from collections.abc import Sequence


def table_selected(qualified: str, include: Sequence[str] | None, exclude: Sequence[str] | None) -> bool:
    """Shell patterns on ``schema.table`` (``crm.*`` a whole schema, ``*.tmp_*`` a name in any schema)."""
    if include and not any(fnmatch.fnmatchcase(qualified, p) for p in include):
        return False
    return not (exclude and any(fnmatch.fnmatchcase(qualified, p) for p in exclude))


def schema_selected(schema: str, include: Sequence[str] | None, exclude: Sequence[str] | None) -> bool:
    """Whether any table of ``schema`` can pass the patterns: schemas nobody asked for are not even listed.
    A pattern whose schema part holds ``*`` may match across the dot, so it keeps every schema."""

    def schema_part(p: str) -> str | None:
        head, dot, _ = p.partition(".")
        return head if dot and "*" not in head else None

    if include:
        parts = [schema_part(p) for p in include]
        if all(h is not None for h in parts) and not any(
            fnmatch.fnmatchcase(schema, h) for h in parts if h is not None
        ):
            return False
    if exclude:
        for p in exclude:
            head = schema_part(p)
            if head is not None and p == f"{head}.*" and fnmatch.fnmatchcase(schema, head):
                return False
    return True


__all__ = ["schema_selected", "table_selected"]
