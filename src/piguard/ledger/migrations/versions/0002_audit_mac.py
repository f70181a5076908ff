"""Authenticated audit log: each entry carries an HMAC of its hash under the ledger integrity key (derived
from the ledger key, which is kept outside the database) and the id of that key.

Entries written under 0001 keep a NULL mac; the first keyed entry after them authenticates them through the
chain (its MAC covers its prev_hash), which ``Ledger.seal`` adds after replaying them.

Revision ID: 0002
Revises: 0001
Create Date: 2027-01-18
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # ADD COLUMN is an ALTER both SQLite and PostgreSQL do in place; the append-only triggers stay.
    op.add_column("ledger_audit", sa.Column("mac", sa.String(64), nullable=True))
    op.add_column("ledger_audit", sa.Column("key_id", sa.String(16), nullable=True))


def downgrade() -> None:
    # SQLite 3.35+ drops a column in place, so the append-only triggers survive the downgrade.
    op.drop_column("ledger_audit", "key_id")
    op.drop_column("ledger_audit", "mac")
