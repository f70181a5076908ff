"""Fixtures for tests/rights: see rights_env.py (shared with tests/web)."""

from __future__ import annotations

import sys
from pathlib import Path

# With --import-mode=importlib pytest does not put this directory on sys.path.
sys.path.insert(0, str(Path(__file__).parent))

from rights_env import env, ledger_url, pg_schema  # fixtures

__all__ = ["env", "ledger_url", "pg_schema"]
