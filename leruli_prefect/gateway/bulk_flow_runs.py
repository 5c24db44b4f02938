"""Creating many flow runs of one deployment at once: set-based inserts in one transaction, bulk events.

Prefect creates a flow run with one insert and a full orchestration pass per run (46 runs/s on SQLite,
measured here even inside one transaction). A job queue that takes a thousand directories at a time needs
better, so this module goes below Prefect's public classes: it writes the same rows Prefect's
`create_flow_run_from_deployment` + `set_flow_run_state(Scheduled)` write, and emits the same
`prefect.flow-run.Scheduled` events. It is the only module that does so; it refuses to load on another
Prefect minor version, and tests/gateway/test_bulk_flow_runs.py proves that its runs read back through
Prefect's API exactly like runs created one by one, and that workers take them.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any
from uuid import UUID, uuid4

import prefect
import sqlalchemy as sa
from prefect.server import models, schemas
from prefect.server.database import provide_database_interface
from prefect.server.events.clients import PrefectServerEventsClient
from prefect.server.events.schemas.events import Event
from prefect.server.models.events import flow_run_state_change_event, state_payload
from prefect.utilities.names import generate_slug

PINNED_PREFECT = "3.9."
if not prefect.__version__.startswith(PINNED_PREFECT):  # pragma: no cover - guards an upgrade
    raise ImportError(
        f"leruli_prefect.gateway.bulk_flow_runs is written for Prefect {PINNED_PREFECT}x, not"
        f" {prefect.__version__}: re-check it against Prefect's create_flow_run and its orchestration first"
    )


@dataclass(frozen=True)
class RunRequest:
    parameters: dict[str, Any]
    tags: Sequence[str] = ()
    idempotency_key: str | None = None


@dataclass(frozen=True)
class RunCreated:
    id: UUID
    name: str
    existed: bool  # an earlier request with the same idempotency key made it


@dataclass
class _Batch:
    flow_runs: list[dict[str, Any]] = field(default_factory=list)
    states: list[dict[str, Any]] = field(default_factory=list)
    events: list[Event] = field(default_factory=list)


async def create_flow_runs(deployment_id: UUID, requests: Sequence[RunRequest]) -> list[RunCreated]:
    """Create one Scheduled flow run of the deployment per request, in one transaction.

    A request whose idempotency key already names a run of this flow (or an earlier request of this batch)
    creates nothing and answers that run.
    """
    db = provide_database_interface()
    # IMMEDIATE on SQLite: take the write lock first and wait for it, rather than fail to upgrade later.
    async with db.session_context(begin_transaction=True, with_for_update=True) as session:
        deployment = await models.deployments.read_deployment(session=session, deployment_id=deployment_id)
        if deployment is None:
            raise LookupError(f"no deployment {deployment_id}")
        existing = await _existing_runs(session, db, deployment.flow_id, requests)
        batch = _Batch()
        template: schemas.core.FlowRun | None = None
        labels: dict[str, Any] | None = None
        results: list[RunCreated] = []
        for request in requests:
            if request.idempotency_key in existing:
                run_id, name = existing[request.idempotency_key]
                results.append(RunCreated(run_id, name, existed=True))
                continue
            flow_run = _flow_run(deployment, request)
            if labels is None:
                # System labels depend only on the deployment, its flow and pool: the same for every run here.
                labels = await models.flow_runs.with_system_labels_for_flow_run(
                    session=session, flow_run=flow_run
                )
            flow_run.labels = {**labels, **(flow_run.labels or {})}
            template = template or flow_run
            _add(batch, flow_run)
            results.append(RunCreated(flow_run.id, flow_run.name, existed=False))
            if request.idempotency_key:
                existing[request.idempotency_key] = (flow_run.id, flow_run.name)
        if batch.flow_runs:
            await session.execute(sa.insert(db.FlowRun), batch.flow_runs)
            await session.execute(sa.insert(db.FlowRunState), batch.states)
            # flow_run.state_id points at flow_run_state, whose rows point back: set it once both exist; a
            # statement with `updated` given, since the ORM's onupdate default cannot be sent in a batch.
            table = db.FlowRun.__table__
            await session.execute(
                sa.update(table)
                .where(table.c.id == sa.bindparam("run_id"))
                .values(state_id=sa.bindparam("new_state_id"), updated=sa.bindparam("now")),
                [
                    {"run_id": state["flow_run_id"], "new_state_id": state["id"], "now": state["timestamp"]}
                    for state in batch.states
                ],
            )
            assert template is not None
            batch.events = await _scheduled_events(session, db, template, batch)
    async with PrefectServerEventsClient() as events:
        for event in batch.events:
            await events.emit(event)
    return results


async def _existing_runs(
    session: Any, db: Any, flow_id: UUID, requests: Sequence[RunRequest]
) -> dict[str, tuple[UUID, str]]:
    keys = [request.idempotency_key for request in requests if request.idempotency_key]
    found: dict[str, tuple[UUID, str]] = {}
    for start in range(0, len(keys), 500):  # keep IN lists within every database's parameter limit
        query = sa.select(db.FlowRun.idempotency_key, db.FlowRun.id, db.FlowRun.name).where(
            db.FlowRun.flow_id == flow_id, db.FlowRun.idempotency_key.in_(keys[start : start + 500])
        )
        for key, run_id, name in (await session.execute(query)).all():
            found[key] = (run_id, name)
    return found


def _flow_run(deployment: Any, request: RunRequest) -> schemas.core.FlowRun:
    """The run as `create_flow_run_from_deployment` builds it (parameters already validated by the caller)."""
    return schemas.core.FlowRun(
        id=uuid4(),
        name=generate_slug(2),
        flow_id=deployment.flow_id,
        deployment_id=deployment.id,
        deployment_version=deployment.version,
        parameters={**deployment.parameters, **request.parameters},
        tags=sorted(set(deployment.tags).union(request.tags)),
        infrastructure_document_id=deployment.infrastructure_document_id,
        work_queue_name=deployment.work_queue_name,
        work_queue_id=deployment.work_queue_id,
        idempotency_key=request.idempotency_key,
        state=schemas.states.Scheduled(),
    )


def _add(batch: _Batch, flow_run: schemas.core.FlowRun) -> None:
    state = flow_run.state
    assert state is not None
    state.state_details.flow_run_id = flow_run.id  # as set_flow_run_state records it
    created: datetime = state.timestamp
    row = flow_run.model_dump_for_orm(
        exclude={"created", "state", "estimated_run_time", "estimated_start_time_delta"}, exclude_unset=True
    )
    # What the orchestration of a first Scheduled state sets on the run (SetRunStateType, SetRunStateName,
    # SetRunStateTimestamp, SetExpectedStartTime, SetNextScheduledStartTime).
    scheduled_time = state.state_details.scheduled_time
    row.update(
        created=created,
        state_type=state.type,
        state_name=state.name,
        state_timestamp=state.timestamp,
        expected_start_time=scheduled_time,
        next_scheduled_start_time=scheduled_time,
    )
    batch.flow_runs.append(row)
    state_row = state.model_dump_for_orm()
    state_row.pop("data", None)
    batch.states.append({**state_row, "flow_run_id": flow_run.id})


async def _scheduled_events(
    session: Any, db: Any, template: schemas.core.FlowRun, batch: _Batch
) -> list[Event]:
    """The `prefect.flow-run.Scheduled` event of every run, built as Prefect's orchestration builds it.

    Prefect's own builder reads the flow, deployment and pool for each run; those are the same for the whole
    batch, so it runs once and the other events are copies with the run's own resource and state.
    """
    first_row = batch.flow_runs[0]
    orm_run = await session.get(db.FlowRun, first_row["id"])
    first_state = schemas.states.State.model_validate(batch.states[0])
    first = await flow_run_state_change_event(
        session=session,
        occurred=first_state.timestamp,
        flow_run=orm_run,
        initial_state_id=None,
        initial_state=None,
        validated_state_id=first_state.id,
        validated_state=first_state,
    )
    events = [first]
    for row, state_row in zip(batch.flow_runs[1:], batch.states[1:], strict=True):
        state = schemas.states.State.model_validate(state_row)
        resource = {
            **first.resource.root,
            "prefect.resource.id": f"prefect.flow-run.{row['id']}",
            "prefect.resource.name": row["name"],
            "prefect.state-timestamp": state.timestamp.isoformat(),
        }
        payload = {**first.payload, "validated_state": state_payload(state)}
        events.append(
            Event(
                occurred=state.timestamp,
                event=first.event,
                resource=resource,
                related=first.related,
                payload=payload,
                id=state.id,
            )
        )
    return events
