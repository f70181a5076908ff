"""Alembic environment for the ledger. piguard runs migrations itself (``Ledger.open``) and passes the
connection in ``config.attributes['connection']``; there is no alembic.ini to edit."""

from __future__ import annotations

from alembic import context

from piguard.ledger.models import Base

VERSION_TABLE = "ledger_schema_version"

connection = context.config.attributes["connection"]
context.configure(
    connection=connection,
    target_metadata=Base.metadata,
    version_table=VERSION_TABLE,
    transaction_per_migration=True,
)
with context.begin_transaction():
    context.run_migrations()
