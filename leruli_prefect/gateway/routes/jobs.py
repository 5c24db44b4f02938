"""Jobs: submit (API secret), read one and list the group's (group token or API secret)."""

from __future__ import annotations

from uuid import UUID

from fastapi import APIRouter, HTTPException, Query, status

from leruli_prefect.gateway import job_runs
from leruli_prefect.gateway.deps import MemberDep, StateDep, UserDep, caller_group
from leruli_prefect.gateway.models import JobList, JobSubmit, JobView
from leruli_prefect.job_spec import JobSpec

router = APIRouter(tags=["jobs"])


@router.post("/jobs", status_code=status.HTTP_201_CREATED)
async def submit_job(body: JobSubmit, caller: UserDep, state: StateDep) -> JobView:
    group = caller_group(caller)
    flow_run = await job_runs.create_job_run(
        state.prefect,
        deployment_id=UUID(group.deployment_id),
        spec=JobSpec.model_validate(body.model_dump()),
        owner=caller.name,
    )
    return job_runs.job_view(flow_run)


@router.get("/jobs/{job_id}")
async def read_job(job_id: UUID, caller: MemberDep, state: StateDep) -> JobView:
    group = caller_group(caller)
    flow_run = await job_runs.read_job_run(
        state.prefect, run_id=job_id, deployment_id=UUID(group.deployment_id)
    )
    if flow_run is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, detail=f"no job {job_id} in group {group.name}")
    return job_runs.job_view(flow_run)


@router.get("/jobs")
async def list_jobs(
    caller: MemberDep, state: StateDep, limit: int = Query(default=100, ge=1, le=1000)
) -> JobList:
    group = caller_group(caller)
    flow_runs = await job_runs.list_job_runs(
        state.prefect, deployment_id=UUID(group.deployment_id), limit=limit
    )
    return JobList(jobs=[job_runs.job_view(flow_run) for flow_run in flow_runs])
