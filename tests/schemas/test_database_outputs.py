"""The data map of real database servers through `piguard scan URL --format json`: PostgreSQL reached with a
password in its URL (the report must show it as ***) and MariaDB, each in a fresh schema or table that is
dropped afterwards; checked against scan-report and datamap schemas."""

from __future__ import annotations

import csv
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from typer.testing import CliRunner

from piguard.cli import app
from schema_check import assert_valid, strict_json

EXAMPLES = Path(__file__).resolve().parents[2] / "examples" / "data"
PASSWORD = "pw/with@odd chars"  # trust authentication ignores it; the report must not show it


def _applicants(n: int = 200) -> tuple[list[str], list[list[str]]]:
    with (EXAMPLES / "loan_applicants.csv").open(encoding="utf-8") as fh:
        rows = list(csv.reader(fh))
    return ["name", "mobile", "id_card", "gender", "age", "city"], [r[:6] for r in rows[1 : n + 1]]


def _load(eng: sa.Engine, table: str) -> None:
    cols, rows = _applicants()
    meta = sa.MetaData()
    schema, _, name = table.rpartition(".")
    t = sa.Table(name, meta, *(sa.Column(c, sa.String(64)) for c in cols), schema=schema or None)
    meta.create_all(eng)
    with eng.begin() as conn:
        conn.execute(t.insert(), [dict(zip(cols, r, strict=True)) for r in rows])


def _scan(url: str, include: str) -> tuple[int, str]:
    res = CliRunner().invoke(
        app, ["scan", url, "--format", "json", "--include", include, "--timeout", "10", "--no-progress"]
    )
    assert res.exception is None or isinstance(res.exception, SystemExit), res.exception
    return res.exit_code, res.stdout


@pytest.fixture
def pg_table(postgres_url: str) -> Iterator[tuple[str, str]]:
    schema = f"schemas_{uuid.uuid4().hex[:10]}"
    eng = sa.create_engine(postgres_url)
    with eng.begin() as conn:
        conn.execute(sa.text(f'CREATE SCHEMA "{schema}"'))
    try:
        _load(eng, f"{schema}.applicants")
        url = sa.make_url(postgres_url).set(password=PASSWORD).render_as_string(hide_password=False)
        yield url, schema
    finally:
        with eng.begin() as conn:
            conn.execute(sa.text(f'DROP SCHEMA "{schema}" CASCADE'))
        eng.dispose()


@pytest.fixture
def maria_table(mariadb_url: str) -> Iterator[tuple[str, str]]:
    eng = sa.create_engine(mariadb_url)
    db = sa.make_url(mariadb_url).database or "test"
    name = f"schemas_{uuid.uuid4().hex[:10]}"
    try:
        _load(eng, name)
        yield mariadb_url, f"{db}.{name}"
    finally:
        with eng.begin() as conn:
            conn.execute(sa.text(f"DROP TABLE IF EXISTS `{name}`"))
        eng.dispose()


def _check(doc: dict[str, Any], table: str) -> None:
    assert_valid("scan-report", doc, f"data map of {table}")
    assert_valid("datamap", doc, f"data map of {table}")
    mapped = {(r["table"], r["column"], r["entity"]) for r in doc["sources"]}
    assert {(table, "mobile", "PHONE_NUMBER"), (table, "id_card", "CN_RESIDENT_ID")} <= mapped
    assert doc["combinations"] and len(doc["evidence"]) == len(doc["sources"])


def test_postgres_data_map_matches_schemas_and_hides_the_password(pg_table: tuple[str, str]) -> None:
    url, schema = pg_table
    code, out = _scan(url, f"{schema}.*")
    assert code == 0, out[-2000:]
    doc = strict_json(out)
    _check(doc, f"{schema}.applicants")
    assert "odd chars" not in out and all(":***@" in r["source"] for r in doc["sources"])


def test_mariadb_data_map_matches_schemas(maria_table: tuple[str, str]) -> None:
    url, table = maria_table
    code, out = _scan(url, table)
    assert code == 0, out[-2000:]
    _check(strict_json(out), table)
