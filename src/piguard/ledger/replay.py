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
from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Connection, Table, select

from piguard.ledger.models import Activity, Consent, Provenance, Purpose, Subject

MAX_PROBLEMS = 20


class _Kind:
    """One replayed table: its object type in the audit log, its columns and which of them are datetimes."""

    def __init__(self, name: str, table: Table, datetimes: tuple[str, ...], mutable: tuple[str, ...] = ()):
        self.name = name
        self.table = table
        self.columns = tuple(c.name for c in table.columns)
        self.datetimes = frozenset(datetimes)
        # Columns a later entry may change (a consent's withdrawal): kept out of the base digest.
        self.mutable = mutable
        self.base = tuple(c for c in self.columns if c not in mutable)


CONSENT = _Kind("consent", Consent.__table__, ("given_at", "withdrawn_at"), ("withdrawn_at",))  # type: ignore[arg-type]
PURPOSE = _Kind("purpose", Purpose.__table__, ("created_at",))  # type: ignore[arg-type]
DATASET = _Kind("provenance record", Provenance.__table__, ("recorded_at",))  # type: ignore[arg-type]
ACTIVITY = _Kind("activity", Activity.__table__, ("recorded_at",))  # type: ignore[arg-type]
# Object types whose tables replay covers; an action on one of them that replay does not know is a problem.
REPLAYED_TYPES = frozenset(("consent", "consent_batch", "purpose", "dataset", "activity"))
_BY_ACTION = {
    "purpose.declare": ("purpose", PURPOSE),
    "provenance.record": ("dataset", DATASET),
    "activity.record": ("activity", ACTIVITY),
}


def _dt(value: Any, naive: bool) -> str | None:
    """One spelling for a timestamp from a payload (text) or a row (datetime). SQLite keeps the wall time
    it was given and drops the offset, so there the wall time is compared; elsewhere the UTC instant."""
    if value is None:
        return None
    d = datetime.fromisoformat(value) if isinstance(value, str) else value
    if not isinstance(d, datetime):
        raise ValueError("not a timestamp")
    if naive:
        d = d.replace(tzinfo=None)
    else:
        d = (d if d.tzinfo else d.replace(tzinfo=UTC)).astimezone(UTC).replace(tzinfo=None)
    return d.isoformat(timespec="microseconds")


class Replay:
    def __init__(self, *, naive_datetimes: bool) -> None:
        self.naive = naive_datetimes
        self.problems: list[str] = []
        self.more = 0
        # id -> digest of the columns no later entry changes, plus the seq of the entry that set them.
        self.state: dict[_Kind, dict[str, tuple[bytes, int]]] = {
            k: {} for k in (CONSENT, PURPOSE, DATASET, ACTIVITY)
        }
        self.withdrawn: dict[str, tuple[str, int]] = {}
        self.subjects: dict[str, int] = {}

    # ---- helpers ---------------------------------------------------------------------------------------
    def problem(self, msg: str) -> None:
        if len(self.problems) < MAX_PROBLEMS:
            self.problems.append(msg)
        else:
            self.more += 1

    def values(self, kind: _Kind, row: Any, columns: Iterable[str]) -> list[Any]:
        get = row.get if isinstance(row, dict) else row._mapping.get
        out = []
        for c in columns:
            v = get(c)
            if c in kind.datetimes:
                v = _dt(v, self.naive)
            out.append(v)
        return out

    def digest(self, kind: _Kind, row: Any) -> bytes:
        body = json.dumps(self.values(kind, row, kind.base), ensure_ascii=False, separators=(",", ":"))
        return hashlib.blake2b(body.encode("utf-8"), digest_size=16).digest()

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
                self.withdrawn[oid] = (_dt(body["withdrawn_at"], self.naive) or "", seq)
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
            self.problem(f"entry {seq} records {kind.name} {oid!r} again (first in entry {table[oid][1]})")
            return
        table[oid] = (self.digest(kind, row), seq)
        if kind is CONSENT:
            self.subjects.setdefault(row["subject_id"], seq)
            if row.get("withdrawn_at") is not None:
                self.withdrawn[oid] = (_dt(row["withdrawn_at"], self.naive) or "", seq)

    # ---- the tables ----------------------------------------------------------------------------------------
    def compare(self, conn: Connection) -> None:
        """Stream every replayed table and compare each row with the state the log implies."""
        for kind in (CONSENT, PURPOSE, DATASET, ACTIVITY):
            expected = self.state[kind]
            rows = conn.execution_options(yield_per=5000).execute(select(kind.table))
            for r in rows:
                oid = r.id
                exp = expected.pop(oid, None)
                if exp is None:
                    self.problem(
                        f"{kind.table.name}: {kind.name} {oid!r} is in the table but no audit entry "
                        "records it"
                    )
                    continue
                if self.digest(kind, r) != exp[0]:
                    self.problem(
                        f"{kind.table.name}: {kind.name} {oid!r} differs from what entry {exp[1]} recorded"
                        f" ({', '.join(self._fields(conn, kind, exp[1], r))})"
                    )
                if kind is CONSENT:
                    self._withdrawal(oid, r.withdrawn_at)
            rows.close()
            for oid, (_d, seq) in expected.items():
                self.problem(f"{kind.table.name}: {kind.name} {oid!r} recorded in entry {seq} is missing")
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
        have = _dt(withdrawn_at, self.naive)
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

    def _fields(self, conn: Connection, kind: _Kind, seq: int, row: Any) -> list[str]:
        """Names of the columns that differ from the entry's payload (read again: only on a mismatch)."""
        from piguard.ledger.models import AuditEntry

        payload = conn.execute(select(AuditEntry.payload).where(AuditEntry.seq == seq)).scalar_one()
        body = json.loads(payload)
        if isinstance(body, dict) and "rows" in body:
            body = next((r for r in body["rows"] if r.get("id") == row.id), {})
        want = self.values(kind, body, kind.base)
        have = self.values(kind, row, kind.base)
        return [c for c, a, b in zip(kind.base, want, have, strict=True) if a != b] or ["values"]
