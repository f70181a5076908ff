"""The rights service's tables, beside the ledger's in the same database (migration ``0003_rights`` creates
them). SQLAlchemy Core: the service reads and writes rows, it never needs an ORM session.

Nothing here holds a raw contact, code or token: contacts and subjects are keyed pseudonyms, codes are
HMACs, tokens SHA-256 digests, and the raw identifier a store needs to find the person's rows is sealed
(AES-GCM) and wiped when the request closes."""

from __future__ import annotations

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Column,
    Date,
    DateTime,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Table,
    Text,
)

metadata = MetaData()
TZ = DateTime(timezone=True)

requests = Table(
    "rights_requests",
    metadata,
    Column("id", String(40), primary_key=True),
    Column("type", String(32), nullable=False),
    Column("status", String(32), nullable=False),
    Column("subject", String(80), nullable=False),  # keyed pseudonym of the identifier
    Column("identifier_kind", String(16), nullable=False),
    Column("contact", String(80), nullable=False),  # keyed pseudonym of where the code went
    Column("sealed", LargeBinary),  # AES-GCM(raw identifier), wiped when the request closes
    Column("details", JSON, nullable=False),
    Column("created_at", TZ, nullable=False),
    Column("code_hash", String(64)),
    Column("code_expires", TZ),
    Column("code_attempts", Integer, nullable=False, default=0),
    Column("verified_at", TZ),
    Column("due", Date),
    Column("due_provisional", Boolean, nullable=False, default=False),
    Column("decided_at", TZ),
    Column("decided_by", String(120)),
    Column("reason", String(64)),
    Column("reason_text", Text),
    Column("outcome", JSON),
    Column("closed_at", TZ),
)
Index("ix_rights_requests_subject", requests.c.subject)
Index("ix_rights_requests_status_due", requests.c.status, requests.c.due)

staff = Table(
    "rights_staff",
    metadata,
    Column("name", String(120), primary_key=True),
    Column("role", String(16), nullable=False),
    Column("password_hash", String(200)),
    Column("created_at", TZ, nullable=False),
    Column("disabled_at", TZ),
)

tokens = Table(
    "rights_tokens",
    metadata,
    Column("digest", String(64), primary_key=True),  # SHA-256 of the bearer token
    Column("kind", String(16), nullable=False),  # subject | staff | session
    Column("subject", String(80)),
    Column("staff", String(120)),
    Column("created_at", TZ, nullable=False),
    Column("expires_at", TZ),
    Column("revoked_at", TZ),
)

preferences = Table(
    "rights_preferences",
    metadata,
    Column("subject", String(80), primary_key=True),
    Column("personalization", Boolean, nullable=False),
    Column("targeted_push", Boolean, nullable=False),
    Column("updated_at", TZ, nullable=False),
)

# One row per counted event (a code sent, a login tried), by bucket and keyed digest of who did it; the
# service counts rows inside the window, so limits hold across worker processes.
throttle = Table(
    "rights_throttle",
    metadata,
    Column("id", BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True),
    Column("bucket", String(16), nullable=False),
    Column("key", String(64), nullable=False),
    Column("at", TZ, nullable=False),
)
Index("ix_rights_throttle_bucket_key_at", throttle.c.bucket, throttle.c.key, throttle.c.at)
