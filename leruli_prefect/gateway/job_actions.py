"""Acting on one job: who may, and the cancel itself. Shared by the /v1 job routes and the tenant UI, so a
job cancelled from the Prefect UI goes through the very same code (cancel tag, Cancelling/Cancelled, audit)
as `leruli cancel`.

The errors here are translated at each edge: HTTP statuses in routes/jobs.py, refusals in the UI guard.
"""

from __future__ import annotations

from typing import TYPE_CHECKING
from uuid import UUID

from leruli_prefect.errors import LeruliError
from leruli_prefect.gateway import audit, job_runs

if TYPE_CHECKING:
    from prefect.client.schemas.objects import FlowRun

    from leruli_prefect.gateway.callers import Caller
    from leruli_prefect.gateway.state import GatewayState


class JobNotFound(LeruliError):
    """No such job in the caller's group (a job of another group looks the same)."""


class NotJobOwner(LeruliError):
    """The caller is neither the job's owner nor an admin of its group."""


class JobAlreadyEnded(LeruliError):
    """The job has ended: there is nothing left to cancel."""


async def own_job(state: GatewayState, caller: Caller, job_id: UUID) -> FlowRun:
    """The job, if it is in the caller's group and the caller (a user) owns it or is an admin."""
    assert caller.group is not None and caller.user is not None, "only users act on jobs"
    group = caller.group
    flow_run = await job_runs.read_job_run(
        state.prefect, run_id=job_id, deployment_id=UUID(group.deployment_id)
    )
    if flow_run is None:
        raise JobNotFound(f"no job {job_id} in group {group.name}")
    if job_runs.owner_of(flow_run) != caller.user.name and not caller.user.is_admin:
        raise NotJobOwner("only the job's owner or an admin may do this")
    return flow_run


async def cancel_job(state: GatewayState, caller: Caller, job_id: UUID, *, source: str) -> FlowRun:
    """Cancel a job that has not ended; answers the job as it is afterwards."""
    flow_run = await own_job(state, caller, job_id)
    if job_runs.state_type(flow_run) in job_runs.FINAL_STATES:
        raise JobAlreadyEnded(f"job {job_id} has already ended ({flow_run.state_name})")
    await job_runs.cancel_job_run(state.prefect, flow_run=flow_run, by=caller.name)
    await audit_if_not_owner(state, caller, flow_run, "cancel", source=source)
    return await state.prefect.read_flow_run(job_id)


async def audit_if_not_owner(
    state: GatewayState, caller: Caller, flow_run: FlowRun, verb: str, *, source: str
) -> None:
    """Acting on someone else's job is an admin action: it goes in the audit log."""
    owner = job_runs.owner_of(flow_run)
    if owner != caller.name:
        await audit.record(
            state.sessions,
            caller=caller,
            action=f"{verb} job {flow_run.id}",
            outcome="ok",
            detail=f"owned by {owner}",
            source=source,
        )
