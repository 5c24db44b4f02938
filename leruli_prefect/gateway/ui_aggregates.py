"""Answers Prefect computes across every pool, recomputed (or cut) for one group: deployments per flow,
next runs per flow, the list of work queues. Flows are shared by all groups (every group runs `leruli_job`),
so per-flow figures are where other groups would show through."""

from __future__ import annotations

from typing import Any
from uuid import UUID

from prefect.client.schemas.filters import (
    FlowFilter,
    FlowFilterId,
    FlowRunFilter,
    FlowRunFilterState,
    FlowRunFilterStateType,
    WorkPoolFilter,
    WorkPoolFilterName,
)
from prefect.client.schemas.objects import StateType
from prefect.client.schemas.sorting import FlowRunSort

from leruli_prefect.gateway import ui_scoping
from leruli_prefect.gateway.asgi import Refused, send_json
from leruli_prefect.gateway.ui_calls import UiCall
from leruli_prefect.gateway.ui_scoping import BadRequestBody


def _pool_filter(call: UiCall) -> WorkPoolFilter:
    return WorkPoolFilter(name=WorkPoolFilterName(any_=[call.tenant.pool]))


async def _asked_flow_ids(call: UiCall) -> list[UUID]:
    try:
        return [UUID(flow_id) for flow_id in ui_scoping.asked_ids(await call.body(), "flow_ids") or []][:200]
    except (BadRequestBody, ValueError) as exc:
        raise Refused(422, "flow_ids must be a list of ids") from exc


async def flow_deployment_counts(call: UiCall, params: dict[str, str]) -> None:
    """Deployments per flow, counting the group's only (Prefect counts every pool's)."""
    flow_ids = await _asked_flow_ids(call)
    deployments = await call.state.prefect.read_deployments(
        flow_filter=FlowFilter(id=FlowFilterId(any_=flow_ids)),
        work_pool_filter=_pool_filter(call),
    )
    counts = {str(flow_id): 0 for flow_id in flow_ids}
    for deployment in deployments:
        counts[str(deployment.flow_id)] = counts.get(str(deployment.flow_id), 0) + 1
    await send_json(call.send, 200, counts)


async def flow_next_runs(call: UiCall, params: dict[str, str]) -> None:
    """The next scheduled run per flow, among the group's runs (Prefect picks among every pool's)."""
    flow_ids = await _asked_flow_ids(call)
    runs = await call.state.prefect.read_flow_runs(
        flow_filter=FlowFilter(id=FlowFilterId(any_=flow_ids)),
        flow_run_filter=FlowRunFilter(
            state=FlowRunFilterState(type=FlowRunFilterStateType(any_=[StateType.SCHEDULED]))
        ),
        work_pool_filter=_pool_filter(call),
        sort=FlowRunSort.NEXT_SCHEDULED_START_TIME_ASC,
        limit=200,
    )
    next_runs: dict[str, Any] = {str(flow_id): None for flow_id in flow_ids}
    for run in runs:
        if next_runs.get(str(run.flow_id)) is None:
            next_runs[str(run.flow_id)] = {
                "id": str(run.id),
                "flow_id": str(run.flow_id),
                "name": run.name,
                "state_name": run.state_name,
                "state_type": run.state_type.value if run.state_type else None,
                "next_scheduled_start_time": run.next_scheduled_start_time.isoformat()
                if run.next_scheduled_start_time
                else None,
            }
    await send_json(call.send, 200, next_runs)


async def pool_queues(call: UiCall, params: dict[str, str]) -> None:
    """Work queues, of the group's pool only (this filter has no pool criterion: the answer is cut)."""
    captured = await call.captured(await call.body())
    if captured.status != 200:
        return await captured.forward(call.send)
    queues = [queue for queue in captured.json() if queue.get("work_pool_name") == call.tenant.pool]
    await send_json(call.send, 200, queues)
