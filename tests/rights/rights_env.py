"""The rights test environment, shared by tests/rights and tests/web (their conftest files import the
fixtures): a ledger on SQLite or PostgreSQL (a unique schema per test), two registered stores (a SQLite CRM
and a PostgreSQL order database in a schema of its own), an outbox, a signing key and the service."""

from __future__ import annotations

import re
import sqlite3
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text

from piguard.keys import SigningKey, generate
from piguard.ledger import Ledger
from piguard.rights import Limits, OutboxDelivery, RightsService, load_stores

KEY = bytes.fromhex("00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff")
PHONE = "13812345678"
OTHER_PHONE = "13900001111"
EMAIL = "wang.xiaoming@example.cn"
RESIDENT_ID = "110101199003071233"


def free_port() -> int:
    """A TCP port nobody listens on right now (for a test's own server)."""
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def pg_schema_url(base: str, schema: str) -> str:
    sep = "&" if "?" in base else "?"
    return f"{base}{sep}options=-csearch_path%3D{schema}"


@pytest.fixture
def pg_schema(postgres_url: str) -> Iterator[Callable[[], tuple[str, str]]]:
    """Make fresh PostgreSQL schemas: returns (url with search_path, schema name); all dropped after."""
    engine = create_engine(postgres_url)
    made: list[str] = []

    def make() -> tuple[str, str]:
        schema = f"piguard_rights_{uuid.uuid4().hex[:12]}"
        with engine.begin() as conn:
            conn.execute(text(f'CREATE SCHEMA "{schema}"'))
        made.append(schema)
        return pg_schema_url(postgres_url, schema), schema

    yield make
    with engine.begin() as conn:
        for s in made:
            conn.execute(text(f'DROP SCHEMA "{s}" CASCADE'))
    engine.dispose()


@pytest.fixture(params=["sqlite", "postgresql"])
def ledger_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'ledger.db'}"
    # A server ledger keeps no key beside it: writers take it from the environment (the processes a test
    # starts inherit it). The same key makes the subjects' pseudonyms.
    request.getfixturevalue("monkeypatch").setenv("PIGUARD_LEDGER_KEY", KEY.hex())
    return request.getfixturevalue("pg_schema")()[0]


def make_crm(path: Path) -> str:
    db = sqlite3.connect(path)
    db.executescript(
        """
        CREATE TABLE customers (id INTEGER PRIMARY KEY, mobile TEXT, email TEXT, id_no TEXT, name TEXT,
                                address TEXT);
        CREATE INDEX ix_customers_mobile ON customers (mobile);
        CREATE TABLE events (id INTEGER PRIMARY KEY, who TEXT, what TEXT, at TEXT);
        """
    )
    db.executemany(
        "INSERT INTO customers (mobile, email, id_no, name, address) VALUES (?, ?, ?, ?, ?)",
        [
            (PHONE, EMAIL, RESIDENT_ID, "王小明", "北京市东城区"),
            ("+86" + PHONE, None, None, "王小明", "北京市东城区某路 1 号"),  # another spelling, same person
            (OTHER_PHONE, "li@example.cn", None, "李四", "上海市"),
        ],
    )
    db.executemany(
        "INSERT INTO events (who, what, at) VALUES (?, ?, ?)",
        [(PHONE, "login", "2026-11-01"), (OTHER_PHONE, "login", "2026-11-02")],
    )
    db.commit()
    db.close()
    return f"sqlite:///{path}"


def make_orders(url: str, key: bytes = KEY) -> None:
    """A PostgreSQL store keyed by the ledger pseudonym; deletion there keeps rows but restricts them."""
    from piguard.ledger import pseudonym

    engine = create_engine(url)
    with engine.begin() as conn:
        conn.execute(
            text(
                "CREATE TABLE orders (id SERIAL PRIMARY KEY, buyer TEXT NOT NULL, item TEXT, "
                "amount NUMERIC(10,2), restricted BOOLEAN NOT NULL DEFAULT FALSE)"
            )
        )
        for who, item in [(PHONE, "手机壳"), (PHONE, "耳机"), (OTHER_PHONE, "书")]:
            conn.execute(
                text("INSERT INTO orders (buyer, item, amount) VALUES (:b, :i, 9.90)"),
                {"b": pseudonym(who, key), "i": item},
            )
    engine.dispose()


@dataclass
class Env:
    service: RightsService
    ledger: Ledger
    outbox: Path
    signing: SigningKey
    crm_url: str
    orders_url: str | None
    stores_path: Path

    def code(self, rid: str) -> str:
        found = re.search(r"(\d{6})", (self.outbox / f"{rid}.txt").read_text(encoding="utf-8"))
        assert found, "no code in the outbox file"
        return found.group(1)

    def submit_verified(self, type_: str, value: str = PHONE, kind: str = "phone", **kw) -> tuple[str, str]:
        rid = self.service.submit(type_, {"kind": kind, "value": value}, **kw)["id"]
        return rid, self.service.verify(rid, self.code(rid))["token"]


def write_stores(path: Path, crm_url: str, orders_url: str | None) -> Path:
    text_ = f"""
stores:
  - name: crm
    url: {crm_url}
    dataset: crm-2026
    purposes: [marketing]
    tables:
      - table: customers
        key: mobile
        identifier: phone
        correctable: {{name: name, address: address}}
      - table: customers
        key: id_no
        identifier: resident_id
        contacts: {{email: email, phone: mobile}}
        deletion: {{"null": [name, address, email]}}
      - table: events
        key: who
        identifier: phone
"""
    if orders_url:
        text_ += f"""
  - name: orders
    url: "{orders_url}"
    tables:
      - table: orders
        key: buyer
        identifier: phone
        match: pseudonym
        deletion: {{restrict: restricted}}
"""
    path.write_text(text_, encoding="utf-8")
    return path


@pytest.fixture
def env(ledger_url: str, tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[Env]:
    crm = make_crm(tmp_path / "crm.db")
    orders_url = None
    if ledger_url.startswith("postgresql"):
        orders_url = request.getfixturevalue("pg_schema")()[0]
        make_orders(orders_url)
    stores_path = write_stores(tmp_path / "stores.yaml", crm, orders_url)
    outbox = tmp_path / "outbox"
    outbox.mkdir()
    signing = generate(tmp_path / "controller", owner="某数据公司")
    led = Ledger.open(ledger_url)
    svc = RightsService(led, KEY, load_stores(stores_path), OutboxDelivery(outbox), signing, Limits())
    yield Env(svc, led, outbox, signing, crm, orders_url, stores_path)
    for s in svc.stores:
        s.close()
    led.close()


def check_schema(name: str, obj: object) -> None:
    """Validate ``obj`` against the published schema ``src/piguard/schemas/<name>.schema.json``."""
    import json as _json
    from importlib import resources

    import jsonschema

    path = resources.files("piguard.schemas").joinpath(f"{name}.schema.json")
    schema = _json.loads(path.read_text("utf-8"))
    jsonschema.Draft202012Validator(schema, format_checker=jsonschema.FormatChecker()).validate(obj)
