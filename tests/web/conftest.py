"""Fixtures for tests/web: the rights environment of tests/rights (rights_env.py) behind the FastAPI app."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent.parent / "rights"))

from fastapi.testclient import TestClient
from rights_env import KEY, Env, env, pg_schema  # fixtures

from piguard.web import create_app

__all__ = ["client", "env", "ledger_url", "pg_schema"]


@pytest.fixture(params=["sqlite"])
def ledger_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """The web layer is the same over either ledger (tests/rights runs the service on both): SQLite here,
    PostgreSQL where a test asks: ``@pytest.mark.parametrize("ledger_url", [...], indirect=True)``."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'ledger.db'}"
    request.getfixturevalue("monkeypatch").setenv("PIGUARD_LEDGER_KEY", KEY.hex())  # see tests/rights
    return request.getfixturevalue("pg_schema")()[0]


@pytest.fixture
def client(env: Env) -> TestClient:
    return TestClient(create_app(env.service), base_url="http://127.0.0.1")
