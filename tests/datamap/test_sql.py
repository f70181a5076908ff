"""SQL databases on the real servers: SQLite, PostgreSQL (psycopg 3), MariaDB (PyMySQL)."""

from __future__ import annotations

import threading
import time
import uuid
from pathlib import Path

import polars as pl
import pytest
import sqlalchemy as sa
from datamap_data import EXPECTED, customers, load_table, verdicts

from piguard.sources.sql import APPLICATION_NAME, make_engine
from piguard.sources.tables import scan_tables


def test_sqlite_tables_views_and_read_only(tmp_path: Path) -> None:
    db = tmp_path / "crm.db"
    eng = sa.create_engine(f"sqlite:///{db}")
    load_table(eng, customers(), "customers")
    with eng.begin() as conn:
        conn.execute(sa.text('CREATE VIEW v_contacts AS SELECT "客户姓名", col7 FROM customers'))
        conn.execute(sa.text("CREATE TABLE files (id INTEGER PRIMARY KEY, body BLOB, sfzh TEXT)"))
        conn.execute(sa.text("INSERT INTO files (body, sfzh) VALUES (x'00ff00ff', '110101199003070134')"))
    eng.dispose()
    before = db.read_bytes()
    dm = scan_tables(f"sqlite:///{db}")
    assert verdicts(dm.rows, "customers") == EXPECTED
    assert verdicts(dm.rows, "v_contacts") == {("客户姓名", "PERSON"), ("col7", "PHONE_NUMBER")}
    assert ("sfzh", "CN_RESIDENT_ID") in verdicts(dm.rows, "files")
    assert any(s["table"] == "files" and "'body'" in s["reason"] for s in dm.skipped)
    assert db.read_bytes() == before  # nothing written

    ro = make_engine(f"sqlite:///{db}")
    with ro.connect() as conn, pytest.raises(sa.exc.OperationalError, match="readonly"):
        conn.execute(sa.text("DELETE FROM customers"))
    ro.dispose()


def test_sqlite_missing_file_is_not_created(tmp_path: Path) -> None:
    db = tmp_path / "absent.db"
    dm = scan_tables(f"sqlite:///{db}")
    assert dm.rows == [] and "no such SQLite file" in dm.skipped[0]["reason"]
    assert not db.exists()


def test_sqlite_sampling_by_rowid(tmp_path: Path) -> None:
    db = tmp_path / "big.db"
    eng = sa.create_engine(f"sqlite:///{db}")
    load_table(eng, pl.concat([customers()] * 10), "customers")
    eng.dispose()
    dm = scan_tables(f"sqlite:///{db}", sample_rows=600)
    assert verdicts(dm.rows) == EXPECTED
    (t,) = dm.tables
    assert int(t["rows_scanned"]) <= 600 and "random ranges" in str(t["method"])  # type: ignore[call-overload]


def test_postgres_schema_walk_sampling_and_verdicts(
    postgres_url: str, pg_schema: tuple[sa.Engine, str]
) -> None:
    eng, schema = pg_schema
    load_table(eng, customers(), "customers", schema)
    big = pl.concat([customers()] * 60)  # 24,000 rows
    load_table(eng, big, "customers_big", schema)
    with eng.begin() as conn:
        conn.execute(sa.text(f'ANALYZE "{schema}".customers_big'))
        conn.execute(
            sa.text(f'CREATE VIEW "{schema}".v_names AS SELECT "客户姓名", sfzh FROM "{schema}".customers')
        )
        conn.execute(sa.text(f'CREATE TABLE "{schema}".photos (id int, img bytea)'))
        # A 3 MB cell is cut on the server to 1 MiB (+1 character) before it is fetched.
        conn.execute(sa.text(f'CREATE TABLE "{schema}".notes (id int, body text)'))
        conn.execute(sa.text(f"INSERT INTO \"{schema}\".notes VALUES (1, repeat('x', 3000000))"))
    dm = scan_tables(postgres_url, sample_rows=2000, include=[f"{schema}.*"])
    assert verdicts(dm.rows, ".customers") == EXPECTED
    assert verdicts(dm.rows, ".customers_big") == EXPECTED
    assert verdicts(dm.rows, ".v_names") == {("客户姓名", "PERSON"), ("sfzh", "CN_RESIDENT_ID")}
    tables = {t["table"]: t for t in dm.tables}
    big_t = tables[f"{schema}.customers_big"]
    assert "TABLESAMPLE SYSTEM" in str(big_t["method"])
    assert 0 < int(big_t["rows_scanned"]) <= 2000  # type: ignore[call-overload]
    assert any("'img'" in s["reason"] and "binary" in s["reason"] for s in dm.skipped)
    assert any(n["table"] == f"{schema}.notes" and "1 cell(s) over 1 MiB" in n["note"] for n in dm.notes)
    full = scan_tables(postgres_url, full=True, include=[f"{schema}.customers_big"])
    assert full.tables[0]["rows_scanned"] == 24000
    assert verdicts(full.rows) == EXPECTED


def test_postgres_session_is_read_only(postgres_url: str) -> None:
    eng = make_engine(postgres_url)
    with eng.connect() as conn:
        assert conn.execute(sa.text("SHOW transaction_read_only")).scalar() == "on"
        with pytest.raises(sa.exc.DBAPIError, match="read-only"):
            conn.execute(sa.text(f"CREATE TABLE dm_never_{uuid.uuid4().hex[:8]} (x int)"))
    eng.dispose()


def test_postgres_table_without_permission_is_skipped(
    postgres_url: str, pg_schema: tuple[sa.Engine, str]
) -> None:
    eng, schema = pg_schema
    load_table(eng, customers(40), "open_t", schema)
    load_table(eng, customers(40), "secret_t", schema)
    role = f"dm_ro_{uuid.uuid4().hex[:8]}"
    with eng.begin() as conn:
        conn.execute(sa.text(f"CREATE ROLE {role} LOGIN"))
        conn.execute(sa.text(f'GRANT USAGE ON SCHEMA "{schema}" TO {role}'))
        conn.execute(sa.text(f'GRANT SELECT ON "{schema}".open_t TO {role}'))
    try:
        url = sa.make_url(postgres_url).set(username=role).render_as_string(hide_password=False)
        dm = scan_tables(url, include=[f"{schema}.*"])
        assert ("sfzh", "CN_RESIDENT_ID") in verdicts(dm.rows, ".open_t")
        (skip,) = [s for s in dm.skipped if s["table"] == f"{schema}.secret_t"]
        assert "permission denied" in skip["reason"]
    finally:
        with eng.begin() as conn:
            conn.execute(sa.text(f'REVOKE ALL ON ALL TABLES IN SCHEMA "{schema}" FROM {role}'))
            conn.execute(sa.text(f'REVOKE ALL ON SCHEMA "{schema}" FROM {role}'))
            conn.execute(sa.text(f"DROP ROLE {role}"))


def test_postgres_dropped_connection_mid_scan(postgres_url: str, pg_schema: tuple[sa.Engine, str]) -> None:
    eng, schema = pg_schema
    # The first table is long enough to be killed while it streams; the second must still be mapped.
    load_table(eng, pl.concat([customers()] * 100), "a_long", schema)
    load_table(eng, customers(60), "b_after", schema)
    killed = threading.Event()

    def killer() -> None:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and not killed.is_set():
            with eng.begin() as conn:
                n = conn.execute(
                    sa.text(
                        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = :a "
                        "AND (query LIKE :q OR query LIKE 'FETCH%')"
                    ),
                    {"a": APPLICATION_NAME, "q": "%a_long%"},
                ).rowcount
            if n:
                killed.set()
            time.sleep(0.02)

    t = threading.Thread(target=killer)
    t.start()
    dm = scan_tables(postgres_url, full=True, include=[f"{schema}.*"])
    killed.set()
    t.join()
    assert ("sfzh", "CN_RESIDENT_ID") in verdicts(dm.rows, ".b_after")
    (skip,) = [s for s in dm.skipped if s["table"] == f"{schema}.a_long"]
    assert "terminat" in skip["reason"] or "connection" in skip["reason"].lower()


def test_wrong_credentials_and_unreachable_host(postgres_url: str) -> None:
    bad_user = sa.make_url(postgres_url).set(username="no_such_user_dm", password="s3cret-pw")
    dm = scan_tables(bad_user.render_as_string(hide_password=False))
    assert dm.rows == []
    (skip,) = dm.skipped
    assert skip["table"] == "*" and "cannot connect" in skip["reason"]
    assert "s3cret-pw" not in str(dm.skipped) and "s3cret-pw" not in skip["source"]
    dm = scan_tables("postgresql+psycopg://u:pw@127.0.0.1:1/db")
    assert "cannot connect" in dm.skipped[0]["reason"]
    dm = scan_tables("mysql+nosuchdriver://root@127.0.0.1/test")
    assert dm.skipped and dm.rows == []


def test_mariadb_verdicts_sampling_and_read_only(maria_db: tuple[sa.Engine, str, str]) -> None:
    eng, name, url = maria_db
    load_table(eng, customers(), "customers")
    load_table(eng, pl.concat([customers()] * 20), "customers_big")
    with eng.begin() as conn:
        conn.execute(sa.text("CREATE TABLE docs (id INT PRIMARY KEY, body LONGTEXT, scan LONGBLOB)"))
        conn.execute(
            sa.text("INSERT INTO docs VALUES (1, :b, :s)"),
            {"b": "备注 " * 10 + "身份证 110101199003070134", "s": b"\x00\x01" * 100},
        )
    dm = scan_tables(url, sample_rows=1000, include=[f"{name}.*"])
    assert verdicts(dm.rows, ".customers") == EXPECTED
    assert verdicts(dm.rows, ".customers_big") == EXPECTED
    big = {t["table"]: t for t in dm.tables}[f"{name}.customers_big"]
    assert int(big["rows_scanned"]) <= 1000 and "random ranges" in str(big["method"])  # type: ignore[call-overload]
    assert ("body", "CN_RESIDENT_ID") in verdicts(dm.rows, ".docs")
    assert any("'scan'" in s["reason"] for s in dm.skipped)
    ro = make_engine(url)
    with ro.connect() as conn, pytest.raises(sa.exc.DBAPIError, match="READ ONLY"):
        conn.execute(sa.text("DELETE FROM customers"))
    ro.dispose()
    with eng.connect() as conn:
        assert conn.execute(sa.text("SELECT COUNT(*) FROM customers")).scalar() == 400
