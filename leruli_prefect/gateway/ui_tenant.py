"""Carrying out the rules of `ui_routes` for a signed-in tenant: forward with a scoped body, check
ownership and forward, answer for Prefect, or rewrite Prefect's answer.

Requests reach Prefect through `prefect_writes` (with the server's credential, as for everyone); a
`Refused` raised here is answered (and audited) by the guard.
"""

from __future__ import annotations

from urllib.parse import parse_qs, urlencode
from uuid import UUID

from leruli_prefect.gateway import job_actions, run_owners, ui_aggregates, ui_ownership, ui_scoping
from leruli_prefect.gateway.asgi import Captured, Refused, send_json
from leruli_prefect.gateway.ui_calls import PrefectCall, UiCall
from leruli_prefect.gateway.ui_routes import WRITING_RULES, Rule, UiRoute
from leruli_prefect.gateway.ui_scoping import BadRequestBody
from leruli_prefect.gateway.ui_session import SETTINGS_STUB, STORAGE_STUB

_CANCEL_STATES = {"CANCELLING", "CANCELLED"}
_ANSWERS: dict[Rule, object] = {
    Rule.settings_stub: SETTINGS_STUB,
    Rule.storage_stub: STORAGE_STUB,
    Rule.empty_list: [],
    Rule.zero: 0,
}


async def serve(call: UiCall, route: UiRoute, params: dict[str, str]) -> None:
    """Answer one tenant request by its route's rule."""
    tenant, state = call.tenant, call.state
    if route.rule in WRITING_RULES and tenant.read_only:
        raise Refused(403, "the group token views the UI read-only; sign in with your API secret to act")
    if route.rule in _ANSWERS:
        return await send_json(call.send, 200, _ANSWERS[route.rule])
    if route.rule is Rule.passthrough:
        return await call.forward()
    if route.rule is Rule.pool_filter:
        return await call.forward(ui_scoping.scope_to_pool(await call.body(), tenant.pool))
    if route.rule is Rule.flow_filter:
        body = ui_scoping.scope_flows_to_pool(await call.body(), tenant.pool, str(tenant.deployment_id))
        return await call.forward(body)
    if route.rule is Rule.deployment_filter:
        body = ui_scoping.scope_to_deployment(await call.body(), str(tenant.deployment_id))
        return await call.forward(body)
    if route.rule is Rule.event_filter:
        pool_id = await run_owners.pool_id(state, tenant.pool)
        body = ui_scoping.scope_events_body(await call.body(), pool_id)
        return await _send_event_page(call, await call.captured(body))
    if route.rule is Rule.event_count:
        pool_id = await run_owners.pool_id(state, tenant.pool)
        return await call.forward(ui_scoping.scope_events_body(await call.body(), pool_id))
    if route.rule is Rule.event_page:
        return await _next_event_page(call)
    if route.rule in ui_ownership.CHECKS:
        await ui_ownership.CHECKS[route.rule](call, params)
        return await call.forward()
    return await _SPECIAL[route.rule](call, params)


async def forward_event_page_fixed(call: PrefectCall) -> None:
    """An operator's event page: unscoped, only its `next_page` link pointed at the gateway."""
    return await _send_event_page(call, await call.captured())


async def _send_event_page(call: PrefectCall, captured: Captured) -> None:
    if captured.status != 200:
        return await captured.forward(call.send)
    page = captured.json()
    page["next_page"] = ui_scoping.gateway_next_page(page.get("next_page"), call.gateway_api)
    await send_json(call.send, 200, page)


async def _next_event_page(call: UiCall) -> None:
    query = parse_qs(call.upstream.get("query_string", b"").decode())
    tokens = query.get("page-token")
    if not tokens:
        raise Refused(422, "page-token is required")
    pool_id = await run_owners.pool_id(call.state, call.tenant.pool)
    try:
        token = ui_scoping.scope_page_token(tokens[0], pool_id)
    except BadRequestBody as exc:
        raise Refused(403, str(exc)) from exc
    await _send_event_page(call, await call.captured(query=urlencode({"page-token": token})))


async def _cancel(call: UiCall, params: dict[str, str]) -> None:
    """The UI's "Cancel": a proposed Cancelling (or Cancelled) state, carried out by the /v1 cancel code."""
    body = await call.body()
    proposed = body.get("state") if isinstance(body.get("state"), dict) else {}
    if str(proposed.get("type", "")).upper() not in _CANCEL_STATES:
        raise Refused(403, "from the UI, group members may only cancel jobs")
    run_id = UUID(params["id"])
    source = call.upstream["client"][0] if call.upstream.get("client") else "unknown"
    try:
        flow_run = await job_actions.cancel_job(call.state, call.tenant.caller, run_id, source=source)
    except job_actions.JobNotFound as exc:
        raise Refused(404, "Flow run not found") from exc
    except job_actions.NotJobOwner as exc:
        raise Refused(403, str(exc)) from exc
    except job_actions.JobAlreadyEnded as exc:
        raise Refused(409, str(exc)) from exc
    assert flow_run.state is not None
    result = {
        "status": "ACCEPT",
        "state": flow_run.state.model_dump(mode="json"),
        "details": {"type": "accept_details"},
    }
    await send_json(call.send, 201, result)


_SPECIAL = {
    Rule.own_logs: ui_ownership.own_logs,
    Rule.own_run_counts: ui_ownership.own_run_counts,
    Rule.flow_deployment_counts: ui_aggregates.flow_deployment_counts,
    Rule.flow_next_runs: ui_aggregates.flow_next_runs,
    Rule.pool_queues: ui_aggregates.pool_queues,
    Rule.cancel: _cancel,
}
