"""piguard: know, govern and prove the personal information you hold."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

if TYPE_CHECKING:
    from piguard.detect import Finding, Registry, scan_text

__all__ = ["Finding", "Registry", "__version__", "scan_text"]


def __getattr__(name: str) -> Any:
    # The detection API is imported on first use, so that `import piguard` (every CLI verb, every worker
    # process) does not load the detectors' data and libraries it may never need.
    if name in ("Finding", "Registry", "scan_text"):
        from piguard import detect

        return getattr(detect, name)
    raise AttributeError(f"module 'piguard' has no attribute {name!r}")
