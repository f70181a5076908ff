"""The deid tests share an independent checker module (deid_checker.py) kept beside them."""

from __future__ import annotations

import sys
from pathlib import Path

# With --import-mode=importlib pytest does not put this directory on sys.path.
sys.path.insert(0, str(Path(__file__).parent))
