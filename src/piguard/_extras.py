"""Optional dependencies: a clear message naming the extra to install, instead of an import error."""

from __future__ import annotations

from importlib import util


class MissingExtra(RuntimeError):
    """A feature whose optional dependency is not installed."""


def require(module: str, extra: str, feature: str) -> None:
    """Raise :class:`MissingExtra` unless ``module`` can be imported."""
    if util.find_spec(module) is None:
        raise MissingExtra(f"{feature} needs {module} (not installed): pip install 'piguard[{extra}]'")
