"""Rights requests: requests and their one-time codes, staff accounts, bearer tokens, subjects'
personalisation preferences and rate-limit counters (piguard.rights.tables is the code's view).

Revision ID: 0003_rights
Revises: 0001
Create Date: 2026-12-07
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003_rights"
down_revision = "0002"
branch_labels = None
depends_on = None

TZ = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "rights_requests",
        sa.Column("id", sa.String(40), primary_key=True),
        sa.Column("type", sa.String(32), nullable=False),
        sa.Column("status", sa.String(32), nullable=False),
        sa.Column("subject", sa.String(80), nullable=False),
        sa.Column("identifier_kind", sa.String(16), nullable=False),
        sa.Column("contact", sa.String(80), nullable=False),
        sa.Column("sealed", sa.LargeBinary()),
        sa.Column("details", sa.JSON(), nullable=False),
        sa.Column("created_at", TZ, nullable=False),
        sa.Column("code_hash", sa.String(64)),
        sa.Column("code_expires", TZ),
        sa.Column("code_attempts", sa.Integer(), nullable=False),
        sa.Column("verified_at", TZ),
        sa.Column("due", sa.Date()),
        sa.Column("due_provisional", sa.Boolean(), nullable=False),
        sa.Column("decided_at", TZ),
        sa.Column("decided_by", sa.String(120)),
        sa.Column("reason", sa.String(64)),
        sa.Column("reason_text", sa.Text()),
        sa.Column("outcome", sa.JSON()),
        sa.Column("closed_at", TZ),
    )
    op.create_index("ix_rights_requests_subject", "rights_requests", ["subject"])
    op.create_index("ix_rights_requests_status_due", "rights_requests", ["status", "due"])
    op.create_table(
        "rights_staff",
        sa.Column("name", sa.String(120), primary_key=True),
        sa.Column("role", sa.String(16), nullable=False),
        sa.Column("password_hash", sa.String(200)),
        sa.Column("created_at", TZ, nullable=False),
        sa.Column("disabled_at", TZ),
    )
    op.create_table(
        "rights_tokens",
        sa.Column("digest", sa.String(64), primary_key=True),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("subject", sa.String(80)),
        sa.Column("staff", sa.String(120)),
        sa.Column("created_at", TZ, nullable=False),
        sa.Column("expires_at", TZ),
        sa.Column("revoked_at", TZ),
    )
    op.create_table(
        "rights_preferences",
        sa.Column("subject", sa.String(80), primary_key=True),
        sa.Column("personalization", sa.Boolean(), nullable=False),
        sa.Column("targeted_push", sa.Boolean(), nullable=False),
        sa.Column("updated_at", TZ, nullable=False),
    )
    op.create_table(
        "rights_throttle",
        sa.Column(
            "id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), primary_key=True, autoincrement=True
        ),
        sa.Column("bucket", sa.String(16), nullable=False),
        sa.Column("key", sa.String(64), nullable=False),
        sa.Column("at", TZ, nullable=False),
    )
    op.create_index("ix_rights_throttle_bucket_key_at", "rights_throttle", ["bucket", "key", "at"])


def downgrade() -> None:
    for t in ("rights_throttle", "rights_preferences", "rights_tokens", "rights_staff", "rights_requests"):
        op.drop_table(t)
