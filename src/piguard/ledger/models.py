"""Ledger tables (SQLAlchemy 2.0 typed models). The Alembic migrations in ``migrations/`` create them; these
models are the code's view and must match the head revision (a test compares them)."""

from __future__ import annotations

from datetime import datetime
from typing import Any, ClassVar

from sqlalchemy import JSON, BigInteger, Boolean, DateTime, ForeignKey, Index, Integer, String, Text
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

CONSENT_KINDS = ("none", "bundled", "explicit", "separate", "guardian")
# How a dataset came to the controller (provenance), and its legal basis (PIPL Art. 13 para. 1 items 1-7).
COLLECTION_METHODS = ("collected_from_subject", "crawled_public", "received_from_supplier", "derived")
LEGAL_BASES = (
    "consent",
    "contract",
    "hr",
    "legal_duty",
    "emergency",
    "news_public_interest",
    "public_disclosed",
    "other_law",
)


class Base(DeclarativeBase):
    type_annotation_map: ClassVar[dict[Any, Any]] = {dict[str, Any]: JSON, list[str]: JSON}


class Subject(Base):
    """A data subject, known only by a keyed pseudonym (HMAC-SHA256 of the identifier); never the raw id."""

    __tablename__ = "ledger_subjects"
    id: Mapped[str] = mapped_column(String(80), primary_key=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class Consent(Base):
    __tablename__ = "ledger_consents"
    id: Mapped[str] = mapped_column(String(120), primary_key=True)
    subject_id: Mapped[str] = mapped_column(ForeignKey("ledger_subjects.id"))
    kind: Mapped[str] = mapped_column(String(16))
    purposes: Mapped[list[str]] = mapped_column(JSON)
    recipients: Mapped[list[str]] = mapped_column(JSON)
    categories: Mapped[list[str]] = mapped_column(JSON)
    policy_version: Mapped[str | None] = mapped_column(String(64))
    policy_hash: Mapped[str | None] = mapped_column(String(128))
    channel: Mapped[str | None] = mapped_column(String(64))
    given_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    withdrawn_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class Purpose(Base):
    """A declared purpose and the entity categories it needs (PIPL Art. 6)."""

    __tablename__ = "ledger_purposes"
    id: Mapped[str] = mapped_column(String(80), primary_key=True)
    zh: Mapped[str] = mapped_column(String(200))
    en: Mapped[str] = mapped_column(String(200))
    categories: Mapped[list[str]] = mapped_column(JSON)
    alone_insufficient: Mapped[bool] = mapped_column(Boolean, default=False)
    push: Mapped[bool] = mapped_column(Boolean, default=False)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class Provenance(Base):
    """Where a dataset came from: method, legal basis (PIPL Art. 13), source identity, upstream records."""

    __tablename__ = "ledger_provenance"
    id: Mapped[str] = mapped_column(String(120), primary_key=True)
    dataset: Mapped[str] = mapped_column(String(300))
    method: Mapped[str] = mapped_column(String(32))
    legal_basis: Mapped[str] = mapped_column(String(32))
    source_identity: Mapped[str] = mapped_column(String(300))
    upstream: Mapped[list[str]] = mapped_column(JSON)
    categories: Mapped[list[str]] = mapped_column(JSON)
    content_hash: Mapped[str | None] = mapped_column(String(128))
    recorded_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class Activity(Base):
    """A processing activity (record of processing, PIPL Art. 55-56)."""

    __tablename__ = "ledger_activities"
    id: Mapped[str] = mapped_column(String(120), primary_key=True)
    name: Mapped[str] = mapped_column(String(300))
    activity: Mapped[str] = mapped_column(String(32))
    purpose_id: Mapped[str] = mapped_column(String(80))
    categories: Mapped[list[str]] = mapped_column(JSON)
    legal_basis: Mapped[str] = mapped_column(String(32))
    recipient: Mapped[str | None] = mapped_column(String(300))
    recorded_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class AuditEntry(Base):
    """Append-only, hash-chained: hash = SHA-256(prev_hash | seq | at | actor | action | object | payload);
    mac = HMAC-SHA256 of the hash under the ledger integrity key, which the database does not hold (schema
    0002; entries written before it have none until a keyed entry seals them)."""

    __tablename__ = "ledger_audit"
    seq: Mapped[int] = mapped_column(
        BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=False
    )
    at: Mapped[str] = mapped_column(String(40))
    actor: Mapped[str] = mapped_column(String(200))
    action: Mapped[str] = mapped_column(String(64))
    object_type: Mapped[str] = mapped_column(String(32))
    object_id: Mapped[str] = mapped_column(String(200))
    payload: Mapped[str] = mapped_column(Text)
    prev_hash: Mapped[str] = mapped_column(String(64))
    hash: Mapped[str] = mapped_column(String(64))
    mac: Mapped[str | None] = mapped_column(String(64))
    key_id: Mapped[str | None] = mapped_column(String(16))


class ChainHead(Base):
    """One row: the last audit entry. Writers lock it, so appends are serialised across processes."""

    __tablename__ = "ledger_chain_head"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    seq: Mapped[int] = mapped_column(BigInteger)
    hash: Mapped[str] = mapped_column(String(64))


Index("ix_ledger_consents_subject_given", Consent.subject_id, Consent.given_at)
