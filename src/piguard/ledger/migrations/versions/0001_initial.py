"""Initial ledger schema: subjects, consents, purposes, provenance, activities, hash-chained audit log.

Revision ID: 0001
Revises:
Create Date: 2026-11-23
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

TZ = sa.DateTime(timezone=True)
SEQ = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "ledger_subjects",
        sa.Column("id", sa.String(80), primary_key=True),
        sa.Column("created_at", TZ, nullable=False),
    )
    op.create_table(
        "ledger_consents",
        sa.Column("id", sa.String(120), primary_key=True),
        sa.Column("subject_id", sa.String(80), sa.ForeignKey("ledger_subjects.id"), nullable=False),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("purposes", sa.JSON(), nullable=False),
        sa.Column("recipients", sa.JSON(), nullable=False),
        sa.Column("categories", sa.JSON(), nullable=False),
        sa.Column("policy_version", sa.String(64)),
        sa.Column("policy_hash", sa.String(128)),
        sa.Column("channel", sa.String(64)),
        sa.Column("given_at", TZ, nullable=False),
        sa.Column("withdrawn_at", TZ),
        sa.CheckConstraint(
            "kind IN ('none','bundled','explicit','separate','guardian')", name="ck_ledger_consents_kind"
        ),
    )
    op.create_index("ix_ledger_consents_subject_given", "ledger_consents", ["subject_id", "given_at"])
    op.create_table(
        "ledger_purposes",
        sa.Column("id", sa.String(80), primary_key=True),
        sa.Column("zh", sa.String(200), nullable=False),
        sa.Column("en", sa.String(200), nullable=False),
        sa.Column("categories", sa.JSON(), nullable=False),
        sa.Column("alone_insufficient", sa.Boolean(), nullable=False),
        sa.Column("push", sa.Boolean(), nullable=False),
        sa.Column("created_at", TZ, nullable=False),
    )
    op.create_table(
        "ledger_provenance",
        sa.Column("id", sa.String(120), primary_key=True),
        sa.Column("dataset", sa.String(300), nullable=False),
        sa.Column("method", sa.String(32), nullable=False),
        sa.Column("legal_basis", sa.String(32), nullable=False),
        sa.Column("source_identity", sa.String(300), nullable=False),
        sa.Column("upstream", sa.JSON(), nullable=False),
        sa.Column("categories", sa.JSON(), nullable=False),
        sa.Column("content_hash", sa.String(128)),
        sa.Column("recorded_at", TZ, nullable=False),
    )
    op.create_table(
        "ledger_activities",
        sa.Column("id", sa.String(120), primary_key=True),
        sa.Column("name", sa.String(300), nullable=False),
        sa.Column("activity", sa.String(32), nullable=False),
        sa.Column("purpose_id", sa.String(80), nullable=False),
        sa.Column("categories", sa.JSON(), nullable=False),
        sa.Column("legal_basis", sa.String(32), nullable=False),
        sa.Column("recipient", sa.String(300)),
        sa.Column("recorded_at", TZ, nullable=False),
    )
    op.create_table(
        "ledger_audit",
        sa.Column("seq", SEQ, primary_key=True, autoincrement=False),
        sa.Column("at", sa.String(40), nullable=False),
        sa.Column("actor", sa.String(200), nullable=False),
        sa.Column("action", sa.String(64), nullable=False),
        sa.Column("object_type", sa.String(32), nullable=False),
        sa.Column("object_id", sa.String(200), nullable=False),
        sa.Column("payload", sa.Text(), nullable=False),
        sa.Column("prev_hash", sa.String(64), nullable=False),
        sa.Column("hash", sa.String(64), nullable=False),
    )
    op.create_table(
        "ledger_chain_head",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("seq", sa.BigInteger(), nullable=False),
        sa.Column("hash", sa.String(64), nullable=False),
    )
    op.execute(sa.text("INSERT INTO ledger_chain_head (id, seq, hash) VALUES (1, 0, '" + "0" * 64 + "')"))
    # Append-only in the database itself: updates and deletes of audit entries are refused.
    if op.get_bind().dialect.name == "sqlite":
        for event in ("UPDATE", "DELETE"):
            op.execute(
                f"CREATE TRIGGER ledger_audit_no_{event.lower()} BEFORE {event} ON ledger_audit "
                "BEGIN SELECT RAISE(ABORT, 'ledger_audit is append-only'); END"
            )
    elif op.get_bind().dialect.name == "postgresql":
        op.execute(
            "CREATE FUNCTION ledger_audit_append_only() RETURNS trigger LANGUAGE plpgsql AS "
            "$$ BEGIN RAISE EXCEPTION 'ledger_audit is append-only'; END $$"
        )
        op.execute(
            "CREATE TRIGGER ledger_audit_append_only BEFORE UPDATE OR DELETE ON ledger_audit "
            "FOR EACH ROW EXECUTE FUNCTION ledger_audit_append_only()"
        )


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute("DROP TRIGGER IF EXISTS ledger_audit_append_only ON ledger_audit")
        op.execute("DROP FUNCTION IF EXISTS ledger_audit_append_only()")
    for t in (
        "ledger_chain_head",
        "ledger_audit",
        "ledger_activities",
        "ledger_provenance",
        "ledger_purposes",
        "ledger_consents",
        "ledger_subjects",
    ):
        op.drop_table(t)
