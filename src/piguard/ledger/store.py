"""The ledger service: open (and migrate) a database, record consents, purposes, provenance and activities,
and append every change to the hash-chained audit log in the same transaction.

Writers serialise on the chain head: PostgreSQL locks its row (SELECT ... FOR UPDATE); SQLite takes the
database write lock up front (BEGIN IMMEDIATE). Either way a crash mid-write rolls the whole change back,
so the chain and the records it describes never disagree.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import secrets
import unicodedata
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import lru_cache
from importlib import resources
from pathlib import Path
from typing import Any

from sqlalchemy import Connection, Engine, create_engine, event, insert, select, text, update
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError, DBAPIError, IntegrityError, OperationalError

from piguard import taxonomy
from piguard.ledger.models import (
    COLLECTION_METHODS,
    CONSENT_KINDS,
    LEGAL_BASES,
    Activity,
    AuditEntry,
    ChainHead,
    Consent,
    Provenance,
    Purpose,
    Subject,
)

GENESIS = "0" * 64
_CHUNK = 500
KEY_ENV = "PIGUARD_LEDGER_KEY"
_MIGRATION_LOCK = 0x70696775  # "pigu": advisory lock id held while migrating a PostgreSQL ledger


class LedgerError(RuntimeError):
    """A ledger problem a user can act on (message is one line, names the input, never holds secrets)."""


@dataclass(frozen=True, slots=True)
class VerifyResult:
    ok: bool
    entries: int
    head_hash: str
    problem: str | None = None
    bad_seq: int | None = None


def _now() -> datetime:
    return datetime.now(UTC)


def _canon(obj: Any) -> str:
    return json.dumps(obj, ensure_ascii=False, sort_keys=True, separators=(",", ":"), default=str)


def entry_hash(
    prev: str, seq: int, at: str, actor: str, action: str, otype: str, oid: str, payload: str
) -> str:
    msg = "\x1f".join((prev, str(seq), at, actor, action, otype, oid, payload))
    return hashlib.sha256(msg.encode("utf-8")).hexdigest()


def normalize_identifier(raw: str) -> str:
    """NFKC, trimmed, upper-case (ID numbers end in X or x), inner spaces and dashes removed."""
    s = unicodedata.normalize("NFKC", raw).strip().upper()
    return "".join(ch for ch in s if ch not in " -")


def pseudonym(raw_identifier: str, key: bytes) -> str:
    """Keyed pseudonym of a subject identifier: the ledger stores only this (PIPL Art. 73(3))."""
    digest = hmac.new(key, normalize_identifier(raw_identifier).encode("utf-8"), hashlib.sha256).hexdigest()
    return "s_" + digest[:40]


def load_key(url: str, key_file: str | None = None, *, create: bool = False) -> bytes:
    """The HMAC key: $PIGUARD_LEDGER_KEY (hex or text), a key file, or for a SQLite ledger a ``.key`` file
    beside it (created on first use, mode 0600). The key never appears in messages."""
    env = os.environ.get(KEY_ENV)
    if env:
        try:
            return bytes.fromhex(env)
        except ValueError:
            return env.encode("utf-8")
    path: Path | None = Path(key_file) if key_file else None
    if path is None:
        u = make_url(url)
        if u.get_backend_name() == "sqlite" and u.database and u.database != ":memory:":
            path = Path(u.database + ".key")
    if path is None:
        raise LedgerError(
            f"no pseudonym key: set ${KEY_ENV} or pass --key-file (needed to pseudonymise subjects)"
        )
    if path.exists():
        return path.read_bytes().strip()
    if not create:
        raise LedgerError(f"pseudonym key file {path} does not exist")
    tmp = path.with_suffix(path.suffix + ".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as fh:
        fh.write(secrets.token_hex(32).encode("ascii"))
    os.replace(tmp, path)
    return path.read_bytes().strip()


def _script_location() -> str:
    return str(resources.files("piguard.ledger").joinpath("migrations"))


def _alembic_config(conn: Connection):  # type: ignore[no-untyped-def]
    from alembic.config import Config

    cfg = Config()
    cfg.set_main_option("script_location", _script_location())
    cfg.attributes["connection"] = conn
    return cfg


def normalize_url(url: str) -> str:
    """A bare path means a SQLite file."""
    if "://" not in url:
        return f"sqlite:///{Path(url).expanduser()}"
    return url


class Ledger:
    """A ledger database. ``Ledger.open(url)`` creates or upgrades the schema; a newer schema is refused."""

    def __init__(self, engine: Engine, url: str) -> None:
        self.engine = engine
        self.url = url
        self.dialect = engine.dialect.name

    # ---- opening -------------------------------------------------------------------------------------------
    @classmethod
    def open(cls, url: str, *, migrate: bool = True, create: bool = True) -> Ledger:
        """Open a ledger; ``create=False`` refuses to create a missing SQLite file (a mistyped path
        would otherwise look like an empty ledger)."""
        url = normalize_url(url)
        try:
            u = make_url(url)
        except ArgumentError:
            raise LedgerError(f"not a database URL: {url!r}") from None
        kwargs: dict[str, Any] = {}
        if u.get_backend_name() == "sqlite":
            if u.database and u.database != ":memory:":
                parent = Path(u.database).expanduser().parent
                if not parent.is_dir():
                    raise LedgerError(f"ledger directory {parent} does not exist")
                if not create and not Path(u.database).expanduser().exists():
                    raise LedgerError(
                        f"ledger file {u.database} does not exist (create it with 'piguard ledger init')"
                    )
            kwargs["connect_args"] = {"timeout": 60}
        try:
            engine = create_engine(url, **kwargs)
        except Exception as exc:  # driver missing, bad options
            raise LedgerError(f"cannot use ledger {u.render_as_string(hide_password=True)}: {exc}") from None
        if engine.dialect.name == "sqlite":
            cls._sqlite_pragmas(engine)
        ledger = cls(engine, u.render_as_string(hide_password=True))
        try:
            ledger._check_version(migrate)
        except (OperationalError, DBAPIError) as exc:
            raise LedgerError(f"cannot open ledger {ledger.url}: {str(exc.orig).splitlines()[0]}") from None
        return ledger

    @staticmethod
    def _sqlite_pragmas(engine: Engine) -> None:
        @event.listens_for(engine, "connect")
        def _on_connect(dbapi_conn, _rec):  # type: ignore[no-untyped-def]
            # pysqlite's own transaction handling would defer BEGIN; we issue BEGIN IMMEDIATE ourselves.
            dbapi_conn.isolation_level = None
            cur = dbapi_conn.cursor()
            cur.execute("PRAGMA journal_mode=WAL")
            cur.execute("PRAGMA synchronous=NORMAL")
            cur.execute("PRAGMA foreign_keys=ON")
            cur.execute("PRAGMA busy_timeout=60000")
            # Consent look-ups hit random pages of a large table: a bigger cache and mmap keep them in RAM.
            cur.execute("PRAGMA cache_size=-65536")
            cur.execute("PRAGMA mmap_size=268435456")
            cur.close()

        @event.listens_for(engine, "begin")
        def _on_begin(conn):  # type: ignore[no-untyped-def]
            write = conn.get_execution_options().get("piguard_write")
            conn.exec_driver_sql("BEGIN IMMEDIATE" if write else "BEGIN")

    def _check_version(self, migrate: bool) -> None:
        from alembic.runtime.migration import MigrationContext
        from alembic.script import ScriptDirectory

        script = ScriptDirectory(_script_location())
        head = script.get_current_head()
        with self.engine.connect() as conn:
            ctx = MigrationContext.configure(conn, opts={"version_table": "ledger_schema_version"})
            current = ctx.get_current_revision()
            conn.rollback()
        if current is not None:
            try:
                known = script.get_revision(current)
            except Exception:
                known = None
            if known is None:
                raise LedgerError(
                    f"ledger {self.url} has schema revision {current!r}, newer than this piguard knows "
                    f"(latest {head!r}); upgrade piguard to use it"
                )
        if current != head:
            if not migrate:
                raise LedgerError(
                    f"ledger {self.url} is at schema {current!r}, expected {head!r}; open to migrate"
                )
            from alembic import command

            with self.engine.connect() as conn:
                conn.execution_options(piguard_write=True)
                pg = self.dialect == "postgresql"
                if pg:
                    # Two processes opening a fresh ledger at once: one migrates, the other finds it done.
                    conn.execute(text("SELECT pg_advisory_lock(:k)"), {"k": _MIGRATION_LOCK})
                    conn.commit()
                try:
                    command.upgrade(_alembic_config(conn), "head")
                    conn.commit()
                finally:
                    if pg:
                        conn.rollback()
                        conn.execute(text("SELECT pg_advisory_unlock(:k)"), {"k": _MIGRATION_LOCK})
                        conn.commit()

    def schema_revision(self) -> str | None:
        from alembic.runtime.migration import MigrationContext

        with self.engine.connect() as conn:
            rev = MigrationContext.configure(conn, opts={"version_table": "ledger_schema_version"})
            out = rev.get_current_revision()
            conn.rollback()
            return out

    def close(self) -> None:
        self.engine.dispose()

    # ---- writing -------------------------------------------------------------------------------------------
    @contextmanager
    def _write(self) -> Iterator[tuple[Connection, list[tuple[int, str]]]]:
        """A write transaction holding the chain-head lock; yields (conn, head) where head=[(seq, hash)]."""
        with self.engine.connect() as conn:
            conn.execution_options(piguard_write=True)
            with conn.begin():
                q = select(ChainHead.seq, ChainHead.hash).where(ChainHead.id == 1)
                if self.dialect != "sqlite":
                    q = q.with_for_update()
                row = conn.execute(q).one()
                head = [(int(row.seq), str(row.hash))]
                yield conn, head
                conn.execute(
                    update(ChainHead).where(ChainHead.id == 1).values(seq=head[0][0], hash=head[0][1])
                )

    @staticmethod
    def _audit(
        conn: Connection,
        head: list[tuple[int, str]],
        actor: str,
        action: str,
        otype: str,
        oid: str,
        payload: dict[str, Any],
    ) -> None:
        seq, prev = head[0]
        seq += 1
        at = _now().isoformat()
        body = _canon(payload)
        h = entry_hash(prev, seq, at, actor, action, otype, oid, body)
        conn.execute(
            insert(AuditEntry).values(
                seq=seq,
                at=at,
                actor=actor,
                action=action,
                object_type=otype,
                object_id=oid,
                payload=body,
                prev_hash=prev,
                hash=h,
            )
        )
        head[0] = (seq, h)

    def _ensure_subject(self, conn: Connection, subject_id: str) -> None:
        exists = conn.execute(select(Subject.id).where(Subject.id == subject_id)).first()
        if exists is None:
            conn.execute(insert(Subject).values(id=subject_id, created_at=_now()))

    @staticmethod
    def _check_categories(categories: Iterable[str]) -> list[str]:
        ents, classes = taxonomy.entities(), taxonomy.classes()
        out: list[str] = []
        for c in categories:
            if c in ents:
                out.append(c)
            elif c in classes:
                out.extend(classes[c])
            else:
                raise LedgerError(
                    f"unknown entity or class {c!r}; valid classes: {', '.join(sorted(classes))}"
                )
        return list(dict.fromkeys(out))

    def record_consent(
        self,
        *,
        subject_id: str,
        kind: str,
        purposes: Sequence[str],
        categories: Sequence[str],
        recipients: Sequence[str] = (),
        consent_id: str | None = None,
        policy_version: str | None = None,
        policy_text: bytes | None = None,
        channel: str | None = None,
        given_at: datetime | None = None,
        actor: str = "piguard",
    ) -> str:
        """Record a consent for a pseudonymous subject; returns its id. Purposes must be known."""
        if kind not in CONSENT_KINDS:
            raise LedgerError(f"consent kind {kind!r} is not valid; valid: {', '.join(CONSENT_KINDS)}")
        if not subject_id.startswith("s_"):
            raise LedgerError("subject must be a pseudonymous id (s_...); raw identifiers are never stored")
        known = self.purpose_ids()
        bad = [p for p in purposes if p not in known]
        if bad or not purposes:
            raise LedgerError(f"unknown purpose {bad or purposes!r}; valid: {', '.join(sorted(known))}")
        cats = self._check_categories(categories)
        cid = consent_id or "c_" + secrets.token_hex(10)
        _check_id("consent id", cid, 120)
        _check_id("subject", subject_id, 80)
        for r in recipients:
            if not r or len(r) > 300:
                raise LedgerError("a recipient name must be 1 to 300 characters")
        policy_hash = hashlib.sha256(policy_text).hexdigest() if policy_text is not None else None
        when = given_at or _now()
        row = {
            "id": cid,
            "subject_id": subject_id,
            "kind": kind,
            "purposes": list(purposes),
            "recipients": list(recipients),
            "categories": cats,
            "policy_version": policy_version,
            "policy_hash": policy_hash,
            "channel": channel,
            "given_at": when,
            "withdrawn_at": None,
        }
        try:
            with self._write() as (conn, head):
                self._ensure_subject(conn, subject_id)
                conn.execute(insert(Consent).values(**row))
                self._audit(conn, head, actor, "consent.record", "consent", cid, {**row, "given_at": when})
        except IntegrityError:
            raise LedgerError(f"consent {cid!r} already exists") from None
        return cid

    def withdraw_consent(
        self, consent_id: str, *, actor: str = "piguard", at: datetime | None = None
    ) -> None:
        when = at or _now()
        with self._write() as (conn, head):
            row = conn.execute(select(Consent.withdrawn_at).where(Consent.id == consent_id)).first()
            if row is None:
                raise LedgerError(f"consent {consent_id!r} is not in the ledger")
            if row.withdrawn_at is not None:
                raise LedgerError(f"consent {consent_id!r} was already withdrawn")
            conn.execute(update(Consent).where(Consent.id == consent_id).values(withdrawn_at=when))
            self._audit(conn, head, actor, "consent.withdraw", "consent", consent_id, {"withdrawn_at": when})

    def declare_purpose(
        self,
        purpose_id: str,
        *,
        zh: str,
        en: str,
        categories: Sequence[str],
        alone_insufficient: bool = False,
        push: bool = False,
        actor: str = "piguard",
    ) -> None:
        _check_id("purpose id", purpose_id, 80)
        cats = self._check_categories(categories)
        row = {
            "id": purpose_id,
            "zh": zh,
            "en": en,
            "categories": cats,
            "alone_insufficient": alone_insufficient,
            "push": push,
            "created_at": _now(),
        }
        try:
            with self._write() as (conn, head):
                conn.execute(insert(Purpose).values(**row))
                self._audit(conn, head, actor, "purpose.declare", "purpose", purpose_id, row)
        except IntegrityError:
            raise LedgerError(f"purpose {purpose_id!r} already declared") from None

    def record_provenance(
        self,
        dataset_id: str,
        *,
        dataset: str,
        method: str,
        legal_basis: str,
        source_identity: str,
        categories: Sequence[str] = (),
        upstream: Sequence[str] = (),
        content_hash: str | None = None,
        actor: str = "piguard",
    ) -> None:
        _check_id("dataset id", dataset_id, 120)
        if method not in COLLECTION_METHODS:
            raise LedgerError(
                f"collection method {method!r} is not valid; valid: {', '.join(COLLECTION_METHODS)}"
            )
        if legal_basis not in LEGAL_BASES:
            raise LedgerError(f"legal basis {legal_basis!r} is not valid; valid: {', '.join(LEGAL_BASES)}")
        row = {
            "id": dataset_id,
            "dataset": dataset,
            "method": method,
            "legal_basis": legal_basis,
            "source_identity": source_identity,
            "upstream": list(upstream),
            "categories": self._check_categories(categories),
            "content_hash": content_hash,
            "recorded_at": _now(),
        }
        try:
            with self._write() as (conn, head):
                missing = set(upstream) - self.datasets_exist(list(upstream), conn=conn)
                if missing:
                    raise LedgerError(
                        f"upstream provenance records not in the ledger: {', '.join(sorted(missing))}"
                    )
                conn.execute(insert(Provenance).values(**row))
                self._audit(conn, head, actor, "provenance.record", "dataset", dataset_id, row)
        except IntegrityError:
            raise LedgerError(f"provenance record {dataset_id!r} already exists") from None

    def record_activity(
        self,
        activity_id: str,
        *,
        name: str,
        activity: str,
        purpose_id: str,
        categories: Sequence[str],
        legal_basis: str,
        recipient: str | None = None,
        actor: str = "piguard",
    ) -> None:
        row = {
            "id": activity_id,
            "name": name,
            "activity": activity,
            "purpose_id": purpose_id,
            "categories": self._check_categories(categories),
            "legal_basis": legal_basis,
            "recipient": recipient,
            "recorded_at": _now(),
        }
        try:
            with self._write() as (conn, head):
                conn.execute(insert(Activity).values(**row))
                self._audit(conn, head, actor, "activity.record", "activity", activity_id, row)
        except IntegrityError:
            raise LedgerError(f"activity {activity_id!r} already exists") from None

    def bulk_import_consents(
        self, rows: Iterable[dict[str, Any]], *, batch: int = 50_000, actor: str = "piguard"
    ) -> int:
        """Fast import (migrations from another system, benchmarks): each batch is one transaction with one
        audit entry holding the batch's row count and SHA-256 over its canonical rows."""
        total = 0
        buf: list[dict[str, Any]] = []

        def flush() -> None:
            nonlocal total
            if not buf:
                return
            digest = hashlib.sha256()
            for r in buf:
                digest.update(_canon(r).encode("utf-8"))
            subjects = list({r["subject_id"]: None for r in buf})
            with self._write() as (conn, head):
                have: set[str] = set()
                for i in range(0, len(subjects), _CHUNK):
                    part = subjects[i : i + _CHUNK]
                    have.update(conn.execute(select(Subject.id).where(Subject.id.in_(part))).scalars())
                now = _now()
                new = [{"id": s, "created_at": now} for s in subjects if s not in have]
                if new:
                    conn.execute(insert(Subject), new)
                conn.execute(insert(Consent), buf)
                self._audit(
                    conn,
                    head,
                    actor,
                    "consent.bulk_import",
                    "consent_batch",
                    f"{buf[0]['id']}..{buf[-1]['id']}",
                    {"count": len(buf), "sha256": digest.hexdigest()},
                )
            total += len(buf)
            buf.clear()

        for r in rows:
            if r.get("kind") not in CONSENT_KINDS:
                raise LedgerError(f"consent {r.get('id')!r}: kind {r.get('kind')!r} is not valid")
            r.setdefault("withdrawn_at", None)
            for k in ("policy_version", "policy_hash", "channel"):
                r.setdefault(k, None)
            buf.append(r)
            if len(buf) >= batch:
                flush()
        flush()
        return total

    # ---- reading -------------------------------------------------------------------------------------------
    def purpose_ids(self) -> set[str]:
        from piguard.rules import packs

        return set(packs.purposes()) | set(self.declared_purposes())

    def declared_purposes(self) -> dict[str, Any]:
        from piguard.rules.packs import Purpose as RulePurpose

        with self.engine.connect() as conn:
            rows = conn.execute(select(Purpose)).all()
        return {
            r.id: RulePurpose(
                id=r.id,
                zh=r.zh,
                en=r.en,
                needs=frozenset(r.categories) if r.categories else None,
                alone_insufficient=r.alone_insufficient,
                push=r.push,
            )
            for r in rows
        }

    def _views(self, rows: Iterable[Any]):  # type: ignore[no-untyped-def]
        from piguard.rules.engine import ConsentView

        fs = _json_set
        for r in rows:
            yield ConsentView(r[0], r[1], r[2], fs(r[3]), fs(r[4]), fs(r[5]), r[6] is not None)

    def _in_sql(self, sql: str, n: int) -> str:
        ph = "?" if self.engine.dialect.paramstyle == "qmark" else "%s"
        return sql.replace("(:in)", "(" + ", ".join([ph] * n) + ")")

    # The hot look-ups go straight to the driver: these statements are fixed, and skipping SQLAlchemy's
    # per-call compilation of a 500-value IN list halves the cost of a check against a large ledger.
    _BY_ID = (
        "SELECT id, subject_id, kind, CAST(purposes AS TEXT), CAST(recipients AS TEXT), "
        "CAST(categories AS TEXT), withdrawn_at FROM ledger_consents WHERE id IN (:in)"
    )
    _BY_SUBJECT = _BY_ID.replace("WHERE id IN", "WHERE subject_id IN")
    _SUBJECTS = "SELECT id FROM ledger_subjects WHERE id IN (:in)"

    def consents_by_id(self, ids: Sequence[str]) -> dict[str, Any]:
        out: dict[str, Any] = {}
        ids = sorted(ids)  # neighbouring keys share index pages
        with self.engine.connect() as conn:
            for i in range(0, len(ids), _CHUNK):
                part = tuple(ids[i : i + _CHUNK])
                rows = conn.exec_driver_sql(self._in_sql(self._BY_ID, len(part)), part).fetchall()
                out.update((v.id, v) for v in self._views(rows))
            conn.rollback()
        return out

    def consents_by_subject(self, subjects: Sequence[str]) -> dict[str, list[Any]]:
        out: dict[str, list[Any]] = {}
        subjects = sorted(subjects)
        with self.engine.connect() as conn:
            for i in range(0, len(subjects), _CHUNK):
                part = tuple(subjects[i : i + _CHUNK])
                for (s,) in conn.exec_driver_sql(self._in_sql(self._SUBJECTS, len(part)), part).fetchall():
                    out[s] = []
                rows = conn.exec_driver_sql(self._in_sql(self._BY_SUBJECT, len(part)), part).fetchall()
                for v in self._views(rows):
                    out[v.subject].append(v)
            conn.rollback()
        return out

    def datasets_exist(self, ids: Sequence[str], conn: Connection | None = None) -> set[str]:
        if not ids:
            return set()
        if conn is not None:
            return set(conn.execute(select(Provenance.id).where(Provenance.id.in_(list(ids)))).scalars())
        with self.engine.connect() as c:
            out = set(c.execute(select(Provenance.id).where(Provenance.id.in_(list(ids)))).scalars())
            c.rollback()
        return out

    def consent(self, consent_id: str) -> dict[str, Any] | None:
        with self.engine.connect() as conn:
            r = conn.execute(select(Consent).where(Consent.id == consent_id)).first()
        return None if r is None else self._row(r)

    def subject_consents(self, subject_id: str) -> list[dict[str, Any]]:
        with self.engine.connect() as conn:
            if conn.execute(select(Subject.id).where(Subject.id == subject_id)).first() is None:
                raise LedgerError(f"subject {subject_id!r} is not in the ledger")
            rows = conn.execute(
                select(Consent).where(Consent.subject_id == subject_id).order_by(Consent.given_at)
            )
            return [self._row(r) for r in rows]

    @staticmethod
    def _row(r: Any) -> dict[str, Any]:
        return {
            "id": r.id,
            "subject": r.subject_id,
            "kind": r.kind,
            "purposes": r.purposes,
            "recipients": r.recipients,
            "categories": r.categories,
            "policy_version": r.policy_version,
            "policy_hash": r.policy_hash,
            "channel": r.channel,
            "given_at": _iso(r.given_at),
            "withdrawn_at": _iso(r.withdrawn_at),
        }

    def audit_entries(self, object_id: str | None = None) -> list[dict[str, Any]]:
        q = select(AuditEntry).order_by(AuditEntry.seq)
        if object_id is not None:
            q = q.where(AuditEntry.object_id == object_id)
        with self.engine.connect() as conn:
            return [
                {
                    "seq": r.seq,
                    "at": r.at,
                    "actor": r.actor,
                    "action": r.action,
                    "object_type": r.object_type,
                    "object_id": r.object_id,
                    "payload": json.loads(r.payload),
                    "hash": r.hash,
                }
                for r in conn.execute(q)
            ]

    def counts(self) -> dict[str, int]:
        out = {}
        with self.engine.connect() as conn:
            for name in (
                "ledger_subjects",
                "ledger_consents",
                "ledger_purposes",
                "ledger_provenance",
                "ledger_activities",
                "ledger_audit",
            ):
                out[name.removeprefix("ledger_")] = int(
                    conn.execute(text(f"SELECT COUNT(*) FROM {name}")).scalar_one()
                )
        return out

    def verify(self) -> VerifyResult:
        """Recompute the chain from the first entry; report the first entry that does not match."""
        prev, expect, last = GENESIS, 1, 0
        with self.engine.connect() as conn:
            head = conn.execute(select(ChainHead.seq, ChainHead.hash).where(ChainHead.id == 1)).one()
            rows = conn.execution_options(yield_per=10_000).execute(
                select(AuditEntry).order_by(AuditEntry.seq)
            )
            for r in rows:
                if r.seq != expect:
                    return VerifyResult(
                        False, last, prev, f"entry {expect} is missing (found {r.seq})", expect
                    )
                if r.prev_hash != prev:
                    return VerifyResult(
                        False, last, prev, f"entry {r.seq} does not link to entry {r.seq - 1}", r.seq
                    )
                h = entry_hash(prev, r.seq, r.at, r.actor, r.action, r.object_type, r.object_id, r.payload)
                if h != r.hash:
                    return VerifyResult(
                        False, last, prev, f"entry {r.seq} was altered (hash mismatch)", r.seq
                    )
                prev, expect, last = h, expect + 1, r.seq
        if head.seq != last or head.hash != prev:
            return VerifyResult(
                False,
                last,
                prev,
                f"chain head says entry {head.seq} but the log ends at {last} (truncated?)",
                last + 1,
            )
        return VerifyResult(True, last, prev)

    # ---- other capabilities' events ------------------------------------------------------------------------
    def record_event(
        self,
        actor: str,
        action: str,
        object_type: str,
        object_id: str,
        payload: dict[str, Any],
        apply: Callable[[Connection], Any] | None = None,
    ) -> Any:
        """Append one audit entry; ``apply(conn)``, if given, runs first in the same write transaction (a
        capability's own table change, e.g. a rights request's new status) so the change and its entry
        commit together or not at all. Returns what ``apply`` returned."""
        with self._write() as (conn, head):
            result = apply(conn) if apply is not None else None
            self._audit(conn, head, actor, action, object_type, object_id, payload)
        return result


def _check_id(what: str, value: str, limit: int) -> None:
    if not value or len(value) > limit or any(ch.isspace() or not ch.isprintable() for ch in value):
        raise LedgerError(f"{what} must be 1 to {limit} printable characters without spaces")


@lru_cache(maxsize=65536)
def _json_set(raw: str) -> frozenset[str]:
    return frozenset(json.loads(raw))


def _iso(d: datetime | None) -> str | None:
    return None if d is None else d.isoformat()
