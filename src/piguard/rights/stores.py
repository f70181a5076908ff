"""Registered stores (``stores.yaml``): where a person's data lives and what deleting it means there.

```yaml
stores:
  - name: crm                                  # shown in receipts
    url: postgresql+psycopg://app@db/crm        # or url_env: CRM_URL (keeps passwords out of the file)
    dataset: crm-2026                           # optional: the ledger provenance record of this data
    purposes: [credit_assessment]               # optional: what the store's data is used for
    tables:
      - table: customers
        schema: public                          # optional
        key: mobile                             # the column that identifies the person
        identifier: phone                       # what the key holds: phone | email | resident_id
        match: raw                              # raw value, or pseudonym (the ledger's keyed pseudonym)
        deletion: delete                        # delete | {"null": [cols]} | {generalize: {col: value}}
                                                #   | {restrict: flag_col}
        correctable: {name: full_name, address: home_address}   # fields a person may ask to correct
        contacts: {email: email}                # optional: links a resident ID to the contact verified
```

Each store runs its deletion or correction in one transaction (all its tables or none), then re-queries
through a fresh connection to show what remains. A store that fails rolls back alone and is named in the
outcome; the others' work stands, and running the request again finishes the rest (deleting twice finds
nothing the second time).
"""

from __future__ import annotations

import base64
import os
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import yaml
from sqlalchemy import Engine, MetaData, Table, and_, create_engine, false, func, or_, select, update
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError, DBAPIError, NoSuchTableError, SQLAlchemyError

from piguard.ledger import pseudonym

IDENTIFIER_KINDS = ("phone", "email", "resident_id")
_NAME = re.compile(r"^[A-Za-z0-9_.-]{1,64}$")
ACCESS_ROW_LIMIT = 1000  # per table: a person's own rows, never a table dump


class StoresError(ValueError):
    """A stores.yaml problem; the message names the file, store, table and field."""


@dataclass(frozen=True)
class Deletion:
    mode: str  # delete | null | generalize | restrict
    columns: dict[str, Any] = field(default_factory=dict)  # null: {col: None}; generalize: {col: value}
    flag: str | None = None  # restrict


@dataclass(frozen=True)
class TableSpec:
    table: str
    key: str
    identifier: str
    match: str
    deletion: Deletion
    schema: str | None = None
    correctable: dict[str, str] = field(default_factory=dict)
    contacts: dict[str, str] = field(default_factory=dict)

    @property
    def qualified(self) -> str:
        return f"{self.schema}.{self.table}" if self.schema else self.table


@dataclass
class Store:
    name: str
    url: str
    tables: list[TableSpec]
    dataset: str | None = None
    purposes: list[str] = field(default_factory=list)
    _engine: Engine | None = field(default=None, repr=False)
    _reflected: dict[str, Table] = field(default_factory=dict, repr=False)
    _reader: Engine | None = field(default=None, repr=False)

    @property
    def safe_url(self) -> str:
        return make_url(self.url).render_as_string(hide_password=True)

    def engine(self) -> Engine:
        if self._engine is None:
            # No pre-ping (a round trip per checkout): a connection that died fails its store's step, the
            # pool drops it, and running the request again succeeds.
            self._engine = create_engine(self.url, pool_recycle=1800)
        return self._engine

    def reader(self) -> Engine:
        """Reads without a transaction on server databases (one round trip less per query)."""
        if self._reader is None:
            eng = self.engine()
            sqlite = eng.dialect.name == "sqlite"
            self._reader = eng if sqlite else eng.execution_options(isolation_level="AUTOCOMMIT")
        return self._reader

    def table(self, spec: TableSpec) -> Table:
        """The reflected table, checked once against the columns the spec names."""
        t = self._reflected.get(spec.qualified)
        if t is None:
            try:
                t = Table(spec.table, MetaData(), schema=spec.schema, autoload_with=self.engine())
            except NoSuchTableError:
                raise StoresError(f"store {self.name}: table {spec.qualified} does not exist") from None
            named = {spec.key, *spec.correctable.values(), *spec.contacts.values(), *spec.deletion.columns}
            if spec.deletion.flag:
                named.add(spec.deletion.flag)
            missing = sorted(c for c in named if c not in t.c)
            if missing:
                raise StoresError(
                    f"store {self.name}: table {spec.qualified} has no column {', '.join(missing)}"
                )
            self._reflected[spec.qualified] = t
        return t

    def close(self) -> None:
        if self._engine is not None:
            self._engine.dispose()
            self._engine = self._reader = None


def _err(where: str, msg: str) -> StoresError:
    return StoresError(f"{where}: {msg}")


def _deletion(raw: Any, where: str, key: str) -> Deletion:
    if raw in (None, "delete"):
        return Deletion("delete")
    if isinstance(raw, dict) and len(raw) == 1:
        ((mode, arg),) = raw.items()
        if mode == "null" and isinstance(arg, list) and arg and all(isinstance(c, str) for c in arg):
            cols = dict.fromkeys([*arg, key])  # the key goes too, or the person could still be found
            return Deletion("null", cols)
        if mode == "generalize" and isinstance(arg, dict) and arg:
            if key not in arg:
                raise _err(where, f"deletion.generalize must also generalize the key column {key!r}")
            return Deletion("generalize", dict(arg))
        if mode == "restrict" and isinstance(arg, str) and arg:
            return Deletion("restrict", flag=arg)
    raise _err(
        where,
        "deletion must be 'delete', {null: [columns]}, {generalize: {column: value}} or {restrict: column}",
    )


def _str_map(raw: Any, where: str, what: str, allowed: Iterable[str] | None = None) -> dict[str, str]:
    if raw is None:
        return {}
    if not isinstance(raw, dict) or not all(
        isinstance(k, str) and isinstance(v, str) for k, v in raw.items()
    ):
        raise _err(where, f"{what} must map names to column names")
    if allowed is not None:
        bad = sorted(set(raw) - set(allowed))
        if bad:
            raise _err(where, f"{what}: unknown {', '.join(bad)}; valid: {', '.join(allowed)}")
    return dict(raw)


def parse_stores(text: str, source: str = "stores.yaml") -> list[Store]:
    try:
        doc = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = f" line {mark.line + 1}" if mark is not None else ""
        raise StoresError(f"{source}{line}: not valid YAML") from None
    if not isinstance(doc, dict) or not isinstance(doc.get("stores"), list):
        raise StoresError(f"{source}: expected a mapping with a 'stores' list")
    out: list[Store] = []
    for i, s in enumerate(doc["stores"]):
        where = f"{source}: stores[{i}]"
        if not isinstance(s, dict):
            raise _err(where, "must be a mapping")
        name = s.get("name")
        if not isinstance(name, str) or not _NAME.match(name):
            raise _err(where, "name must be 1-64 letters, digits, '_', '.' or '-'")
        where = f"{source}: store {name}"
        if any(st.name == name for st in out):
            raise _err(where, "is named twice")
        url = s.get("url")
        if url is None and isinstance(s.get("url_env"), str):
            url = os.environ.get(s["url_env"])
            if not url:
                raise _err(where, f"environment variable {s['url_env']} is not set")
        if not isinstance(url, str) or not url:
            raise _err(where, "needs url or url_env")
        try:
            make_url(url)
        except ArgumentError:
            raise _err(where, "url is not a database URL") from None
        tables = s.get("tables")
        if not isinstance(tables, list) or not tables:
            raise _err(where, "needs a non-empty tables list")
        specs: list[TableSpec] = []
        for j, t in enumerate(tables):
            tw = f"{where} tables[{j}]"
            if not isinstance(t, dict):
                raise _err(tw, "must be a mapping")
            for req in ("table", "key", "identifier"):
                if not isinstance(t.get(req), str) or not t[req]:
                    raise _err(tw, f"needs {req}")
            if t["identifier"] not in IDENTIFIER_KINDS:
                raise _err(tw, f"identifier must be one of {', '.join(IDENTIFIER_KINDS)}")
            match = t.get("match", "raw")
            if match not in ("raw", "pseudonym"):
                raise _err(tw, "match must be raw or pseudonym")
            specs.append(
                TableSpec(
                    table=t["table"],
                    key=t["key"],
                    identifier=t["identifier"],
                    match=match,
                    deletion=_deletion(t.get("deletion"), tw, t["key"]),
                    schema=t.get("schema"),
                    correctable=_str_map(t.get("correctable"), tw, "correctable"),
                    contacts=_str_map(t.get("contacts"), tw, "contacts", ("phone", "email")),
                )
            )
        purposes = s.get("purposes") or []
        if not isinstance(purposes, list) or not all(isinstance(p, str) for p in purposes):
            raise _err(where, "purposes must be a list of purpose ids")
        out.append(Store(name, url, specs, s.get("dataset"), list(purposes)))
    return out


def load_stores(path: str | Path) -> list[Store]:
    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise StoresError(f"stores file {p} does not exist") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise StoresError(f"stores file {p} cannot be read ({type(exc).__name__})") from None
    return parse_stores(text, str(p))


# ---- matching ----
def variants(kind: str, canonical: str) -> list[str]:
    """The spellings a raw store column may hold for one identifier (all equal to the person)."""
    if kind == "phone":
        if canonical.startswith("+"):
            return [canonical]
        return [canonical, "+86" + canonical, "86" + canonical]
    if kind == "resident_id":
        return list(dict.fromkeys([canonical, canonical.lower()]))
    return list(dict.fromkeys([canonical, canonical.lower()]))


def _keys(spec: TableSpec, identifiers: Mapping[str, str], key: bytes) -> list[str]:
    value = identifiers.get(spec.identifier)
    if value is None:
        return []
    vs = variants(spec.identifier, value)
    if spec.match == "pseudonym":
        return list(dict.fromkeys(pseudonym(v, key) for v in vs))
    return vs


def _json_value(v: Any) -> Any:
    if isinstance(v, datetime | date):
        return v.isoformat()
    if isinstance(v, Decimal):
        return str(v)
    if isinstance(v, bytes | bytearray | memoryview):
        return base64.b64encode(bytes(v)).decode("ascii")
    return v


def store_error(exc: BaseException) -> str:
    """One line about a failed store that never quotes the data: a driver's DETAIL line and SQLAlchemy's
    [parameters: ...] can hold the very values being deleted."""
    if isinstance(exc, StoresError):
        return str(exc)
    if isinstance(exc, DBAPIError) and exc.orig is not None:
        first = str(exc.orig).strip().splitlines()[0] if str(exc.orig).strip() else ""
        return f"{type(exc.orig).__name__}: {first}"[:300]
    return type(exc).__name__


@dataclass
class TableResult:
    store: str
    table: str
    rows_affected: int
    remaining: int
    mode: str

    def as_dict(self) -> dict[str, Any]:
        return {
            "store": self.store,
            "table": self.table,
            "mode": self.mode,
            "rows_affected": self.rows_affected,
            "remaining": self.remaining,
        }


def find(store: Store, identifiers: Mapping[str, str], key: bytes) -> dict[str, list[dict[str, Any]]]:
    """The person's rows in every table of one store, by table."""
    out: dict[str, list[dict[str, Any]]] = {}
    with store.reader().connect() as conn:
        for spec in store.tables:
            keys = _keys(spec, identifiers, key)
            if not keys:
                continue
            t = store.table(spec)
            q = select(t).where(t.c[spec.key].in_(keys)).limit(ACCESS_ROW_LIMIT)
            rows = [{k: _json_value(v) for k, v in r._mapping.items()} for r in conn.execute(q)]
            if rows:
                out[spec.qualified] = rows
        conn.rollback()
    return out


def linked(
    store: Store, identifiers: Mapping[str, str], contact_kind: str, contact_digests: set[str], key: bytes
) -> bool:
    """True when a table keyed by the resident ID holds the verified contact in its contact column."""
    with store.reader().connect() as conn:
        for spec in store.tables:
            col = spec.contacts.get(contact_kind)
            keys = _keys(spec, identifiers, key) if spec.identifier == "resident_id" else []
            if col is None or not keys:
                continue
            t = store.table(spec)
            for (value,) in conn.execute(select(t.c[col]).where(t.c[spec.key].in_(keys)).limit(100)):
                if value is not None and pseudonym(str(value), key) in contact_digests:
                    return True
        conn.rollback()
    return False


Touched = list[tuple[TableSpec, list[str], int]]  # (table, the person's keys in it, rows changed)


def _requery(store: Store, done: Touched, mode: Any, still: Any) -> list[TableResult]:
    """Re-query every touched table through a fresh connection: how many of the person's rows still hold
    what the request removed (``still(spec, table)`` narrows the count; None counts every row)."""
    out: list[TableResult] = []
    with store.reader().connect() as conn:
        for spec, keys, affected in done:
            t = store.table(spec)
            cond = t.c[spec.key].in_(keys)
            extra = still(spec, t)
            if extra is not None:
                cond = and_(cond, extra)
            left = int(conn.execute(select(func.count()).select_from(t).where(cond)).scalar_one())
            out.append(TableResult(store.name, spec.qualified, affected, left, mode(spec)))
        conn.rollback()
    return out


def erase(store: Store, identifiers: Mapping[str, str], key: bytes) -> list[TableResult]:
    """Apply each table's deletion in one transaction, then re-query for what remains of the person."""
    done: Touched = []
    with store.engine().begin() as conn:
        for spec in store.tables:
            keys = _keys(spec, identifiers, key)
            if not keys:
                continue
            t = store.table(spec)
            cond = t.c[spec.key].in_(keys)
            d = spec.deletion
            if d.mode == "delete":
                res = conn.execute(t.delete().where(cond))
            elif d.mode == "restrict":
                res = conn.execute(update(t).where(cond).values({d.flag: True}))
            else:
                res = conn.execute(update(t).where(cond).values(dict(d.columns)))
            done.append((spec, keys, int(res.rowcount or 0)))

    def unrestricted(spec: TableSpec, t: Table) -> Any:
        # Restricted rows stay (a lawful retention); what must not remain is an unrestricted one.
        if spec.deletion.mode != "restrict":
            return None
        flag = t.c[spec.deletion.flag]
        return or_(flag.is_(None), flag == false())

    return _requery(store, done, lambda spec: spec.deletion.mode, unrestricted)


def correct(
    store: Store, identifiers: Mapping[str, str], corrections: Mapping[str, str], key: bytes
) -> list[TableResult]:
    """Set each corrected field in every table that declares it correctable; ``remaining`` counts the
    person's rows still holding another value."""
    done: Touched = []
    with store.engine().begin() as conn:
        for spec in store.tables:
            values = {spec.correctable[f]: v for f, v in corrections.items() if f in spec.correctable}
            keys = _keys(spec, identifiers, key)
            if not values or not keys:
                continue
            t = store.table(spec)
            res = conn.execute(update(t).where(t.c[spec.key].in_(keys)).values(values))
            done.append((spec, keys, int(res.rowcount or 0)))

    def differs(spec: TableSpec, t: Table) -> Any:
        return or_(
            *(
                or_(t.c[spec.correctable[f]].is_(None), t.c[spec.correctable[f]] != v)
                for f, v in corrections.items()
                if f in spec.correctable
            )
        )

    return _requery(store, done, lambda spec: "correct", differs)


def correctable_fields(stores: Sequence[Store]) -> list[str]:
    return sorted({f for s in stores for t in s.tables for f in t.correctable})


__all__ = [
    "ACCESS_ROW_LIMIT",
    "IDENTIFIER_KINDS",
    "SQLAlchemyError",
    "Store",
    "StoresError",
    "TableResult",
    "TableSpec",
    "correct",
    "correctable_fields",
    "erase",
    "find",
    "linked",
    "load_stores",
    "parse_stores",
    "store_error",
    "variants",
]
