"""Replay: rebuild from the audit log the state of every table it describes, and compare it with the tables.

The audit log is the ledger's evidence; the tables are a fast view of it. A row the log does not explain (a
consent inserted with no entry, a withdrawal undone, purposes widened) or a logged object missing from its
table is reported, naming the table, the id, the entry and the fields that differ -- never their values.

Actions on the modelled object types (consent, consent_batch, purpose, dataset, activity) are replayed;
entries of other object types (rights requests and other events recorded with ``Ledger.record_event``) are
chained and authenticated like every entry but describe tables of their own, so they are not replayed here.

Memory: one 24-byte digest (plus the id) per object; rows are streamed.
"""

from __future__ import annotations

import hashlib
import json
from datetime import UTC, datetime
from functools import lru_cache
from json.encoder import encode_basestring_ascii as _esc  # type: ignore[attr-defined]
from typing import Any

from sqlalchemy import JSON, Boolean, Connection, DateTime, Table, Text, cast, select

from piguard.ledger.models import Activity, Consent, Provenance, Purpose, Subject

MAX_PROBLEMS = 20
_STORED = "%Y-%m-%d %H:%M:%S.%f"  # how SQLAlchemy stores a datetime in SQLite; the canonical spelling here


class _Kind:
    """One replayed table: its name in messages, its columns and how each is compared."""

    def __init__(self, name: str, table: Table, mutable: tuple[str, ...] = ()) -> None:
        self.name = name
        self.table = table
        # Columns a later entry may change (a consent's withdrawal): kept out of the base digest.
        cols = [c for c in table.columns if c.name not in mutable]
        self.base = tuple(c.name for c in cols)
        self.types = tuple(
            "json" if isinstance(c.type, JSON)
            else "dt" if isinstance(c.type, DateTime)
            else "bool" if isinstance(c.type, Boolean)
            else "text"
            for c in cols
        )  # fmt: skip
        self._cols = cols

    def select(self, sqlite: bool):  # type: ignore[no-untyped-def]
        """The base columns as the comparison reads them: JSON as its stored text (no decoding), and in
        SQLite datetimes as their stored text too."""
        exprs = []
        for c, t in zip(self._cols, self.types, strict=True):
            if t == "json" or (t == "dt" and sqlite):
                exprs.append(cast(c, Text))
            else:
                exprs.append(c)
        return exprs


CONSENT = _Kind("consent", Consent.__table__, ("withdrawn_at",))  # type: ignore[arg-type]
PURPOSE = _Kind("purpose", Purpose.__table__)  # type: ignore[arg-type]
DATASET = _Kind("provenance record", Provenance.__table__)  # type: ignore[arg-type]
ACTIVITY = _Kind("activity", Activity.__table__)  # type: ignore[arg-type]
# Object types whose tables replay covers; an action on one of them that replay does not know is a problem.
REPLAYED_TYPES = frozenset(("consent", "consent_batch", "purpose", "dataset", "activity"))
_BY_ACTION = {
    "purpose.declare": ("purpose", PURPOSE),
    "provenance.record": ("dataset", DATASET),
    "activity.record": ("activity", ACTIVITY),
}


@lru_cache(maxsize=65536)
def _payload_dt(value: str, naive: bool) -> str:
    """A payload's timestamp text in the canonical spelling. SQLite keeps the wall time it was given and
    drops the offset, so there the wall time is compared; elsewhere the UTC instant."""
    d = datetime.fromisoformat(value)
    if naive:
        d = d.replace(tzinfo=None)
    elif d.tzinfo is not None:
        d = d.astimezone(UTC).replace(tzinfo=None)
    return d.strftime(_STORED)


def _row_dt(value: Any, naive: bool) -> str | None:
    if value is None:
        return None
    if isinstance(value, datetime):
        if not naive and value.tzinfo is not None:
            value = value.astimezone(UTC).replace(tzinfo=None)
        return value.strftime(_STORED)
    return str(value)


def _json_text(v: Any, _naive: bool) -> str | None:
    """JSON as SQLAlchemy's default serializer (``json.dumps``) writes it; a list of strings is spelled out
    directly, three times faster than the encoder for the small lists every consent holds."""
    if v is None:
        return None
    if type(v) is list and all(type(x) is str for x in v):
        return "[" + ", ".join(map(_esc, v)) + "]"
    return json.dumps(v)


def _text(v: Any, _naive: bool) -> str | None:
    return None if v is None else str(v)


def _bool(v: Any, _naive: bool) -> str | None:
    return None if v is None else "1" if v else "0"


def _any_dt(v: Any, naive: bool) -> str | None:
    return _payload_dt(v, naive) if isinstance(v, str) else _row_dt(v, naive)


_FROM_PAYLOAD = {"json": _json_text, "dt": _any_dt, "bool": _bool, "text": _text}
_FROM_ROW = {"json": _text, "dt": _row_dt, "bool": _bool, "text": _text}


def _seq(state: bytes) -> int:
    return int.from_bytes(state[16:], "big")


def _digest(texts: list[str | None]) -> bytes:
    # repr of a list of str/None is unambiguous (quotes escaped): no value can shift into its neighbour.
    return hashlib.blake2b(repr(texts).encode("utf-8", "surrogatepass"), digest_size=16).digest()


class Replay:
    def __init__(self, *, naive_datetimes: bool) -> None:
        self.naive = naive_datetimes
        self.problems: list[str] = []
        self.more = 0
        # id -> digest of the columns no later entry changes, plus the seq of the entry that set them.
        # One bytes object per id, digest then seq (8 bytes): a third of a (digest, seq) tuple's memory.
        self.state: dict[_Kind, dict[str, bytes]] = {k: {} for k in (CONSENT, PURPOSE, DATASET, ACTIVITY)}
        self.withdrawn: dict[str, tuple[str, int]] = {}
        self.subjects: dict[str, int] = {}

    # ---- helpers ---------------------------------------------------------------------------------------
    def problem(self, msg: str) -> None:
        if len(self.problems) < MAX_PROBLEMS:
            self.problems.append(msg)
        else:
            self.more += 1

    def payload_texts(self, kind: _Kind, row: dict[str, Any]) -> list[str | None]:
        """A logged row's values as text, spelled as the table stores them (JSON as SQLAlchemy writes it)."""
        get, naive = row.get, self.naive
        return [_FROM_PAYLOAD[t](get(c), naive) for c, t in zip(kind.base, kind.types, strict=True)]

    def row_texts(self, kind: _Kind, row: Any) -> list[str | None]:
        naive = self.naive
        return [_FROM_ROW[t](v, naive) for v, t in zip(row, kind.types, strict=True)]

    # ---- the log -------------------------------------------------------------------------------------------
    def apply(self, seq: int, action: str, otype: str, oid: str, payload: str) -> None:
        if otype not in REPLAYED_TYPES:
            return
        try:
            body = json.loads(payload)
            self._apply(seq, action, otype, oid, body)
        except (ValueError, TypeError, KeyError, AttributeError, RecursionError):
            self.problem(f"entry {seq} ({action}) has a payload this piguard cannot replay")

    def _apply(self, seq: int, action: str, otype: str, oid: str, body: Any) -> None:
        if action == "consent.record" and otype == "consent":
            self._insert(CONSENT, seq, oid, body)
        elif action == "consent.withdraw" and otype == "consent":
            if oid not in self.state[CONSENT]:
                self.problem(f"entry {seq} withdraws consent {oid!r}, which no earlier entry records")
            elif oid in self.withdrawn:
                self.problem(f"entry {seq} withdraws consent {oid!r} a second time")
            else:
                self.withdrawn[oid] = (_payload_dt(body["withdrawn_at"], self.naive), seq)
        elif action == "consent.bulk_import" and otype == "consent_batch":
            rows = body.get("rows")
            if rows is None:
                self.problem(
                    f"entry {seq} is a bulk import of {body.get('count')} consents from schema 0001, which "
                    "kept only their digest: those consents cannot be replayed"
                )
                return
            if len(rows) != body.get("count"):
                self.problem(f"entry {seq}: bulk import count does not match its rows")
            for r in rows:
                self._insert(CONSENT, seq, r["id"], r)
        elif action in _BY_ACTION and _BY_ACTION[action][0] == otype:
            self._insert(_BY_ACTION[action][1], seq, oid, body)
        else:
            self.problem(f"entry {seq}: action {action!r} on a {otype} is not one this piguard can replay")

    def _insert(self, kind: _Kind, seq: int, oid: str, row: dict[str, Any]) -> None:
        if row.get("id") != oid:
            self.problem(f"entry {seq}: its payload describes another {kind.name} than {oid!r}")
            return
        table = self.state[kind]
        if oid in table:
            self.problem(f"entry {seq} records {kind.name} {oid!r} again (first in entry {_seq(table[oid])})")
            return
        table[oid] = _digest(self.payload_texts(kind, row)) + seq.to_bytes(8, "big")
        if kind is CONSENT:
            self.subjects.setdefault(row["subject_id"], seq)
            if row.get("withdrawn_at") is not None:
                self.withdrawn[oid] = (_payload_dt(row["withdrawn_at"], self.naive), seq)

    # ---- the tables ----------------------------------------------------------------------------------------
    def compare(self, conn: Connection) -> None:
        """Stream every replayed table and compare each row with the state the log implies."""
        for kind in (CONSENT, PURPOSE, DATASET, ACTIVITY):
            expected = self.state[kind]
            extra = [kind.table.c.withdrawn_at] if kind is CONSENT else []
            if extra and self.naive:
                extra = [cast(kind.table.c.withdrawn_at, Text)]
            q = select(kind.table.c.id, *kind.select(self.naive), *extra)
            rows = conn.execution_options(yield_per=5000).execute(q)
            n = len(kind.base)
            for r in rows:
                oid = r[0]
                exp = expected.pop(oid, None)
                if exp is None:
                    self.problem(
                        f"{kind.table.name}: {kind.name} {oid!r} is in the table but no audit entry "
                        "records it"
                    )
                    continue
                texts = self.row_texts(kind, r[1 : n + 1])
                if _digest(texts) != exp[:16]:
                    seq = _seq(exp)
                    self.problem(
                        f"{kind.table.name}: {kind.name} {oid!r} differs from what entry {seq} recorded"
                        f" ({', '.join(self._fields(conn, kind, seq, oid, texts))})"
                    )
                if kind is CONSENT:
                    self._withdrawal(oid, r[n + 1])
            rows.close()
            for oid, exp in expected.items():
                self.problem(
                    f"{kind.table.name}: {kind.name} {oid!r} recorded in entry {_seq(exp)} is missing"
                )
            expected.clear()
        seen: set[str] = set()
        rows = conn.execution_options(yield_per=5000).execute(select(Subject.id))
        for (sid,) in rows:
            seen.add(sid)
            if sid not in self.subjects:
                self.problem(
                    f"ledger_subjects: subject {sid!r} is in the table but no consent entry names it"
                )
        rows.close()
        for sid, seq in self.subjects.items():
            if sid not in seen:
                self.problem(f"ledger_subjects: subject {sid!r} named in entry {seq} is missing")

    def _withdrawal(self, oid: str, withdrawn_at: Any) -> None:
        exp = self.withdrawn.get(oid)
        have = _row_dt(withdrawn_at, self.naive)
        if exp is None and have is not None:
            self.problem(
                f"ledger_consents: consent {oid!r} is marked withdrawn but no audit entry withdraws it"
            )
        elif exp is not None and have is None:
            self.problem(
                f"ledger_consents: consent {oid!r} was withdrawn in entry {exp[1]} but the table shows it "
                "active"
            )
        elif exp is not None and have != exp[0]:
            self.problem(
                f"ledger_consents: consent {oid!r}: withdrawn_at differs from what entry {exp[1]} recorded"
            )

    def _fields(self, conn: Connection, kind: _Kind, seq: int, oid: str, have: list[str | None]) -> list[str]:
        """Names of the columns that differ from the entry's payload (read again: only on a mismatch)."""
        from piguard.ledger.models import AuditEntry

        payload = conn.execute(select(AuditEntry.payload).where(AuditEntry.seq == seq)).scalar_one()
        body = json.loads(payload)
        if isinstance(body, dict) and "rows" in body:
            body = next((r for r in body["rows"] if r.get("id") == oid), {})
        want = self.payload_texts(kind, body)
        return [c for c, a, b in zip(kind.base, want, have, strict=True) if a != b] or ["values"]
