"""Fixtures for the data-map tests: fresh schemas and databases on the real servers."""

from __future__ import annotations

import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import polars as pl
import pytest
import sqlalchemy as sa

# Test modules import the shared table builder by name; with --import-mode=importlib pytest does not put
# this directory on sys.path.
sys.path.insert(0, str(Path(__file__).parent))
from datamap_data import customers


@pytest.fixture
def customer_frame() -> pl.DataFrame:
    return customers()


@pytest.fixture
def pg_schema(postgres_url: str) -> Iterator[tuple[sa.Engine, str]]:
    """A fresh schema on the real PostgreSQL, dropped afterwards."""
    name = f"dm_{uuid.uuid4().hex[:10]}"
    eng = sa.create_engine(postgres_url)
    with eng.begin() as conn:
        conn.execute(sa.text(f'CREATE SCHEMA "{name}"'))
    try:
        yield eng, name
    finally:
        with eng.begin() as conn:
            conn.execute(sa.text(f'DROP SCHEMA "{name}" CASCADE'))
        eng.dispose()


@pytest.fixture
def maria_db(mariadb_url: str) -> Iterator[tuple[sa.Engine, str, str]]:
    """A fresh database on the real MariaDB; yields (engine on it, its name, its URL)."""
    name = f"dm_{uuid.uuid4().hex[:10]}"
    root = sa.create_engine(mariadb_url)
    with root.begin() as conn:
        conn.execute(sa.text(f"CREATE DATABASE `{name}` CHARACTER SET utf8mb4"))
    url = sa.make_url(mariadb_url).set(database=name)
    eng = sa.create_engine(url)
    try:
        yield eng, name, url.render_as_string(hide_password=False)
    finally:
        eng.dispose()
        with root.begin() as conn:
            conn.execute(sa.text(f"DROP DATABASE `{name}`"))
        root.dispose()
