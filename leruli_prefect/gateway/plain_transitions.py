"""A node's claim, Running and Completed written by the gateway in a few statements, where Prefect's
orchestration would do nothing but keep its books.

Every job makes three state proposals. `node_states` orchestrates them in the gateway's process, but Prefect's
orchestration itself stays most of their cost: it loads the run through the ORM with its state, work queue and
work pool, steps through 18 to 21 rules (each an async context manager), most of which find nothing to do, and
reads the deployment for its concurrency limit. On Scheduled -> Pending (a claim), Pending -> Running and
Running -> Completed of a plain job the rules do only this: keep state timestamps unique, copy the scheduled
time into the claim, count the run, set its start, end and expected start times and its run time, store a
result reference as an artifact, and emit the state-change event. This module does the same with one read of
the run's columns (its state and deployment joined), the state and run writes, and Prefect's own event (built
by Prefect's `flow_run_state_change_event`).

Anything else goes to Prefect's orchestration, untouched: another transition (a second claim of a run
too), a forced one, a repeated transition id, a run whose deployment has a concurrency limit or is gone, a
run holding a concurrency lease, a subflow, a run that is resuming, a Pending run whose scheduled time is
still ahead.

This goes below Prefect's public classes: it refuses to load unless Prefect's rules for these transitions
are the ones it was written against (their names, and the sha256 of their sources and the code around
them), and tests/gateway/test_plain_transitions.py proves that it leaves the same rows, answer and event as
Prefect's orchestration. CPU per transition in one process (200 runs, the event's delivery left out):
Prefect's orchestration 10.5-11.7 ms for a claim, 7.5 for Running, 11.1-12.0 for Completed; here 4.8-5.5
for each (bench/RESULTS.md).
"""

from __future__ import annotations

import dataclasses
import hashlib
import inspect
import math
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any
from uuid import UUID

import prefect
import sqlalchemy as sa
from prefect.server import schemas
from prefect.server.database import orm_models, provide_database_interface
from prefect.server.events.clients import PrefectServerEventsClient
from prefect.server.models import artifacts
from prefect.server.models.events import TRUNCATE_STATE_MESSAGES_AT, flow_run_state_change_event, truncated_to
from prefect.server.orchestration import core_policy, global_policy, instrumentation_policies, rules
from prefect.server.schemas.core import Artifact, CreatedBy, FlowRunPolicy
from prefect.server.schemas.responses import OrchestrationResult, SetStateStatus, StateAcceptDetails
from prefect.types._datetime import now

from leruli_prefect.gateway.scheduled_runs_query import PINNED_PREFECT

if TYPE_CHECKING:
    from sqlalchemy.ext.asyncio import AsyncSession

_StateType = schemas.states.StateType
PLAIN = {
    (_StateType.SCHEDULED, _StateType.PENDING),  # a node's claim
    (_StateType.PENDING, _StateType.RUNNING),
    (_StateType.RUNNING, _StateType.COMPLETED),
}

# The rules Prefect 3.9.1 applies to the plain transitions, and the sha256 of their sources (with the
# orchestration and event code around them): any change must be read before this module is trusted again.
PREFECT_RULES = {
    (_StateType.SCHEDULED, _StateType.PENDING): [
        "PreserveDeploymentConcurrencyLeaseId",
        "PreventDuplicateTransitions",
        "SecureFlowConcurrencySlots",
        "CopyScheduledTime",
        "InstrumentFlowRunStateTransitions",
        "ReleaseFlowConcurrencySlots",
    ],
    (_StateType.PENDING, _StateType.RUNNING): [
        "PreserveDeploymentConcurrencyLeaseId",
        "PreventDuplicateTransitions",
        "ValidateDeploymentConcurrencyAtRunning",
        "RemoveDeploymentConcurrencyLeaseForOldClientVersions",
        "WaitForScheduledTime",
        "InstrumentFlowRunStateTransitions",
        "ReleaseFlowConcurrencySlots",
    ],
    (_StateType.RUNNING, _StateType.COMPLETED): [
        "PreserveDeploymentConcurrencyLeaseId",
        "PreventDuplicateTransitions",
        "InstrumentFlowRunStateTransitions",
        "ReleaseFlowConcurrencySlots",
    ],
}
PREFECT_GLOBAL_RULES = [
    "EnsureFlowRunStateTimestampIsUnique",
    "SetRunStateType",
    "SetRunStateName",
    "SetRunStateTimestamp",
    "SetStartTime",
    "SetEndTime",
    "IncrementRunTime",
    "SetExpectedStartTime",
    "SetNextScheduledStartTime",
    "UpdateStateDetails",
    "UpdateSubflowParentTask",
    "UpdateSubflowStateDetails",
    "IncrementFlowRunCount",
    "RemoveResumingIndicator",
]
PREFECT_SOURCES_SHA256 = "304b885bc3c81a5bc9a4e65631dffa16842c59b8d9369baf127e8c9db7e4b392"


@dataclass(frozen=True)
class _Run:
    """The flow run's columns that Prefect's bookkeeping and its state-change event read (the event's
    builder takes this in place of the ORM run: it reads these attributes only)."""

    id: UUID
    name: str
    flow_id: UUID
    deployment_id: UUID | None
    work_queue_id: UUID | None
    parent_task_run_id: UUID | None
    run_count: int
    start_time: datetime | None
    end_time: datetime | None
    total_run_time: timedelta
    expected_start_time: datetime | None
    empirical_policy: FlowRunPolicy
    tags: list[str]
    created_by: CreatedBy | None
    state_id: UUID


async def write_plain(
    session: AsyncSession, run_id: UUID, proposed: schemas.states.State
) -> OrchestrationResult | None:
    """Write `proposed` as Prefect's orchestration would, when the transition is plain; None: it is not,
    and Prefect's orchestration must decide it (nothing was written)."""
    db = provide_database_interface()
    found = (await session.execute(_read_run(db, run_id))).one_or_none()
    if found is None:
        return None
    run = _Run(**{name: getattr(found, name) for name in _Run.__dataclass_fields__})
    initial = schemas.states.State(
        id=found.state_id,
        type=found.state_type,
        name=found.state_name,
        timestamp=found.state_timestamp,
        message=found.state_message,
        state_details=found.state_details,
    )
    deployment_missing = run.deployment_id is not None and found.deployment_found is None
    if deployment_missing or not _is_plain(run, initial, proposed, found.deployment_limit_id):
        return None

    proposed = proposed.model_copy(deep=True)
    proposed.timestamp = await _unique_timestamp(session, db, run.id, proposed.timestamp)
    proposed.state_details.flow_run_id = run.id
    if proposed.type == _StateType.RUNNING:  # as ValidateDeploymentConcurrencyAtRunning copies it
        proposed.state_details.deployment_concurrency_lease_id = None
    if initial.is_scheduled() and not proposed.state_details.scheduled_time:  # CopyScheduledTime
        proposed.state_details.scheduled_time = initial.state_details.scheduled_time
    payload = proposed.model_dump_for_orm()
    data = payload.pop("data", None)
    if data is not None and not (isinstance(data, dict) and data.get("type") == "unpersisted"):
        artifact = Artifact.from_result(data)
        artifact.flow_run_id = run.id
        await artifacts.create_artifact(session, artifact)
        payload["result_artifact_id"] = artifact.id
    state = db.FlowRunState(flow_run_id=run.id, **payload)
    session.add(state)
    await session.flush()
    run_count = run.run_count + (1 if proposed.type == _StateType.RUNNING else 0)
    await session.execute(
        sa.update(db.FlowRun)
        .where(db.FlowRun.id == run.id)
        .values(
            state_id=state.id,
            state_type=proposed.type,
            state_name=proposed.name,
            state_timestamp=proposed.timestamp,
            updated=now("UTC"),
            **_books(run, initial, proposed),
            run_count=run_count,
        )
    )
    validated = schemas.states.State.from_orm_without_result(state, with_data=data)
    await _emit(session, run, run_count, initial, validated)
    return OrchestrationResult(state=validated, status=SetStateStatus.ACCEPT, details=StateAcceptDetails())


def _read_run(db: Any, run_id: UUID) -> sa.Select[Any]:
    run, state = db.FlowRun, db.FlowRunState
    columns = [getattr(run, name) for name in _Run.__dataclass_fields__ if name != "id"]
    return (
        sa.select(
            run.id,
            *columns,
            state.type.label("state_type"),
            state.name.label("state_name"),
            state.timestamp.label("state_timestamp"),
            state.message.label("state_message"),
            state.state_details,
            db.Deployment.id.label("deployment_found"),
            db.Deployment.concurrency_limit_id.label("deployment_limit_id"),
        )
        .join(state, state.id == run.state_id)
        .outerjoin(db.Deployment, db.Deployment.id == run.deployment_id)
        .where(run.id == run_id)
        .with_for_update(of=run)  # PostgreSQL: one proposal for a run at a time, as Prefect locks it
    )


def _is_plain(
    run: _Run,
    initial: schemas.states.State,
    proposed: schemas.states.State,
    deployment_limit_id: UUID | None,
) -> bool:
    if (initial.type, proposed.type) not in PLAIN:
        return False
    same_transition = initial.state_details.transition_id
    if same_transition is not None and same_transition == proposed.state_details.transition_id:
        return False  # Prefect rejects a repeated transition
    if deployment_limit_id is not None or initial.state_details.deployment_concurrency_lease_id:
        return False  # Prefect's concurrency rules have work to do
    if proposed.state_details.deployment_concurrency_lease_id is not None:
        return False
    if run.parent_task_run_id is not None or run.empirical_policy.resuming:
        return False
    if proposed.type == _StateType.RUNNING and _too_early(initial):
        return False  # WaitForScheduledTime delays it
    return True


def _too_early(pending: schemas.states.State) -> bool:
    """Prefect's WaitForScheduledTime: the delay, rounded as Prefect rounds it, is still positive."""
    scheduled = pending.state_details.scheduled_time
    if not scheduled:
        return False
    delay = scheduled - now("UTC")
    return math.floor(delay.total_seconds()) + round(delay.microseconds / 1e6) > 0


async def _unique_timestamp(session: AsyncSession, db: Any, run_id: UUID, timestamp: datetime) -> datetime:
    """Prefect's EnsureFlowRunStateTimestampIsUnique: the first free microsecond from `timestamp` on."""
    state = db.FlowRunState
    while await session.scalar(
        sa.select(state.timestamp).where(state.flow_run_id == run_id, state.timestamp == timestamp).limit(1)
    ):
        timestamp += timedelta(microseconds=1)
    return timestamp


def _books(run: _Run, initial: schemas.states.State, proposed: schemas.states.State) -> dict[str, Any]:
    """Prefect's global transforms for these transitions: start and end times, run time, expected start."""
    at = proposed.timestamp
    books: dict[str, Any] = {}
    start_time = run.start_time
    if proposed.is_running() and start_time is None:
        books["start_time"] = start_time = at
    if proposed.is_final() and not run.end_time:
        if not start_time:
            books["start_time"] = at
        books["end_time"] = at
    if initial.is_running():
        books["total_run_time"] = run.total_run_time + (at - initial.timestamp)
    if not run.expected_start_time:
        books["expected_start_time"] = at
    if initial.is_scheduled():
        books["next_scheduled_start_time"] = None
    return books


async def _emit(
    session: AsyncSession,
    run: _Run,
    run_count: int,
    initial: schemas.states.State,
    validated: schemas.states.State,
) -> None:
    """Prefect's InstrumentFlowRunStateTransitions, with the run as it is after the transition."""
    initial = initial.model_copy()
    initial.message = truncated_to(TRUNCATE_STATE_MESSAGES_AT, initial.message)
    validated = validated.model_copy()
    validated.message = truncated_to(TRUNCATE_STATE_MESSAGES_AT, validated.message)
    after = dataclasses.replace(run, run_count=run_count)
    async with PrefectServerEventsClient() as events:
        await events.emit(
            await flow_run_state_change_event(
                session=session,
                occurred=validated.timestamp,
                flow_run=after,  # type: ignore[arg-type]  # the attributes it reads (see _Run)
                initial_state_id=initial.id,
                initial_state=initial,
                validated_state_id=validated.id,
                validated_state=validated,
            )
        )


def prefect_sources() -> str:
    """The sources this module repeats: Prefect's orchestration of a flow run's state, the rules it applies
    to the plain transitions, and its state-change event."""
    from prefect.server.models import events as event_models
    from prefect.server.models import flow_runs

    parts: list[Any] = [
        flow_runs.set_flow_run_state,
        rules.FlowOrchestrationContext._validate_proposed_state,
        rules.BaseUniversalTransform,
        instrumentation_policies.InstrumentFlowRunStateTransitions,
        event_models.flow_run_state_change_event,
        event_models._flow_run_related_resources_from_orm,
        orm_models.FlowRun.set_state,
    ]
    names = {name for transition in PREFECT_RULES.values() for name in transition} | set(PREFECT_GLOBAL_RULES)
    for name in sorted(names):
        parts.append(
            getattr(core_policy, name, None)
            or getattr(global_policy, name, None)
            or getattr(instrumentation_policies, name)
        )
    return "\n".join(inspect.getsource(part) for part in parts)


def compiled_rules() -> dict[tuple[Any, Any], list[str]]:
    """The rules Prefect compiles for each plain transition."""
    return {
        transition: [
            rule.__name__ for rule in core_policy.CoreFlowPolicy.compile_transition_rules(*transition)
        ]
        for transition in PLAIN
    }


def global_rules() -> dict[tuple[Any, Any], list[str]]:
    return {
        transition: [
            rule.__name__ for rule in global_policy.GlobalFlowPolicy.compile_transition_rules(*transition)
        ]
        for transition in PLAIN
    }


def check_prefect(
    sources: str, compiled: dict[tuple[Any, Any], list[str]], global_names: dict[tuple[Any, Any], list[str]]
) -> None:
    if compiled != PREFECT_RULES or any(names != PREFECT_GLOBAL_RULES for names in global_names.values()):
        raise ImportError("Prefect's rules for a claim, Running and Completed changed: read them again")
    if hashlib.sha256(sources.encode()).hexdigest() != PREFECT_SOURCES_SHA256:
        raise ImportError("Prefect's orchestration of a claim, Running and Completed changed: read it again")


if not prefect.__version__.startswith(PINNED_PREFECT):  # pragma: no cover - guards an upgrade
    raise ImportError(f"plain_transitions is written for Prefect {PINNED_PREFECT}x")
check_prefect(prefect_sources(), compiled_rules(), global_rules())
