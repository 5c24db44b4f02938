"""The runs of a batch have their events' related resources at hand, as a run Prefect creates has: their
claim's event reads nothing, and says what it would have said after reading the flow, deployment and pool
(Prefect's database in this process; the events of a real server are compared in test_bulk_flow_runs.py)."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from prefect.server import models, schemas
from prefect.server.database import dependencies
from prefect.server.models.events import (
    _flow_run_related_resources_from_orm,
    _flow_run_resource_data_cache,
)
from prefect.settings import PREFECT_API_DATABASE_CONNECTION_URL, temporary_settings

from leruli_prefect.gateway.bulk_flow_runs import RunRequest, create_flow_runs

SPEC = {"image": "leruli-busybox:1.0", "command": "true", "bucket": "leruli-" + "f" * 32}


@pytest.fixture
def fresh_database(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    fresh = dict.fromkeys(("database_config", "query_components", "orm", "interface_class"))
    monkeypatch.setattr(dependencies, "MODELS_DEPENDENCIES", fresh)
    with temporary_settings({PREFECT_API_DATABASE_CONNECTION_URL: f"sqlite+aiosqlite:///{tmp_path}/p.db"}):
        yield


async def _deployment(session: Any) -> Any:
    flow = await models.flows.create_flow(session, schemas.core.Flow(name="job", tags=["flow-tag"]))
    pool = await models.workers.create_work_pool(
        session, schemas.actions.WorkPoolCreate(name="pool", type="leruli")
    )
    queue = await models.workers.create_work_queue(
        session, pool.id, schemas.actions.WorkQueueCreate(name="queue")
    )
    return await models.deployments.create_deployment(
        session,
        schemas.core.Deployment(
            name="jobs", flow_id=flow.id, work_queue_id=queue.id, work_queue_name="queue", tags=["group"]
        ),
    )


def test_a_batchs_runs_have_their_related_resources_at_hand(fresh_database: None) -> None:
    async def steps() -> list[tuple[Any, Any, int]]:
        db = dependencies.provide_database_interface()
        await db.create_db()
        async with db.session_context(begin_transaction=True) as session:
            deployment = await _deployment(session)
        requests = [RunRequest(parameters=SPEC, tags=[f"owner:{n}"]) for n in range(3)]
        created = await create_flow_runs(deployment.id, requests)
        statements: list[str] = []
        sa.event.listen((await db.engine()).sync_engine, "before_cursor_execute", _record(statements))
        seen = []
        async with db.session_context() as session:
            for run in created:
                orm_run = await session.get(db.FlowRun, run.id)
                assert run.id in _flow_run_resource_data_cache
                before = len(statements)
                kept = await _flow_run_related_resources_from_orm(session=session, flow_run=orm_run)
                read = len(statements) - before
                del _flow_run_resource_data_cache[run.id]
                built = await _flow_run_related_resources_from_orm(session=session, flow_run=orm_run)
                seen.append((kept, built, read))
        await (await db.engine()).dispose()
        return seen

    for kept, built, read in asyncio.run(steps()):
        assert read == 0
        assert [dict(resource) for resource in kept] == [dict(resource) for resource in built]
        assert any(resource.get("prefect.resource.role") == "work-pool" for resource in kept)


def _record(statements: list[str]) -> Any:
    def record(_conn: Any, _cursor: Any, statement: str, *_: Any) -> None:
        statements.append(statement)

    return record
