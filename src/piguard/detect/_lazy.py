"""Modules imported on first use, so that ``piguard --help`` and a structured-only scan never pay for polars,
pyarrow or numpy (a few hundred milliseconds of startup) when the compiled engine does the work.

    pl = LazyModule("polars")   # nothing imported yet
    pl.col("x")                 # imports polars here, once
"""

from __future__ import annotations

import importlib
from typing import Any


class LazyModule:
    """Stands in for a module; the first attribute read imports it (later reads are a dict lookup)."""

    def __init__(self, name: str) -> None:
        self._name = name

    def __getattr__(self, attr: str) -> Any:
        return getattr(importlib.import_module(self._name), attr)

    def __repr__(self) -> str:
        return f"<lazy module {self._name!r}>"


def load_yaml(text: str) -> Any:
    """``yaml.safe_load`` through libyaml when PyYAML was built with it (ten times faster on the packaged
    data files, which every scan reads at startup); the same safe constructor either way."""
    import yaml

    return yaml.load(text, Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader))
