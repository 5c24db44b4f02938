"""Alembic environment: runs on the connection the gateway hands over (see `db.upgrade_database`)."""

from __future__ import annotations

from alembic import context

from leruli_prefect.gateway.db import VERSION_TABLE, Base

connection = context.config.attributes["connection"]
# Our own version table: on a shared PostgreSQL database Prefect's migrations own `alembic_version`.
context.configure(connection=connection, target_metadata=Base.metadata, version_table=VERSION_TABLE)
with context.begin_transaction():
    context.run_migrations()
