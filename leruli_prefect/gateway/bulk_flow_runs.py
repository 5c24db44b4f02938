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

import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any
from uuid import UUID, uuid4

import prefect
import sqlalchemy as sa
from prefect.server import models, schemas
from prefect.server.database import provide_database_interface
from prefect.server.events import messaging
from prefect.server.models.events import _flow_run_resource_data_cache, flow_run_state_change_event
from prefect.settings import PREFECT_EVENTS_MAXIMUM_SIZE_BYTES
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


# Prefect's own factory of state ids (time-ordered UUIDs), taken from its schema rather than imported.
_new_state_id = schemas.states.State.model_fields["id"].default_factory
_IN_CHUNK = 500  # ids per IN list: within every database's parameter limit


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
        rows: _RowMaker | None = None
        results: list[RunCreated] = []
        for request in requests:
            if request.idempotency_key in existing:
                run_id, name = existing[request.idempotency_key]
                results.append(RunCreated(run_id, name, existed=True))
                continue
            if rows is None:
                rows = await _RowMaker.for_deployment(session, deployment, request)
            run_row, state_row = rows.make(request)
            batch.flow_runs.append(run_row)
            batch.states.append(state_row)
            results.append(RunCreated(run_row["id"], run_row["name"], existed=False))
            if request.idempotency_key:
                existing[request.idempotency_key] = (run_row["id"], run_row["name"])
        events: list[tuple[str, str, bytes]] = []
        if batch.flow_runs:
            await session.execute(sa.insert(db.FlowRun), batch.flow_runs)
            await session.execute(sa.insert(db.FlowRunState), batch.states)
            await _point_runs_at_their_states(session, db, batch)
            events = await _scheduled_events(session, db, batch)
    await _publish(events)
    return results


class _RowMaker:
    """Rows of new runs as `create_flow_run_from_deployment` + a first Scheduled state would write them.

    The first run is built with Prefect's own schemas; every other row is a copy of its rows with the
    values that differ per run (ids, name, parameters, tags, key, times): a pydantic model per run cost
    more than the database writes.
    """

    def __init__(self, run_row: dict[str, Any], state_row: dict[str, Any], deployment: Any) -> None:
        self._run_row = run_row
        self._state_row = state_row
        self._deployment = deployment
        self._details = state_row["state_details"]

    @classmethod
    async def for_deployment(cls, session: Any, deployment: Any, request: RunRequest) -> _RowMaker:
        flow_run = _flow_run(deployment, request)
        # System labels depend only on the deployment, its flow and pool: the same for every run here.
        labels = await models.flow_runs.with_system_labels_for_flow_run(session=session, flow_run=flow_run)
        flow_run.labels = {**labels, **(flow_run.labels or {})}
        state = flow_run.state
        assert state is not None
        run_row = flow_run.model_dump_for_orm(
            exclude={"created", "state", "estimated_run_time", "estimated_start_time_delta"},
            exclude_unset=True,
        )
        state_row = state.model_dump_for_orm()
        state_row.pop("data", None)
        return cls(run_row, state_row, deployment)

    def make(self, request: RunRequest) -> tuple[dict[str, Any], dict[str, Any]]:
        deployment = self._deployment
        run_id = uuid4()
        timestamp = datetime.now(UTC)
        run_row = {
            **self._run_row,
            "id": run_id,
            "name": generate_slug(2),
            "parameters": {**deployment.parameters, **request.parameters},
            "tags": sorted(set(deployment.tags).union(request.tags)),
            "idempotency_key": request.idempotency_key,
            # What the orchestration of a first Scheduled state sets on the run (SetRunStateType,
            # SetRunStateName, SetRunStateTimestamp, SetExpectedStartTime, SetNextScheduledStartTime).
            "created": timestamp,
            "state_type": self._state_row["type"],
            "state_name": self._state_row["name"],
            "state_timestamp": timestamp,
            "expected_start_time": timestamp,
            "next_scheduled_start_time": timestamp,
        }
        state_row = {
            **self._state_row,
            "id": _new_state_id(),
            "timestamp": timestamp,
            # As set_flow_run_state records it; a Scheduled state made now is scheduled for now.
            "state_details": self._details.model_copy(
                update={"flow_run_id": run_id, "scheduled_time": timestamp}
            ),
            "flow_run_id": run_id,
        }
        return run_row, state_row


async def _point_runs_at_their_states(session: Any, db: Any, batch: _Batch) -> None:
    """Set flow_run.state_id once both rows exist (each points at the other), one statement per chunk.

    `updated` is given: the ORM's onupdate default is not applied to a statement like this one.
    """
    runs = db.FlowRun.__table__
    states = db.FlowRunState.__table__
    state_of_run = (
        sa.select(states.c.id).where(states.c.flow_run_id == runs.c.id).scalar_subquery()
    )  # exactly one: the runs are new
    updated = batch.states[-1]["timestamp"]
    ids = [row["id"] for row in batch.flow_runs]
    for start in range(0, len(ids), _IN_CHUNK):
        await session.execute(
            sa.update(runs)
            .where(runs.c.id.in_(ids[start : start + _IN_CHUNK]))
            .values(state_id=state_of_run, updated=updated)
        )


async def _existing_runs(
    session: Any, db: Any, flow_id: UUID, requests: Sequence[RunRequest]
) -> dict[str, tuple[UUID, str]]:
    keys = [request.idempotency_key for request in requests if request.idempotency_key]
    found: dict[str, tuple[UUID, str]] = {}
    for start in range(0, len(keys), _IN_CHUNK):
        query = sa.select(db.FlowRun.idempotency_key, db.FlowRun.id, db.FlowRun.name).where(
            db.FlowRun.flow_id == flow_id, db.FlowRun.idempotency_key.in_(keys[start : start + _IN_CHUNK])
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


async def _scheduled_events(session: Any, db: Any, batch: _Batch) -> list[tuple[str, str, bytes]]:
    """The `prefect.flow-run.Scheduled` event of every run, as Prefect's orchestration builds and sends it.

    Prefect's own builder reads the flow, deployment and pool for each run; those are the same for the whole
    batch, so it runs once, and the other events are copies of its JSON with the run's own resource, state
    id and time (the state payload of a new Scheduled state is the same for every run). What it read is
    also kept for the batch's runs as Prefect keeps it for a run it creates (`_remember_related`).
    """
    first_row, first_state_row = batch.flow_runs[0], batch.states[0]
    orm_run = await session.get(db.FlowRun, first_row["id"])
    first_state = schemas.states.State.model_validate(first_state_row)
    first = await flow_run_state_change_event(
        session=session,
        occurred=first_state.timestamp,
        flow_run=orm_run,
        initial_state_id=None,
        initial_state=None,
        validated_state_id=first_state.id,
        validated_state=first_state,
    )
    _remember_related(batch)
    shape = first.receive().model_dump(mode="json")
    events = []
    for row, state_row in zip(batch.flow_runs, batch.states, strict=True):
        timestamp = state_row["timestamp"]
        resource = {
            **shape["resource"],
            "prefect.resource.id": f"prefect.flow-run.{row['id']}",
            "prefect.resource.name": row["name"],
            "prefect.state-timestamp": timestamp.isoformat(),
        }
        event_id = str(state_row["id"])  # like Prefect's, the event's id is the state's
        event = {**shape, "id": event_id, "occurred": _json_time(timestamp), "resource": resource}
        events.append((event_id, shape["event"], json.dumps(event).encode()))
    return events


def _remember_related(batch: _Batch) -> None:
    """Keep the first run's related resources (flow, deployment, queue, pool) for every run of the batch.

    Prefect's event builder caches them per run (`_flow_run_resource_data_cache`, 5 minutes, 1000 runs),
    filled when it builds a run's first event: a run created one by one has them from its Scheduled event,
    so its claim's event reads nothing. Only the first run of a batch went through the builder; without
    this each of the others' claims read the flow, deployment, work queue and pool again. The cache holds
    1000 runs, so it gets the batch's first ones: those scheduled first, claimed first.
    """
    first_data = _flow_run_resource_data_cache.get(batch.flow_runs[0]["id"])
    if not first_data:
        return
    room = getattr(_flow_run_resource_data_cache, "maxsize", len(batch.flow_runs))
    for row in batch.flow_runs[1:room]:
        own = {"id": str(row["id"]), "name": row["name"], "tags": row["tags"] or [], "role": "flow-run"}
        _flow_run_resource_data_cache[row["id"]] = {**first_data, "flow-run": own}


def _json_time(moment: datetime) -> str:
    """A time as pydantic writes it in JSON (`...Z` for UTC)."""
    text = moment.astimezone(UTC).isoformat()
    return text.removesuffix("+00:00") + "Z"


async def _publish(events: list[tuple[str, str, bytes]]) -> None:
    """Send the events as `PrefectServerEventsClient.emit` does, minus two pydantic round trips per event."""
    if not events:
        return
    limit = PREFECT_EVENTS_MAXIMUM_SIZE_BYTES.value()
    async with messaging.create_event_publisher() as publisher:
        for event_id, name, encoded in events:
            if len(encoded) <= limit:  # Prefect's publisher refuses bigger ones (these are ~1 KB)
                await publisher.publish_data(encoded, {"id": event_id, "event": name})
