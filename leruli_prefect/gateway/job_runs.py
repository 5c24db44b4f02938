"""Groups and jobs as Prefect objects: a group's work pool and deployment, a job's flow run.

Changes go through Prefect's public client, against the in-process Prefect app; many runs are created at once
by `bulk_flow_runs`, and reads go straight to the database (`job_reads`).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any
from uuid import UUID

from prefect.client.schemas.actions import WorkPoolCreate
from prefect.client.schemas.objects import StateType
from prefect.exceptions import ObjectNotFound
from prefect.states import Cancelled, Cancelling

from leruli_prefect.gateway import bulk_flow_runs
from leruli_prefect.gateway.models import JobView
from leruli_prefect.job_spec import (
    CANCEL_TAG,
    FLOW_NAME,
    OWNER_TAG_PREFIX,
    JobSpec,
    deployment_name,
    owner_tag,
    pool_name,
)

if TYPE_CHECKING:
    from prefect.client.orchestration import PrefectClient
    from prefect.client.schemas.objects import FlowRun

WORKER_TYPE = "leruli-docker"
PRUNED_TAG = "leruli-pruned"
# States after which a job's reason is worth showing (the message of a Completed state is noise).
_REASON_STATES = {"FAILED", "CRASHED", "CANCELLED", "CANCELLING"}
FINAL_STATES = {StateType.COMPLETED, StateType.FAILED, StateType.CRASHED, StateType.CANCELLED}
# Runs no node has claimed: cancelling them ends them at once. A claimed (Pending) or Running run goes to
# Cancelling, from which Prefect lets only Cancelled follow, so its node stops it.
_UNCLAIMED = {StateType.SCHEDULED, StateType.PAUSED}


async def provision_group(
    client: PrefectClient, *, group: str, base_job_template: dict[str, Any]
) -> tuple[UUID, UUID]:
    """Create the group's work pool and its deployment of `leruli_job`; returns (deployment id, flow id)."""
    pool = pool_name(group)
    await client.create_work_pool(
        WorkPoolCreate(name=pool, type=WORKER_TYPE, base_job_template=base_job_template),
        overwrite=True,
    )
    flow_id = await client.create_flow_from_name(FLOW_NAME)
    deployment_id = await client.create_deployment(
        flow_id=flow_id,
        name=deployment_name(group),
        work_pool_name=pool,
        description=f"Container jobs of group {group}, run by leruli-docker nodes.",
        parameter_openapi_schema=JobSpec.model_json_schema(),
        enforce_parameter_schema=True,
        tags=[f"leruli-group:{group}"],
    )
    return deployment_id, flow_id


def scoped_idempotency_key(deployment_id: UUID, key: str | None) -> str | None:
    """Prefect scopes idempotency keys by flow, which every group shares: scope them by group too, or one
    group's key could answer another group's job."""
    return f"{deployment_id}:{key}" if key else None


async def create_job_runs(
    *, deployment_id: UUID, specs: list[tuple[JobSpec, str | None]], owner: str
) -> list[bulk_flow_runs.RunCreated]:
    """Many jobs at once, in one transaction (see `bulk_flow_runs`)."""
    requests = [
        bulk_flow_runs.RunRequest(
            parameters=spec.model_dump(),
            tags=[owner_tag(owner)],
            idempotency_key=scoped_idempotency_key(deployment_id, key),
        )
        for spec, key in specs
    ]
    return await bulk_flow_runs.create_flow_runs(deployment_id, requests)


async def read_job_run(client: PrefectClient, *, run_id: UUID, deployment_id: UUID) -> FlowRun | None:
    """The flow run, or None when it does not exist or belongs to another group (the same to the caller)."""
    try:
        flow_run = await client.read_flow_run(run_id)
    except ObjectNotFound:
        return None
    return flow_run if flow_run.deployment_id == deployment_id else None


def owner_of(flow_run: FlowRun) -> str | None:
    return next(
        (tag[len(OWNER_TAG_PREFIX) :] for tag in flow_run.tags if tag.startswith(OWNER_TAG_PREFIX)), None
    )


def state_type(flow_run: FlowRun) -> StateType | None:
    return flow_run.state.type if flow_run.state is not None else None


async def cancel_job_run(client: PrefectClient, *, flow_run: FlowRun, by: str) -> None:
    """Cancel a job that has not ended: at once if no node has it, else ask its node to stop it.

    The cancel tag goes on first: Prefect lets a Running proposal follow Cancelled (to rerun a flow), so a
    node that claimed the job in the same instant would otherwise run it; its cancel watch sees the tag.
    """
    if CANCEL_TAG not in flow_run.tags:
        await client.update_flow_run(flow_run.id, tags=[*flow_run.tags, CANCEL_TAG])
    message = f"cancelled by {by}"
    unclaimed = state_type(flow_run) in _UNCLAIMED
    new_state = Cancelled(message=message) if unclaimed else Cancelling(message=message)
    await client.set_flow_run_state(flow_run.id, new_state, force=True)


async def mark_pruned(client: PrefectClient, *, flow_run: FlowRun) -> None:
    if PRUNED_TAG not in flow_run.tags:
        await client.update_flow_run(flow_run.id, tags=[*flow_run.tags, PRUNED_TAG])


def job_view(flow_run: FlowRun | Any) -> JobView:
    """The job as the REST API shows it, from a client flow run or Prefect's ORM row (same attributes)."""
    parameters = flow_run.parameters or {}
    state = flow_run.state
    owner = owner_of(flow_run)
    reason = state.message if state is not None and state.type.value in _REASON_STATES else None
    return JobView(
        id=flow_run.id,
        name=flow_run.name,
        state=state.name if state is not None else "Unknown",
        reason=reason or None,
        owner=owner,
        image=parameters.get("image"),
        command=parameters.get("command"),
        cores=parameters.get("cores"),
        memory_mb=parameters.get("memory_mb"),
        time_limit_s=parameters.get("time_limit_s"),
        bucket=parameters.get("bucket"),
        created=flow_run.created,
        started=flow_run.start_time,
        ended=flow_run.end_time,
    )
