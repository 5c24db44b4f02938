"""Groups, created by the server operator: a work pool, a deployment, a first admin and three secrets."""

from __future__ import annotations

from fastapi import APIRouter, HTTPException, status

from leruli_prefect.gateway import crud, job_runs
from leruli_prefect.gateway.deps import OperatorDep, SessionDep, StateDep
from leruli_prefect.gateway.models import GroupCreate, GroupCreated
from leruli_prefect.gateway.security import SecretKind, hash_secret, new_secret
from leruli_prefect.job_spec import pool_name

router = APIRouter(tags=["groups"])


@router.post("/groups", status_code=status.HTTP_201_CREATED)
async def create_group(
    body: GroupCreate, _: OperatorDep, session: SessionDep, state: StateDep
) -> GroupCreated:
    if await crud.group_by_name(session, name=body.name) is not None:
        raise HTTPException(status.HTTP_409_CONFLICT, detail=f"group {body.name!r} already exists")
    deployment_id, flow_id = await job_runs.provision_group(
        state.prefect, group=body.name, base_job_template=state.base_job_template
    )
    group_token, api_secret, compute_secret = (
        new_secret(SecretKind.group),
        new_secret(SecretKind.user),
        new_secret(SecretKind.compute),
    )
    group = await crud.create_group(
        session,
        name=body.name,
        token_hash=hash_secret(group_token),
        compute_secret_hash=hash_secret(compute_secret),
        work_pool=pool_name(body.name),
        deployment_id=str(deployment_id),
        flow_id=str(flow_id),
    )
    await crud.create_user(
        session, group=group, name=body.admin_name, secret_hash=hash_secret(api_secret), is_admin=True
    )
    await session.commit()
    return GroupCreated(
        group=group.name,
        work_pool=group.work_pool,
        admin_name=body.admin_name,
        group_token=group_token,
        api_secret=api_secret,
        compute_secret=compute_secret,
    )
