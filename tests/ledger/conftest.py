"""Ledger fixtures: a fresh ledger URL on SQLite (a temp file) and PostgreSQL (a unique schema per test)."""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text


def pg_schema_url(base: str, schema: str) -> str:
    sep = "&" if "?" in base else "?"
    return f"{base}{sep}options=-csearch_path%3D{schema}"


def subject(name: object) -> str:
    """A subject pseudonym for tests (the exact form the ledger accepts; not keyed)."""
    return "s_" + hashlib.sha1(str(name).encode()).hexdigest()


@pytest.fixture
def pg_ledger_url(postgres_url: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """A unique schema; the ledger key in the environment (a server ledger has no key file beside it), so
    writer processes the test starts inherit it."""
    monkeypatch.setenv("PIGUARD_LEDGER_KEY", "pg-test-ledger-key-" + uuid.uuid4().hex)
    schema = f"piguard_ledger_{uuid.uuid4().hex[:12]}"
    engine = create_engine(postgres_url)
    with engine.begin() as conn:
        conn.execute(text(f'CREATE SCHEMA "{schema}"'))
    try:
        yield pg_schema_url(postgres_url, schema)
    finally:
        with engine.begin() as conn:
            conn.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
        engine.dispose()


@pytest.fixture(params=["sqlite", "postgresql"])
def ledger_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'ledger.db'}"
    return request.getfixturevalue("pg_ledger_url")


@pytest.fixture
def key_env(monkeypatch: pytest.MonkeyPatch) -> bytes:
    key = "00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff"
    monkeypatch.setenv("PIGUARD_LEDGER_KEY", key)
    return bytes.fromhex(key)
