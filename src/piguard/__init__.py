"""piguard: know, govern and prove the personal information you hold."""

from __future__ import annotations

__version__ = "0.1.0"

from piguard.detect import Finding, Registry, scan_text

__all__ = ["Finding", "Registry", "__version__", "scan_text"]
