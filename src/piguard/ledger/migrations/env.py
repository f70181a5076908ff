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
    # SQLite: one transaction for the whole upgrade, begun IMMEDIATE by the ledger (it holds the write lock
    # throughout), so a second process opening a fresh ledger waits and then finds it at head. Committing
    # per migration let that process in between two migrations and run the next one twice.
    transaction_per_migration=connection.dialect.name != "sqlite",
)
with context.begin_transaction():
    context.run_migrations()
