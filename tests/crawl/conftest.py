"""Makes the loopback server helper (siteserver.py, beside this file) importable: the suite runs in importlib
import mode, where sibling modules of a test file are not on sys.path."""

from __future__ import annotations

import sys
from pathlib import Path

_HERE = str(Path(__file__).resolve().parent)
if _HERE not in sys.path:
    sys.path.insert(0, _HERE)
