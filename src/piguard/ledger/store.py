"""The ledger service: open (and migrate) a database, record consents, purposes, provenance and activities,
and append every change to the authenticated, hash-chained audit log in the same transaction.

Writers serialise on the chain head: PostgreSQL locks its row (SELECT ... FOR UPDATE); SQLite takes the
database write lock up front (BEGIN IMMEDIATE). Either way a crash mid-write rolls the whole change back,
so the chain and the records it describes never disagree. ``verify`` proves it: it re-hashes and
authenticates the log, replays it, and compares every table with the state the log implies.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import re
import secrets
import sqlite3
import unicodedata
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import lru_cache
from importlib import resources
from pathlib import Path
from typing import Any
from urllib.parse import quote

from sqlalchemy import Connection, Engine, create_engine, event, insert, inspect, select, text, update
from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import ArgumentError, DBAPIError, IntegrityError, NoResultFound, OperationalError

from piguard import taxonomy
from piguard.ledger.errors import LedgerError
from piguard.ledger.integrity import (
    KEY_ENV,
    KEY_FILE_ENV,
    Checkpoint,
    IntegrityKey,
    KeySource,
    default_key_path,
    find_key,
    load_key,
    make_checkpoint,
)
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
from piguard.ledger.replay import Replay

GENESIS = "0" * 64
_CHUNK = 500
_BULK_ENTRY_ROWS = 5000
_MIGRATION_LOCK = 0x70696775  # "pigu": advisory lock id held while migrating a PostgreSQL ledger
PSEUDONYM_RE = re.compile(r"s_[0-9a-f]{40}")
TABLES = (
    "ledger_subjects", "ledger_consents", "ledger_purposes", "ledger_provenance", "ledger_activities",
    "ledger_audit", "ledger_chain_head",
)  # fmt: skip
__all__ = ["KEY_ENV", "Checkpoint", "LedgerError", "load_key"]


@dataclass(frozen=True, slots=True)
class VerifyResult:
    """What ``Ledger.verify`` found. ``ok`` only when nothing was altered and every entry is authenticated
    (by the ledger key's MAC or by a signed checkpoint). ``unauthenticated``: nothing was found wrong, but
    some entries could not be authenticated (no ledger key, or entries from before schema 0002)."""

    ok: bool
    entries: int
    head_hash: str
    problem: str | None = None
    bad_seq: int | None = None
    problems: tuple[str, ...] = ()
    unauthenticated: bool = False
    authenticated: int = 0
    key_id: str | None = None
    checkpoints: tuple[int, ...] = ()

    @property
    def tampered(self) -> bool:
        return not self.ok and not self.unauthenticated


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
    """Keyed pseudonym of a subject identifier: the ledger stores only this (PIPL Art. 73(3)). Its form is
    exactly ``s_`` and 40 lower-case hex digits (``is_pseudonym``)."""
    digest = hmac.new(key, normalize_identifier(raw_identifier).encode("utf-8"), hashlib.sha256).hexdigest()
    return "s_" + digest[:40]


def is_pseudonym(value: str) -> bool:
    """True for the exact form ``pseudonym`` returns; ``s_`` followed by anything else is not one."""
    return PSEUDONYM_RE.fullmatch(value) is not None


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
        return URL.create("sqlite", database=str(Path(url).expanduser())).render_as_string()
    return url


def _sqlite_path(url: str) -> Path | None:
    """The file behind a SQLite URL or bare path (None for an in-memory database or another backend)."""
    if "://" not in url:
        return Path(url).expanduser()
    u = make_url(url)
    if u.get_backend_name() != "sqlite" or not u.database or u.database == ":memory:":
        return None
    return Path(u.database).expanduser()


class Ledger:
    """A ledger database. ``Ledger.open(url)`` creates or upgrades the schema; a newer schema is refused.

    The ledger key (``key`` bytes, ``key_file``, ``$PIGUARD_LEDGER_KEY``, ``$PIGUARD_LEDGER_KEY_FILE``, or a
    SQLite ledger's ``LEDGER.db.key``) authenticates every audit entry; writing needs it (a SQLite ledger
    creates its key file on first write and says so in ``created_key_file``), verifying uses it."""

    def __init__(
        self, engine: Engine, url: str, *, key: bytes | None = None, key_file: str | None = None
    ) -> None:
        self.engine = engine
        self.url = url
        self._raw_url = url
        self.dialect = engine.dialect.name
        self._key = key
        self._key_file = key_file
        self._integrity: IntegrityKey | None = None
        self.key_source: KeySource | None = None
        self.created_key_file: Path | None = None

    # ---- opening -------------------------------------------------------------------------------------------
    @classmethod
    def open(
        cls,
        url: str,
        *,
        migrate: bool = True,
        create: bool = True,
        key: bytes | None = None,
        key_file: str | None = None,
    ) -> Ledger:
        """Open a ledger. ``create=False`` opens only an existing ledger and never creates a file or tables
        (a mistyped path would otherwise look like an empty ledger); ``migrate=False`` refuses a ledger at an
        older schema instead of upgrading it (reading verbs open that way)."""
        if "\x00" in url:
            raise LedgerError("the ledger path or URL holds a NUL character")
        try:
            sqlite_path = _sqlite_path(url)
            url = normalize_url(url)
            u = make_url(url)
        except (ArgumentError, ValueError):
            raise LedgerError(
                "not a database URL (expected a path, sqlite:///FILE or postgresql://...)"
            ) from None
        if u.host and "@" in u.host:
            # 'user:p@ss@host': the parser ends the password at the first '@', so the rest of it would be
            # shown as the host. Say how to write it; show nothing of the URL.
            raise LedgerError("ambiguous ledger URL: write '@' in a password as %40 (the URL is not shown)")
        kwargs: dict[str, Any] = {}
        if u.get_backend_name() == "sqlite":
            if sqlite_path is not None:
                cls._check_sqlite_path(sqlite_path, create)
                # Open by URI so SQLite itself refuses to create a missing file (mode=rw): no window between
                # the check above and the open, and odd characters in the path ('?', '#') stay in the path.
                target = f"file:{quote(str(sqlite_path.absolute()))}?mode={'rwc' if create else 'rw'}"
                kwargs["creator"] = lambda: sqlite3.connect(
                    target, uri=True, timeout=60, check_same_thread=False
                )
            kwargs["connect_args"] = {"timeout": 60}
        try:
            engine = create_engine(url, **kwargs)
        except Exception as exc:  # driver missing, bad options
            raise LedgerError(
                f"cannot use ledger {u.render_as_string(hide_password=True)}: {type(exc).__name__}"
            ) from None
        if engine.dialect.name == "sqlite":
            cls._sqlite_pragmas(engine, wal=create)
        ledger = cls(engine, u.render_as_string(hide_password=True), key=key, key_file=key_file)
        ledger._raw_url = url
        try:
            ledger._check_version(migrate, create)
        except (OperationalError, DBAPIError) as exc:
            engine.dispose()
            raise LedgerError(f"cannot open ledger {ledger.url}: {_first_line(exc)}") from None
        except BaseException:
            engine.dispose()
            raise
        return ledger

    @staticmethod
    def _check_sqlite_path(path: Path, create: bool) -> None:
        shown = str(path) if len(str(path)) <= 300 else str(path)[:300] + "..."
        try:
            if not path.parent.is_dir():
                raise LedgerError(f"ledger directory {path.parent} does not exist")
            if path.exists() and not path.is_file():
                raise LedgerError(f"ledger {shown} is not a file")
            if not create and not path.exists():
                raise LedgerError(
                    f"ledger file {shown} does not exist (create it with 'piguard ledger init')"
                )
        except OSError as exc:  # a name too long, a loop of links, no permission
            raise LedgerError(f"cannot use ledger path {shown}: {exc.strerror}") from None

    @staticmethod
    def _sqlite_pragmas(engine: Engine, *, wal: bool = True) -> None:
        @event.listens_for(engine, "connect")
        def _on_connect(dbapi_conn, _rec):  # type: ignore[no-untyped-def]
            # pysqlite's own transaction handling would defer BEGIN; we issue BEGIN IMMEDIATE ourselves.
            dbapi_conn.isolation_level = None
            cur = dbapi_conn.cursor()
            if wal:  # persistent in the file; setting it writes, which opening to read must not do
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

    def _check_version(self, migrate: bool, create: bool = True) -> None:
        from alembic.runtime.migration import MigrationContext
        from alembic.script import ScriptDirectory

        script = ScriptDirectory(_script_location())
        head = script.get_current_head()
        with self.engine.connect() as conn:
            ctx = MigrationContext.configure(conn, opts={"version_table": "ledger_schema_version"})
            current = ctx.get_current_revision()
            tables = set(inspect(conn).get_table_names()) if current is None else set()
            conn.rollback()
        if current is None and not create:
            if tables & set(TABLES):
                raise LedgerError(
                    f"ledger {self.url} has ledger tables but no schema version (ledger_schema_version "
                    "is missing): it was tampered with or is not a piguard ledger"
                )
            raise LedgerError(f"no ledger in {self.url} (create it with 'piguard ledger init')")
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
                    f"ledger {self.url} is at schema {current!r}, this piguard needs {head!r}: run "
                    "'piguard ledger init' to upgrade it"
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

    # ---- the ledger key ------------------------------------------------------------------------------------
    def integrity_key(self, *, create: bool = False) -> IntegrityKey | None:
        """The key that authenticates audit entries, derived from the ledger key; None when there is none.
        ``create`` lets a SQLite ledger create its key file (recorded in ``created_key_file``)."""
        if self._integrity is not None:
            return self._integrity
        if self._key is not None:
            self.key_source = KeySource(self._key, "argument")
        else:
            url = self._raw_url or self.url
            src = find_key(url, self._key_file)
            if src is None and create:
                # A fresh key cannot write to a log another key authenticated: creating one beside a ledger
                # whose key file went missing only planted a wrong key ("authenticated with another key").
                path = default_key_path(url)
                if path is not None and self._has_audit_entries():
                    raise LedgerError(
                        f"ledger {self.url} holds audit entries but its key file {path} is missing: restore "
                        f"it, or give the key with --key-file or ${KEY_ENV} (a new key cannot write to it)"
                    )
                src = find_key(url, self._key_file, create=True)
            if src is None:
                return None
            self.key_source = src
            if src.created:
                self.created_key_file = src.path
        self._integrity = IntegrityKey(self.key_source.key)
        return self._integrity

    def _has_audit_entries(self) -> bool:
        with self.engine.connect() as conn:
            if not inspect(conn).has_table(ChainHead.__tablename__):
                return False
            row = conn.execute(select(ChainHead.seq).where(ChainHead.id == 1)).first()
            conn.rollback()
        return bool(row is not None and row.seq)

    def pseudonymise(self, raw_identifier: str, *, create: bool = False) -> str:
        """The subject pseudonym of a raw identifier under this ledger's key (``create``: a SQLite ledger may
        create its key file, see ``created_key_file``)."""
        if self.integrity_key(create=create) is None or self.key_source is None:
            raise LedgerError(
                f"no ledger key for {self.url}: set ${KEY_ENV} or pass --key-file (needed to pseudonymise "
                "subjects)"
            )
        return pseudonym(raw_identifier, self.key_source.key)

    def _write_key(self) -> IntegrityKey:
        ik = self.integrity_key(create=True)
        if ik is None:
            raise LedgerError(
                f"no ledger key for {self.url}: set ${KEY_ENV} or pass --key-file (writing to the ledger "
                "needs the key that authenticates its audit log; keep it off the database host)"
            )
        return ik

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
        """A write transaction holding the chain-head lock; yields (conn, head) where head=[(seq, hash)].
        Every ``_audit`` call inside it appends one authenticated entry."""
        ik = self._write_key()
        with self.engine.connect() as conn:
            conn.execution_options(piguard_write=True)
            with conn.begin():
                q = select(ChainHead.seq, ChainHead.hash).where(ChainHead.id == 1)
                if self.dialect != "sqlite":
                    q = q.with_for_update()
                try:
                    row = conn.execute(q).one()
                except NoResultFound:
                    raise LedgerError(
                        f"ledger {self.url}: the chain head row is missing (tampered with?); run "
                        "'piguard ledger verify'"
                    ) from None
                head = [(int(row.seq), str(row.hash))]
                if head[0][0]:
                    last = conn.execute(
                        select(AuditEntry.mac, AuditEntry.key_id).where(AuditEntry.seq == head[0][0])
                    ).first()
                    if last is not None and last.mac is None:
                        raise LedgerError(
                            f"ledger {self.url} ends in audit entries no key authenticates (written before "
                            "schema 0002, or their MACs were stripped): see 'piguard ledger seal'"
                        )
                    if last is not None and last.key_id != ik.key_id:
                        raise LedgerError(
                            f"ledger {self.url} is authenticated with another ledger key (key id "
                            f"{last.key_id}, this key {ik.key_id}): use the key it was written with"
                        )
                yield conn, head
                conn.execute(
                    update(ChainHead).where(ChainHead.id == 1).values(seq=head[0][0], hash=head[0][1])
                )

    def _audit(
        self,
        conn: Connection,
        head: list[tuple[int, str]],
        actor: str,
        action: str,
        otype: str,
        oid: str,
        payload: dict[str, Any],
    ) -> None:
        """Append one entry: chained to the last by its hash, authenticated by the HMAC of that hash."""
        ik = self._write_key()
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
                mac=ik.mac(h),
                key_id=ik.key_id,
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
        _check_subject(subject_id)
        known = self.purpose_ids()
        bad = [p for p in purposes if p not in known]
        if bad or not purposes:
            raise LedgerError(f"unknown purpose {bad or purposes!r}; valid: {', '.join(sorted(known))}")
        cats = self._check_categories(categories)
        cid = consent_id or "c_" + secrets.token_hex(10)
        _check_id("consent id", cid, 120)
        for r in recipients:
            _check_text("recipient", r, 300, required=True)
        _check_text("channel", channel, 64)
        _check_text("policy version", policy_version, 64)
        policy_hash = hashlib.sha256(policy_text).hexdigest() if policy_text is not None else None
        when = _utc(given_at) if given_at is not None else _now()
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
        when = _utc(at) if at is not None else _now()
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
        _check_text("purpose name (zh)", zh, 200, required=True)
        _check_text("purpose name (en)", en, 200, required=True)
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
        _check_text("dataset", dataset, 300, required=True)
        _check_text("source identity", source_identity, 300, required=True)
        _check_text("content hash", content_hash, 128)
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
        from piguard.rules.flows import ACTIVITIES

        _check_id("activity id", activity_id, 120)
        _check_text("activity name", name, 300, required=True)
        _check_text("recipient", recipient, 300)
        if activity not in ACTIVITIES:
            raise LedgerError(f"activity {activity!r} is not valid; valid: {', '.join(ACTIVITIES)}")
        if legal_basis not in LEGAL_BASES:
            raise LedgerError(f"legal basis {legal_basis!r} is not valid; valid: {', '.join(LEGAL_BASES)}")
        known = self.purpose_ids()
        if purpose_id not in known:
            raise LedgerError(f"unknown purpose {purpose_id!r}; valid: {', '.join(sorted(known))}")
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
        """Fast import (migrations from another system, benchmarks): each batch is one transaction; every
        5,000 rows of it get one audit entry holding the rows (so ``verify`` can replay them), their count
        and SHA-256."""
        total = 0
        buf: list[dict[str, Any]] = []
        columns = [c.name for c in Consent.__table__.columns]

        def flush() -> None:
            nonlocal total
            if not buf:
                return
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
                try:
                    conn.execute(insert(Consent), buf)
                except IntegrityError:
                    raise LedgerError(
                        f"bulk import: a consent in {buf[0]['id']!r}..{buf[-1]['id']!r} already exists"
                    ) from None
                # One entry per slice: entries stay small enough to stream when verify replays them.
                for i in range(0, len(buf), _BULK_ENTRY_ROWS):
                    part = buf[i : i + _BULK_ENTRY_ROWS]
                    digest = hashlib.sha256()
                    for r in part:
                        digest.update(_canon(r).encode("utf-8"))
                    self._audit(
                        conn,
                        head,
                        actor,
                        "consent.bulk_import",
                        "consent_batch",
                        f"{part[0]['id']}..{part[-1]['id']}"[:200],
                        {"count": len(part), "sha256": digest.hexdigest(), "rows": part},
                    )
            total += len(buf)
            buf.clear()

        for r in rows:
            if r.get("kind") not in CONSENT_KINDS:
                raise LedgerError(f"consent {r.get('id')!r}: kind {r.get('kind')!r} is not valid")
            row = {c: r.get(c) for c in columns}
            unknown = set(r) - set(columns)
            if unknown:
                raise LedgerError(f"consent {r.get('id')!r}: unknown fields {', '.join(sorted(unknown))}")
            if not isinstance(row["id"], str) or not row["id"] or len(row["id"]) > 120:
                raise LedgerError("bulk import: a consent id must be 1 to 120 characters")
            _check_subject(str(row["subject_id"] or ""))
            if not isinstance(row["given_at"], datetime):
                raise LedgerError(f"consent {row['id']!r}: given_at must be a datetime")
            row["given_at"] = _utc(row["given_at"])
            if row["withdrawn_at"] is not None:
                row["withdrawn_at"] = _utc(row["withdrawn_at"])
            for k in ("purposes", "recipients", "categories"):
                row[k] = list(row[k] or [])
            buf.append(row)
            if len(buf) >= batch:
                _refuse_personal_in_batch(buf)
                flush()
        _refuse_personal_in_batch(buf)
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

    def push_opt_outs(self, subjects: Sequence[str]) -> set[str]:
        """Of ``subjects``, those who turned personalised recommendation or targeted push off through a rights
        request (the ``rights_preferences`` table ``piguard serve`` keeps beside the ledger; PIPL Art. 24)."""
        out: set[str] = set()
        subjects = sorted(subjects)
        with self.engine.connect() as conn:
            for i in range(0, len(subjects), _CHUNK):
                part = tuple(subjects[i : i + _CHUNK])
                rows = conn.exec_driver_sql(self._in_sql(self._OPTED_OUT, len(part)), part).fetchall()
                out.update(r[0] for r in rows)
            conn.rollback()
        return out

    _OPTED_OUT = (
        "SELECT subject FROM rights_preferences WHERE (NOT personalization OR NOT targeted_push) "
        "AND subject IN (:in)"
    )

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

    def audit_entries(
        self, object_id: str | None = None, object_type: str | None = None
    ) -> list[dict[str, Any]]:
        """The audit log, oldest first; of one object when ``object_id`` (and ``object_type``) are given (ids
        are unique per type only: a purpose and a consent may share one)."""
        q = select(AuditEntry).order_by(AuditEntry.seq)
        if object_id is not None:
            q = q.where(AuditEntry.object_id == object_id)
        if object_type is not None:
            q = q.where(AuditEntry.object_type == object_type)
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

    def head(self) -> tuple[int, str]:
        """The chain head: (last seq, its hash)."""
        with self.engine.connect() as conn:
            row = conn.execute(select(ChainHead.seq, ChainHead.hash).where(ChainHead.id == 1)).first()
            conn.rollback()
        if row is None:
            raise LedgerError(f"ledger {self.url}: the chain head row is missing (tampered with?)")
        return int(row.seq), str(row.hash)

    def verify(self, checkpoints: Sequence[Checkpoint] = (), *, replay: bool = True) -> VerifyResult:
        """Prove the ledger holds what its log says, in one consistent snapshot:

        1. SQLite: ``PRAGMA integrity_check``; every ledger table must exist.
        2. Re-hash the chain from the first entry (each entry links to the one before).
        3. With the ledger key, authenticate every entry's MAC; without it, entries up to a signed checkpoint
           are authenticated by the checkpoint, the rest are reported unauthenticated.
        4. The chain head and every checkpoint must match the log (a rolled-back log ends early).
        5. Replay the log and compare every consent, purpose, provenance, activity and subject row with the
           state it implies (``replay=False`` skips this).
        """
        ik = self.integrity_key()
        naive = self.dialect == "sqlite"
        with self.engine.connect() as conn:
            if self.dialect == "postgresql":
                conn = conn.execution_options(isolation_level="REPEATABLE READ")
            try:
                return self._verify(conn, ik, checkpoints, replay, naive)
            except OperationalError as exc:
                if self.dialect == "sqlite" and isinstance(exc.orig, sqlite3.DatabaseError):
                    return _failed(0, GENESIS, f"the database cannot be read: {_first_line(exc)}", None)
                raise LedgerError(f"cannot read ledger {self.url}: {_first_line(exc)}") from None
            except DBAPIError as exc:
                if self.dialect == "sqlite" and isinstance(exc.orig, sqlite3.DatabaseError):
                    return _failed(0, GENESIS, f"the database cannot be read: {_first_line(exc)}", None)
                raise LedgerError(f"cannot read ledger {self.url}: {_first_line(exc)}") from None
            finally:
                conn.rollback()

    def _verify(
        self,
        conn: Connection,
        ik: IntegrityKey | None,
        checkpoints: Sequence[Checkpoint],
        replay: bool,
        naive: bool,
    ) -> VerifyResult:
        if self.dialect == "sqlite":
            rows = [str(r[0]) for r in conn.exec_driver_sql("PRAGMA integrity_check(5)")]
            if rows != ["ok"]:
                lines = [x.strip() for r in rows for x in r.splitlines() if x.strip() and "***" not in x]
                return _failed(0, GENESIS, f"SQLite integrity check failed: {'; '.join(lines)[:300]}", None)
        present = set(inspect(conn).get_table_names())
        missing = [t for t in TABLES if t not in present]
        if missing:
            return _failed(0, GENESIS, f"table {', '.join(missing)} is missing (dropped?)", None)
        head = conn.execute(select(ChainHead.seq, ChainHead.hash).where(ChainHead.id == 1)).first()
        rp = Replay(naive_datetimes=naive) if replay else None
        wanted = {c.seq: c for c in checkpoints}
        seen_at: dict[int, str] = {0: GENESIS}
        prev, expect, last = GENESIS, 1, 0
        first_mac: int | None = None  # the first entry with a MAC: entries before it are pre-0002
        unmaced: list[int] = []
        # Small pages: a bulk-import entry holds 5,000 rows, so a page holds at most ~150 MB of text.
        rows = conn.execution_options(yield_per=100).execute(select(AuditEntry).order_by(AuditEntry.seq))
        try:
            for r in rows:
                if r.seq != expect:
                    return _failed(last, prev, f"entry {expect} is missing (found {r.seq})", expect)
                if r.prev_hash != prev:
                    return _failed(last, prev, f"entry {r.seq} does not link to entry {r.seq - 1}", r.seq)
                h = entry_hash(prev, r.seq, r.at, r.actor, r.action, r.object_type, r.object_id, r.payload)
                if h != r.hash:
                    return _failed(last, prev, f"entry {r.seq} was altered (hash mismatch)", r.seq)
                if r.mac is None:
                    if first_mac is not None:
                        return _failed(
                            last, prev, f"entry {r.seq} carries no MAC after authenticated entries", r.seq
                        )
                    unmaced.append(r.seq)
                else:
                    if first_mac is None:
                        first_mac = r.seq
                    if ik is not None and r.key_id != ik.key_id:
                        return _failed(
                            last,
                            prev,
                            f"entry {r.seq} is authenticated with another ledger key (key id "
                            f"{str(r.key_id)[:16]}; this key is {ik.key_id})",
                            r.seq,
                        )
                    if ik is not None and not ik.check(h, r.mac):
                        return _failed(
                            last,
                            prev,
                            f"entry {r.seq} fails authentication (altered, or written without the "
                            "ledger key)",
                            r.seq,
                        )
                if r.seq in wanted:
                    seen_at[r.seq] = h
                if rp is not None:
                    rp.apply(r.seq, r.action, r.object_type, r.object_id, r.payload)
                prev, expect, last = h, expect + 1, r.seq
        finally:
            rows.close()
        problems: list[str] = []
        bad: int | None = None
        if head is None:
            problems.append("the chain head row is missing")
        elif head.seq != last or head.hash != prev:
            if head.seq > last:
                problems.append(f"chain head says entry {head.seq} but the log ends at {last} (truncated?)")
            else:
                problems.append(
                    f"chain head says entry {head.seq} but the log goes on to {last} (head rolled back?)"
                )
            bad = last + 1
        for cp in checkpoints:
            got = seen_at.get(cp.seq)
            if cp.seq > last:
                problems.append(
                    f"checkpoint {cp.source} (signed by {cp.signer} at {cp.created_at}) covers entry "
                    f"{cp.seq} but the log ends at {last}: entries were removed or the log was rolled back"
                )
                bad = bad or last + 1
            elif got != cp.hash:
                problems.append(
                    f"entry {cp.seq} differs from checkpoint {cp.source} (signed by {cp.signer}): the log "
                    "up to it was rewritten"
                )
                bad = bad or cp.seq
        if rp is not None:
            rp.compare(conn)
            problems.extend(rp.problems)
            if rp.more:
                problems.append(f"... and {rp.more} more differences")
        if problems:
            return VerifyResult(False, last, prev, problems[0], bad, tuple(problems))
        covered = max((c.seq for c in checkpoints), default=0)
        cps = tuple(sorted(c.seq for c in checkpoints))
        if ik is not None:
            if unmaced and first_mac is None:
                return VerifyResult(
                    False, last, prev,
                    f"entries {unmaced[0]}..{unmaced[-1]} carry no MAC: written by a piguard before schema "
                    "0002 (then 'piguard ledger seal' vouches for them once), or their MACs were stripped",
                    unmaced[0], unauthenticated=True, authenticated=0, key_id=ik.key_id, checkpoints=cps,
                )  # fmt: skip
            return VerifyResult(True, last, prev, authenticated=last, key_id=ik.key_id, checkpoints=cps)
        if last > covered:
            return VerifyResult(
                False, last, prev,
                f"no ledger key: entries {covered + 1}..{last} cannot be authenticated (give the key: "
                f"${KEY_ENV}, ${KEY_FILE_ENV} or a key file option; or a signed checkpoint covering them)",
                covered + 1, unauthenticated=True, authenticated=covered, checkpoints=cps,
            )  # fmt: skip
        return VerifyResult(True, last, prev, authenticated=last, checkpoints=cps)

    def seal(self, *, actor: str = "piguard") -> bool:
        """Vouch for entries written before schema 0002: verify them (chain and replay), then append a keyed
        ``ledger.seal`` entry whose MAC covers them through the chain. False: nothing to seal.

        Only the key holder can seal, and only once, right after upgrading a ledger from schema 0001: the key
        cannot tell entries an old piguard wrote from a log someone rewrote and stripped of its MACs."""
        self._write_key()
        res = self.verify()
        if res.tampered:
            raise LedgerError(f"ledger {self.url} fails verification, not sealing it: {res.problem}")
        if res.ok or res.entries == 0:
            return False
        if res.key_id is None:  # the key was there, yet entries are unauthenticated: only the legacy case
            raise LedgerError(f"ledger {self.url}: {res.problem}")
        with self.engine.connect() as conn:
            conn.execution_options(piguard_write=True)
            with conn.begin():
                q = select(ChainHead.seq, ChainHead.hash).where(ChainHead.id == 1)
                if self.dialect != "sqlite":
                    q = q.with_for_update()
                row = conn.execute(q).one()
                head = [(int(row.seq), str(row.hash))]
                if head[0][0] != res.entries:
                    raise LedgerError(f"ledger {self.url} changed while it was being sealed; run init again")
                body = {"sealed_through": res.entries}
                self._audit(conn, head, actor, "ledger.seal", "ledger", "audit", body)
                conn.execute(
                    update(ChainHead).where(ChainHead.id == 1).values(seq=head[0][0], hash=head[0][1])
                )
        return True

    def checkpoint(self, signing_key: Any, checkpoints: Sequence[Checkpoint] = ()) -> dict[str, Any]:
        """Verify the ledger, then return a checkpoint of its head signed with ``signing_key`` (a
        ``piguard.keys.SigningKey``): keep it away from the database host to detect a later rollback."""
        res = self.verify(checkpoints)
        if not res.ok:
            raise LedgerError(f"ledger {self.url} fails verification, no checkpoint made: {res.problem}")
        return make_checkpoint(res.entries, res.head_hash, self.url, signing_key)

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


def _failed(entries: int, head: str, problem: str, bad: int | None) -> VerifyResult:
    return VerifyResult(False, entries, head, problem, bad, (problem,))


def _check_subject(subject_id: str) -> None:
    if not isinstance(subject_id, str) or not is_pseudonym(subject_id):
        raise LedgerError(
            "subject must be a pseudonym (s_ and 40 hex digits, as piguard.ledger.pseudonym makes it); "
            "raw identifiers are never stored"
        )


def _utc(d: datetime) -> datetime:
    """Timestamps are stored in UTC: SQLite drops the offset, so another zone would change the instant."""
    if not isinstance(d, datetime):
        raise LedgerError("a timestamp must be a datetime")
    return (d if d.tzinfo else d.replace(tzinfo=UTC)).astimezone(UTC)


def _first_line(exc: BaseException) -> str:
    orig = getattr(exc, "orig", None) or exc
    lines = str(orig).strip().splitlines()
    return lines[0][:300] if lines else type(orig).__name__


def _check_id(what: str, value: str, limit: int) -> None:
    if not value or len(value) > limit or any(ch.isspace() or not ch.isprintable() for ch in value):
        raise LedgerError(f"{what} must be 1 to {limit} printable characters without spaces")
    _refuse_personal_ids(what, [value])


def _refuse_personal_ids(what: str, values: Sequence[str]) -> None:
    """Ids and names are stored and printed in the clear, so one that holds an identifier (an ID number or
    a phone number used as a consent id, a name field holding a phone number) would put a raw identifier in
    the ledger: refuse it. One detector pass over many values keeps bulk imports fast."""
    from piguard.detect.structured import find_structured

    text = "\n".join(values)
    if not text:
        return
    ents = taxonomy.entities()
    for h in find_structured(text):
        e = ents.get(h.entity)
        if h.confidence >= 0.5 and (e is None or e.personal):
            raise LedgerError(
                f"a {what} holds what looks like a personal identifier ({h.entity}); ids and names are "
                "stored in the clear, so leave it out"
            )


def _refuse_personal_in_batch(rows: list[dict[str, Any]]) -> None:
    _refuse_personal_ids("consent id", [r["id"] for r in rows])
    texts = [str(x) for r in rows for x in (*r["recipients"], r["channel"], r["policy_version"]) if x]
    _refuse_personal_ids("consent field (recipient, channel or policy version)", texts)


def _check_text(what: str, value: str | None, limit: int, *, required: bool = False) -> None:
    """A free-text field: a string of at most ``limit`` characters holding no personal identifier."""
    if value is None and not required:
        return
    if not isinstance(value, str) or (required and not value.strip()) or len(value) > limit:
        raise LedgerError(f"{what} must be {'1' if required else '0'} to {limit} characters")
    _refuse_personal_ids(what, [value])


@lru_cache(maxsize=65536)
def _json_set(raw: str) -> frozenset[str]:
    return frozenset(json.loads(raw))


def _iso(d: datetime | None) -> str | None:
    # With its zone on every backend: SQLite returns these UTC times naive, PostgreSQL with +00:00.
    if d is None:
        return None
    return (d if d.tzinfo is not None else d.replace(tzinfo=UTC)).isoformat()
