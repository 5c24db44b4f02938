"""The gateway's tables come from Alembic migrations that match the models and keep the data."""

from __future__ import annotations

import asyncio
from pathlib import Path

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import inspect, text

from leruli_prefect.gateway.db import VERSION_TABLE, Base, make_engine, upgrade_database


def _diff(connection) -> list[object]:  # noqa: ANN001 - a sync Connection
    context = MigrationContext.configure(connection, opts={"version_table": VERSION_TABLE})
    return compare_metadata(context, Base.metadata)


def test_migrations_build_exactly_the_models_and_keep_rows(tmp_path: Path) -> None:
    async def scenario() -> tuple[list[object], list[str], int]:
        engine = make_engine(f"sqlite+aiosqlite:///{tmp_path / 'gateway.db'}")
        await upgrade_database(engine)
        async with engine.begin() as connection:
            await connection.execute(
                text(
                    "INSERT INTO leruli_groups (name, token_hash, compute_secret_hash, work_pool,"
                    " deployment_id, flow_id, created_at)"
                    " VALUES ('g', 't', 'c', 'leruli-g', 'd', 'f', '2026-01-01')"
                )
            )
        await upgrade_database(engine)  # a restart upgrades again: nothing changes, nothing is lost
        async with engine.connect() as connection:
            differences = await connection.run_sync(_diff)
            tables = await connection.run_sync(lambda sync: inspect(sync).get_table_names())
            groups = (await connection.execute(text("SELECT count(*) FROM leruli_groups"))).scalar_one()
        await engine.dispose()
        return differences, tables, groups

    differences, tables, groups = asyncio.run(scenario())
    assert differences == []
    assert set(tables) == {
        "leruli_groups",
        "leruli_users",
        "leruli_audit",
        "leruli_codes",
        "leruli_code_buckets",
        VERSION_TABLE,
    }
    assert groups == 1
