"""Reading a group's jobs straight from Prefect's database, in the gateway's own process.

Through Prefect's client a status read is a second HTTP request inside the same process (routing,
middleware, JSON out and back in) around the lookup of one row; under load that framing was most of its
time (bench/RESULTS.md, row 6). These reads select the flow runs with Prefect's ORM models in one session
(portable SQLAlchemy: SQLite and PostgreSQL alike) and build the views before the session closes.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, NamedTuple
from uuid import UUID

import sqlalchemy as sa
from prefect.server import schemas
from prefect.server.database import provide_database_interface

from leruli_prefect.gateway.job_runs import job_view
from leruli_prefect.gateway.models import JobView, WatchedRun
from leruli_prefect.gateway.result_storage import StorageLookup, reference_of, with_locations

if TYPE_CHECKING:
    from sqlalchemy.ext.asyncio import AsyncSession


async def read_job_views(
    run_ids: Sequence[UUID], deployment_id: UUID, storage: StorageLookup | None = None
) -> list[JobView]:
    """The views of those of `run_ids` that are the group's jobs (others are left out, as if absent).

    With `storage` (the group's result storage, looked up only if a job has a record), each view says
    where its job's result record is."""
    if not run_ids:
        return []
    db = provide_database_interface()
    return await _views(
        db,
        sa.select(db.FlowRun).where(
            db.FlowRun.id.in_(list(run_ids)), db.FlowRun.deployment_id == deployment_id
        ),
        storage,
    )


async def read_job_view(
    run_id: UUID, deployment_id: UUID, storage: StorageLookup | None = None
) -> JobView | None:
    """The job's view, or None when it does not exist or is another group's (the same to the caller)."""
    views = await read_job_views([run_id], deployment_id, storage)
    return views[0] if views else None


async def list_job_views(
    deployment_id: UUID, limit: int, storage: StorageLookup | None = None
) -> list[JobView]:
    """The group's latest jobs first, as Prefect sorts by expected start time."""
    db = provide_database_interface()
    query = (
        sa.select(db.FlowRun)
        .where(db.FlowRun.deployment_id == deployment_id)
        .order_by(*schemas.sorting.FlowRunSort.EXPECTED_START_TIME_DESC.as_sql_sort())
        .limit(limit)
    )
    return await _views(db, query, storage)


class RunFacts(NamedTuple):
    """What the guard checks on a node's request about a run."""

    deployment_id: UUID | None
    labels: dict[str, Any]
    state_type: str | None  # Prefect's `StateType` value, e.g. "PENDING"


async def read_run_facts(run_id: UUID) -> RunFacts | None:
    """The run's deployment, labels and state type (one indexed query), or None if absent."""
    db = provide_database_interface()
    async with db.session_context() as session:
        return await read_run_facts_in(session, run_id)


async def read_run_facts_in(
    session: AsyncSession, run_id: UUID, *, for_update: bool = False
) -> RunFacts | None:
    """`read_run_facts` in `session`'s transaction; `for_update` locks the run's row (on PostgreSQL: on
    SQLite the transaction's write lock already keeps every other writer out)."""
    db = provide_database_interface()
    query = sa.select(db.FlowRun.deployment_id, db.FlowRun.labels, db.FlowRun.state_type).where(
        db.FlowRun.id == run_id
    )
    row = (await session.execute(query.with_for_update() if for_update else query)).first()
    if row is None:
        return None
    state_type = row[2].value if row[2] is not None else None
    return RunFacts(row[0], dict(row[1] or {}), state_type)


async def read_watched_runs(run_ids: Sequence[UUID], deployment_id: UUID) -> list[WatchedRun]:
    """What nodes watch of those of `run_ids` that are the group's (one query with the current state's
    message, for all of a node's running jobs: a Prefect read of each cost the server 12 ms)."""
    db = provide_database_interface()
    query = (
        sa.select(
            db.FlowRun.id, db.FlowRun.state_type, db.FlowRunState.message, db.FlowRun.labels, db.FlowRun.tags
        )
        .outerjoin(db.FlowRunState, db.FlowRun.state_id == db.FlowRunState.id)
        .where(db.FlowRun.id.in_(list(run_ids)), db.FlowRun.deployment_id == deployment_id)
    )
    async with db.session_context() as session:
        rows = (await session.execute(query)).all()
    return [
        WatchedRun(
            id=run_id,
            state_type=state_type.value if state_type is not None else None,
            state_message=message,
            labels=dict(labels or {}),
            tags=list(tags or []),
        )
        for run_id, state_type, message, labels, tags in rows
    ]


async def _views(db: Any, query: Any, storage: StorageLookup | None) -> list[JobView]:
    async with db.session_context() as session:
        # The current state comes with each run (Prefect loads it eagerly, one more SELECT for all).
        flow_runs = (await session.execute(query)).scalars().all()
        views = [job_view(flow_run) for flow_run in flow_runs]
        references = [reference_of(flow_run) for flow_run in flow_runs]
    return views if storage is None else await with_locations(views, references, storage)
