"""Which group's deployment a flow run belongs to, remembered: a flow run never changes deployment.

Used by the guard for nodes (their own group's runs only) and for the tenant UI (reads and cancels).
"""

from __future__ import annotations

from typing import TYPE_CHECKING
from uuid import UUID

from leruli_prefect.gateway import job_reads

if TYPE_CHECKING:
    from leruli_prefect.gateway.state import GatewayState


async def deployment_of_run(state: GatewayState, run_id: UUID) -> UUID | None:
    """The deployment id of the flow run, or None when it does not exist or has no deployment."""
    owner = state.run_deployments.get(run_id)
    if owner is None:
        found = await job_reads.read_run_facts(run_id)
        if found is None:
            return None
        owner = found.deployment_id
        if owner is not None:
            state.run_deployments[run_id] = owner
    return owner


async def is_run_of(state: GatewayState, run_id: UUID, deployment_id: UUID) -> bool:
    return await deployment_of_run(state, run_id) == deployment_id


async def runs_of(state: GatewayState, run_ids: list[str], deployment_id: UUID) -> list[str]:
    """Those of `run_ids` (strings, as a request carries them) that are runs of the deployment."""
    owned = []
    for run_id in run_ids:
        try:
            parsed = UUID(run_id)
        except ValueError:
            continue
        if await is_run_of(state, parsed, deployment_id):
            owned.append(str(parsed))
    return owned


async def pool_id(state: GatewayState, pool: str) -> UUID:
    """The id of a work pool, by name (remembered: a group's pool keeps its id)."""
    known = state.pool_ids.get(pool)
    if known is None:
        known = state.pool_ids[pool] = (await state.prefect.read_work_pool(pool)).id
    return known
