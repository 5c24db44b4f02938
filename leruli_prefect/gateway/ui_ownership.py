"""Ownership checks of the tenant UI: a read by id or name answers 404 unless the object is the group's;
logs and task run counts are cut down to the group's flow runs."""

from __future__ import annotations

from uuid import UUID

from prefect.exceptions import ObjectNotFound

from leruli_prefect.gateway import run_owners, ui_scoping
from leruli_prefect.gateway.asgi import Refused, send_json
from leruli_prefect.gateway.ui_calls import UiCall
from leruli_prefect.gateway.ui_routes import Rule
from leruli_prefect.gateway.ui_scoping import BadRequestBody


async def _own_flow_run(call: UiCall, params: dict[str, str]) -> None:
    if not await run_owners.is_run_of(call.state, UUID(params["id"]), call.tenant.deployment_id):
        raise Refused(404, "Flow run not found")


async def _own_task_run(call: UiCall, params: dict[str, str]) -> None:
    try:
        task_run = await call.state.prefect.read_task_run(UUID(params["id"]))
    except ObjectNotFound:
        raise Refused(404, "Task run not found") from None
    run_id = task_run.flow_run_id
    if run_id is None or not await run_owners.is_run_of(call.state, run_id, call.tenant.deployment_id):
        raise Refused(404, "Task run not found")


async def _own_deployment(call: UiCall, params: dict[str, str]) -> None:
    if UUID(params["id"]) != call.tenant.deployment_id:
        raise Refused(404, "Deployment not found")


async def _own_flow(call: UiCall, params: dict[str, str]) -> None:
    if UUID(params["id"]) != call.tenant.flow_id:
        raise Refused(404, "Flow not found")


async def _own_pool(call: UiCall, params: dict[str, str]) -> None:
    if params["pool"] != call.tenant.pool:
        raise Refused(404, "Work pool not found")


async def _own_work_queue(call: UiCall, params: dict[str, str]) -> None:
    try:
        queue = await call.state.prefect.read_work_queue(UUID(params["id"]))
    except ObjectNotFound:
        raise Refused(404, "Work queue not found") from None
    if queue.work_pool_name != call.tenant.pool:
        raise Refused(404, "Work queue not found")


CHECKS = {
    Rule.own_flow_run: _own_flow_run,
    Rule.own_task_run: _own_task_run,
    Rule.own_deployment: _own_deployment,
    Rule.own_flow: _own_flow,
    Rule.own_pool: _own_pool,
    Rule.own_work_queue: _own_work_queue,
}


async def own_logs(call: UiCall, params: dict[str, str]) -> None:
    """Logs of the group's flow runs: asked by run id, or by task run id (mapped to their flow runs)."""
    body = await call.body()
    try:
        run_ids = ui_scoping.asked_ids(body, "logs", "flow_run_id", "any_")
        task_run_ids = ui_scoping.asked_ids(body, "logs", "task_run_id", "any_")
    except BadRequestBody as exc:
        raise Refused(422, str(exc)) from exc
    if run_ids is None and task_run_ids:
        run_ids = [str(run_id) for run_id in await _flow_runs_of_tasks(call, task_run_ids)]
    owned = await run_owners.runs_of(call.state, run_ids or [], call.tenant.deployment_id)
    if not owned:  # no run asked (all logs of the server), or none of the group's
        return await send_json(call.send, 200, [])
    await call.forward(ui_scoping.logs_of_runs(body, owned))


async def _flow_runs_of_tasks(call: UiCall, task_run_ids: list[str]) -> set[UUID]:
    run_ids = set()
    for task_run_id in task_run_ids[:200]:
        try:
            task_run = await call.state.prefect.read_task_run(UUID(task_run_id))
        except (ObjectNotFound, ValueError):
            continue
        if task_run.flow_run_id is not None:
            run_ids.add(task_run.flow_run_id)
    return run_ids


async def own_run_counts(call: UiCall, params: dict[str, str]) -> None:
    body = await call.body()
    try:
        asked = ui_scoping.asked_ids(body, "flow_run_ids") or []
    except BadRequestBody as exc:
        raise Refused(422, str(exc)) from exc
    owned = await run_owners.runs_of(call.state, asked[:200], call.tenant.deployment_id)
    if not owned:
        return await send_json(call.send, 200, {})
    await call.forward({**body, "flow_run_ids": owned})
