"""Jobs: submit, cancel and prune (API secret), read one and list the group's (group token or API secret)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from uuid import UUID

from fastapi import APIRouter, HTTPException, Query, Request, status

from leruli_prefect.gateway import job_actions, job_reads, job_runs, result_storage
from leruli_prefect.gateway.deps import (
    MemberDep,
    SessionDep,
    StateDep,
    UserDep,
    caller_group,
    source_of,
)
from leruli_prefect.gateway.models import (
    JobBatch,
    JobBatchCreated,
    JobCreated,
    JobList,
    JobLookup,
    JobSubmit,
    JobView,
    PruneGrant,
)
from leruli_prefect.gateway.routes.codes import require_published
from leruli_prefect.gateway.state import GatewayState
from leruli_prefect.job_spec import JobSpec

router = APIRouter(tags=["jobs"])


@router.post("/jobs", status_code=status.HTTP_201_CREATED)
async def submit_job(body: JobSubmit, caller: UserDep, session: SessionDep) -> JobView:
    """One job: the batch path with one entry (Prefect's own creation re-validated the pool's job template
    schema against the JSON metaschema on every run: a third of the server's time per submission)."""
    group = caller_group(caller)
    await require_published(session, group, {body.image})
    deployment_id = UUID(group.deployment_id)
    (created,) = await job_runs.create_job_runs(
        deployment_id=deployment_id,
        specs=[(JobSpec.model_validate(body.model_dump()), body.idempotency_key)],
        owner=caller.name,
    )
    view = await job_reads.read_job_view(created.id, deployment_id)
    if view is None:  # pruned or deleted in the instant between
        raise HTTPException(status.HTTP_404_NOT_FOUND, detail=f"job {created.id} is gone")
    return view


@router.post("/jobs/batch", status_code=status.HTTP_201_CREATED)
async def submit_jobs(body: JobBatch, caller: UserDep, session: SessionDep) -> JobBatchCreated:
    """Many jobs in one request, created in one transaction; idempotency keys make resubmission safe."""
    group = caller_group(caller)
    await require_published(session, group, {job.image for job in body.jobs})
    created = await job_runs.create_job_runs(
        deployment_id=UUID(group.deployment_id),
        specs=[(JobSpec.model_validate(job.model_dump()), job.idempotency_key) for job in body.jobs],
        owner=caller.name,
    )
    return JobBatchCreated(
        jobs=[JobCreated(id=run.id, name=run.name, existed=run.existed) for run in created]
    )


@router.post("/jobs/lookup")
async def lookup_jobs(body: JobLookup, caller: MemberDep, state: StateDep) -> JobList:
    """The jobs among `ids` that exist in the caller's group (the others are left out)."""
    group = caller_group(caller)
    views = await job_reads.read_job_views(body.ids, UUID(group.deployment_id), _storage(state, group.name))
    return JobList(jobs=views)


@router.get("/jobs/{job_id}")
async def read_job(job_id: UUID, caller: MemberDep, state: StateDep) -> JobView:
    group = caller_group(caller)
    view = await job_reads.read_job_view(job_id, UUID(group.deployment_id), _storage(state, group.name))
    if view is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, detail=f"no job {job_id} in group {group.name}")
    return view


@router.get("/jobs")
async def list_jobs(
    caller: MemberDep, state: StateDep, limit: int = Query(default=100, ge=1, le=200)
) -> JobList:
    group = caller_group(caller)
    views = await job_reads.list_job_views(UUID(group.deployment_id), limit, _storage(state, group.name))
    return JobList(jobs=views)


def _storage(state: GatewayState, group: str) -> result_storage.StorageLookup:
    """How to find the group's result storage, should a job have a record (cached once found)."""
    return lambda: result_storage.find(state.prefect, group, state.result_storages)


@contextmanager
def _job_errors_as_http() -> Iterator[None]:
    try:
        yield
    except job_actions.JobNotFound as exc:
        raise HTTPException(status.HTTP_404_NOT_FOUND, detail=str(exc)) from exc
    except job_actions.NotJobOwner as exc:
        raise HTTPException(status.HTTP_403_FORBIDDEN, detail=str(exc)) from exc
    except job_actions.JobAlreadyEnded as exc:
        raise HTTPException(status.HTTP_409_CONFLICT, detail=str(exc)) from exc


@router.post("/jobs/{job_id}/cancel")
async def cancel_job(job_id: UUID, caller: UserDep, state: StateDep, request: Request) -> JobView:
    with _job_errors_as_http():
        flow_run = await job_actions.cancel_job(state, caller, job_id, source=source_of(request))
    return job_runs.job_view(flow_run)


@router.post("/jobs/{job_id}/prune")
async def prune_job(job_id: UUID, caller: UserDep, state: StateDep, request: Request) -> PruneGrant:
    """Allow deleting a job's data: the caller then deletes the bucket with their own S3 keys."""
    with _job_errors_as_http():
        flow_run = await job_actions.own_job(state, caller, job_id)
    if job_runs.state_type(flow_run) not in job_runs.FINAL_STATES:
        raise HTTPException(
            status.HTTP_409_CONFLICT,
            detail=f"job {job_id} is {flow_run.state_name}: cancel it or let it end before pruning",
        )
    await job_runs.mark_pruned(state.prefect, flow_run=flow_run)
    await job_actions.audit_if_not_owner(state, caller, flow_run, "prune", source=source_of(request))
    return PruneGrant(job_id=job_id, bucket=flow_run.parameters["bucket"])
