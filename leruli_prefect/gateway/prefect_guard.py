"""The door in front of the Prefect API: an ASGI middleware for HTTP and websockets.

The Prefect API is served under `/prefect/api`. Operators (the server's own secret, as Basic auth from
Prefect's UI or as a bearer token) pass unchanged. Compute nodes pass only on the routes of `node_routes`,
for their own group's pool, deployment and flow runs; their credentials are swapped for the server's, so
Prefect itself (which also checks its auth string) never sees a group's secrets. Group members signed in
to the Prefect UI (`ui_session`) pass only on the routes of `ui_routes`, each scoped to their group by
`ui_tenant`. Everyone else is refused. The bare `/api` path is closed so nothing reaches Prefect around
this guard.
"""

from __future__ import annotations

import asyncio
import base64
import json
from collections.abc import Callable
from uuid import UUID

from leruli_prefect.attempts import WORKER_NAME_HEADER
from leruli_prefect.gateway import (
    audit,
    due_polls,
    job_reads,
    node_states,
    result_storage,
    run_fence,
    run_owners,
    ui_tenant,
)
from leruli_prefect.gateway.asgi import ASGIApp, Message, Receive, Refused, Scope, Send, send_json_bytes
from leruli_prefect.gateway.callers import (
    COMPUTE_SECRET_HEADER,
    GROUP_TOKEN_HEADER,
    Caller,
    Unauthenticated,
    resolve_caller,
)
from leruli_prefect.gateway.node_routes import Ownership, match_node_route
from leruli_prefect.gateway.prefect_writes import read_body, replay, send_to_prefect
from leruli_prefect.gateway.security import SecretKind
from leruli_prefect.gateway.state import GatewayState
from leruli_prefect.gateway.ui_calls import PrefectCall, UiCall
from leruli_prefect.gateway.ui_routes import match_ui_route
from leruli_prefect.gateway.ui_session import tenant_of

PREFIX = "/prefect"
MAX_CHECKED_BODY = 8 * 1024 * 1024
_STRIPPED_HEADERS = {b"authorization", GROUP_TOKEN_HEADER.encode(), COMPUTE_SECRET_HEADER.encode()}


# Open without a credential, as Prefect keeps them (both UIs poll health before signing in).
_OPEN_PROBES = ("/api/health", "/api/ready")
# A node's poll for runs (`idle_polls` answers it when nothing is due).
_POLL_SUFFIX = "/get_scheduled_flow_runs"
# Prefect's event pages link to the next page under its own mount; these answers get the link rewritten.
_EVENT_PAGES = ("/api/events/filter", "/api/events/filter/next")


class PrefectGuard:
    def __init__(self, app: ASGIApp, get_state: Callable[[], GatewayState]) -> None:
        self.app = app
        self.get_state = get_state

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] not in ("http", "websocket"):
            return await self.app(scope, receive, send)
        path: str = scope["path"]
        if path == "/api" or path.startswith("/api/"):
            return await _refuse(
                scope, receive, send, Refused(404, "the Prefect API is served under /prefect/api")
            )
        if path == f"{PREFIX}/api" or path.startswith(f"{PREFIX}/api/"):
            return await self._guard(scope, receive, send)
        return await self.app(scope, receive, send)

    async def _guard(self, scope: Scope, receive: Receive, send: Send) -> None:
        state = self.get_state()
        headers = {
            name.decode("latin-1").lower(): value.decode("latin-1") for name, value in scope["headers"]
        }
        api_path = scope["path"][len(PREFIX) :]
        method = "WS" if scope["type"] == "websocket" else scope["method"]
        if method == "GET" and api_path in _OPEN_PROBES:
            upstream = _upstream_scope(scope, api_path, state.operator_secret)
            return await send_to_prefect(self.app, upstream, receive, send, state.prefect_writes)
        caller: Caller | None = None
        try:
            async with state.sessions() as session:
                caller = await resolve_caller(
                    session,
                    authorization=headers.get("authorization"),
                    group_token=headers.get(GROUP_TOKEN_HEADER),
                    compute_secret=headers.get(COMPUTE_SECRET_HEADER),
                    operator_secret=state.operator_secret,
                )
            if caller.kind is SecretKind.compute:
                receive, proposal = await self._authorize_node(
                    state, caller, method, api_path, receive, headers=headers
                )
                if proposal is not None:
                    answer = await node_states.propose(proposal, lock=state.prefect_writes)
                    return await send_json_bytes(send, answer.status, answer.body)
                if method == "POST" and api_path.endswith(_POLL_SUFFIX):
                    assert caller.group is not None
                    body = await _read_body(receive)
                    answer = await _answer_poll(state, caller.group.work_pool, body)
                    if answer is not None:
                        return await send_json_bytes(send, 200, answer)
                    state.idle_polls.passed(caller.group.work_pool)
                    receive = replay(body, receive)
            elif caller.kind is not SecretKind.operator:
                return await self._serve_tenant(state, caller, scope, receive, send, headers)
        except (Unauthenticated, Refused) as exc:
            refused = exc if isinstance(exc, Refused) else Refused(401, str(exc))
            source = scope["client"][0] if scope.get("client") else "unknown"
            await audit.record(
                state.sessions,
                caller=caller,
                action=f"{method} /prefect{api_path}",
                outcome=f"refused {refused.status}",
                detail=refused.detail,
                source=source,
            )
            return await _refuse(scope, receive, send, refused)

        upstream = _upstream_scope(scope, api_path, state.operator_secret)
        if scope["type"] != "websocket" and api_path in _EVENT_PAGES:
            passed = PrefectCall(self.app, state, upstream, receive, send, _gateway_api(scope, headers))
            return await ui_tenant.forward_event_page_fixed(passed)
        if scope["type"] != "websocket":
            return await send_to_prefect(self.app, upstream, receive, send, state.prefect_writes)
        receive = _rewrite_auth_frame(receive, state.operator_secret)
        if caller.kind is not SecretKind.compute or caller.group is None:
            return await self.app(upstream, receive, send)
        # A node's websocket lives as long as its compute secret: rotating the secret closes it, in this
        # process at once and in every other within a second (`rotation_watch`).
        group_id = caller.group.id
        revoked = state.node_sockets.register(group_id, caller.group.compute_secret_hash)
        try:
            receive, send = _closed_on(revoked, receive, send)
            await self.app(upstream, receive, send)
        finally:
            state.node_sockets.unregister(group_id, revoked)

    async def _serve_tenant(
        self,
        state: GatewayState,
        caller: Caller,
        scope: Scope,
        receive: Receive,
        send: Send,
        headers: dict[str, str],
    ) -> None:
        """A group member signed in to the UI: only the routes of `ui_routes`, each scoped by its rule."""
        tenant = tenant_of(caller, headers.get("authorization"))
        if tenant is None:
            raise Refused(
                403,
                "the Prefect API is open to compute nodes and server operators only; group members"
                " sign in to the Prefect UI (/prefect/) with their API secret or group token",
            )
        if scope["type"] == "websocket":
            raise Refused(403, "the Prefect UI uses no websockets")
        api_path = scope["path"][len(PREFIX) :]
        matched = match_ui_route(scope["method"], api_path)
        if matched is None:
            raise Refused(403, f"the Prefect UI of a group may not call {scope['method']} {api_path}")
        upstream = _upstream_scope(scope, api_path, state.operator_secret)
        call = UiCall(self.app, state, upstream, receive, send, _gateway_api(scope, headers), tenant=tenant)
        await ui_tenant.serve(call, *matched)

    async def _authorize_node(
        self,
        state: GatewayState,
        caller: Caller,
        method: str,
        api_path: str,
        receive: Receive,
        *,
        headers: dict[str, str],
    ) -> tuple[Receive, node_states.Proposal | None]:
        """Check the route and its ownership; returns the receive to use (the body may have been read), and
        a proposed state for the gateway to orchestrate itself (`node_states`; None: Prefect answers)."""
        assert caller.group is not None
        worker_name = headers.get(WORKER_NAME_HEADER)
        group = caller.group
        matched = match_node_route(method, api_path)
        if matched is None:
            raise Refused(403, f"compute nodes may not call {method} {api_path}")
        route, params = matched
        if route.ownership is Ownership.pool and params["pool"] != group.work_pool:
            raise Refused(404, f"no work pool {params['pool']!r} in your group")
        if route.ownership is Ownership.deployment and params["id"] != group.deployment_id:
            raise Refused(404, "no such deployment in your group")
        if route.ownership is Ownership.flow and params["id"] != group.flow_id:
            raise Refused(404, "no such flow in your group")
        if route.ownership is Ownership.flow_run:
            await _check_flow_run(state, UUID(params["id"]), UUID(group.deployment_id))
            if method == "POST" and api_path.endswith("/set_state"):
                body = await _read_body(receive)
                await _check_result_reference(state, group.name, body)
                # The gateway orchestrates it itself, fence included, in one transaction (`node_states`).
                proposal = node_states.parse(UUID(params["id"]), body, headers)
                proposed = _proposed_type(body)
                if proposal is None and proposed != "PENDING":
                    await _check_fence(state, UUID(params["id"]), worker_name, proposed=proposed)
                return replay(body, receive), proposal
            if method == "PATCH" and not api_path.endswith("/labels"):
                await _check_fence(state, UUID(params["id"]), worker_name)
        if route.ownership is Ownership.logs:
            body = await _read_body(receive)
            await _check_logs(state, body, UUID(group.deployment_id))
            return replay(body, receive), None
        return receive, None


async def _answer_poll(state: GatewayState, pool: str, body: bytes) -> bytes | None:
    """The answer to a node's poll, found here while Prefect has had a poll of the pool lately: empty after
    one indexed query (`idle_polls`), else from Prefect's own query (`due_polls`); None: Prefect answers."""
    if not state.idle_polls.prefect_polled_lately(pool):
        return None
    if await state.idle_polls.nothing_due(pool, body):
        return b"[]"
    return await due_polls.answer_poll(pool, body)


async def _check_flow_run(state: GatewayState, run_id: UUID, deployment_id: UUID) -> None:
    if not await run_owners.is_run_of(state, run_id, deployment_id):
        raise Refused(404, "no such flow run in your group")


def _proposed_type(body: bytes) -> str | None:
    """The type of a proposed state, e.g. "PENDING" (a node claiming a Scheduled run; Prefect accepts Pending
    from nothing else). A node that lost a run may claim a later attempt; its accepted claim then labels the
    run as its own again (`claim_labels`)."""
    try:
        proposed = json.loads(body)["state"]["type"]
    except (ValueError, KeyError, TypeError):
        return None
    return proposed if isinstance(proposed, str) else None


async def _check_fence(
    state: GatewayState, run_id: UUID, worker_name: str | None, *, proposed: str | None = None
) -> None:
    """The fence (`run_fence`) for a node's write that Prefect carries out.

    Read straight from the database: a node sends several of these per job, and an in-process API read
    cost a second HTTP request each."""
    run_fence.check(await job_reads.read_run_facts(run_id), worker_name, proposed=proposed)


async def _check_result_reference(state: GatewayState, group: str, body: bytes) -> None:
    """A state's stored result must be in the node's own group's result storage: whoever reads it (the
    group's members, an operator's `state.result()`) would otherwise be sent to another group's bucket."""
    try:
        data = json.loads(body)["state"].get("data")
    except (ValueError, KeyError, TypeError, AttributeError):
        return  # not a state Prefect accepts: it answers that itself
    if not isinstance(data, dict) or data.get("storage_block_id") is None:
        return
    storage = await result_storage.find(state.prefect, group, state.result_storages)
    if storage is None or str(data["storage_block_id"]) != str(storage.block_document_id):
        raise Refused(403, "a job's result must be stored in its own group's result storage")


async def _check_logs(state: GatewayState, body: bytes, deployment_id: UUID) -> None:
    try:
        logs = json.loads(body)
    except ValueError as exc:
        raise Refused(422, "logs must be a JSON list") from exc
    if not isinstance(logs, list):
        raise Refused(422, "logs must be a JSON list")
    run_ids = set()
    for log in logs:
        if not isinstance(log, dict) or log.get("task_run_id") is not None:
            raise Refused(403, "nodes may only send flow run logs")
        if log.get("flow_run_id") is not None:
            run_ids.add(log["flow_run_id"])
    for run_id in run_ids:
        try:
            await _check_flow_run(state, UUID(str(run_id)), deployment_id)
        except ValueError as exc:
            raise Refused(422, f"bad flow_run_id {run_id!r}") from exc


async def _read_body(receive: Receive) -> bytes:
    body = await read_body(receive, MAX_CHECKED_BODY)
    if body is None:
        raise Refused(413, "request body too large")
    return body


def _rewrite_auth_frame(receive: Receive, operator_secret: str) -> Receive:
    """Prefect's websockets authenticate with a first frame `{"type": "auth", "token": ...}`; put the server's
    token in it, so the node never needs (or learns) the server's secret."""
    rewritten = False

    async def receive_rewritten() -> Message:
        nonlocal rewritten
        message = await receive()
        if not rewritten and message["type"] == "websocket.receive" and message.get("text"):
            rewritten = True
            try:
                frame = json.loads(message["text"])
            except ValueError:
                return message
            if isinstance(frame, dict) and frame.get("type") == "auth":
                frame["token"] = operator_secret
                return {**message, "text": json.dumps(frame)}
        return message

    return receive_rewritten


def _closed_on(revoked: asyncio.Event, receive: Receive, send: Send) -> tuple[Receive, Send]:
    """Wrap a websocket so that `revoked` closes it: the client gets a close frame (1008), the app a
    disconnect, and whatever the app still sends is dropped."""
    closed = False

    async def receive_until_revoked() -> Message:
        nonlocal closed
        if closed:
            return {"type": "websocket.disconnect", "code": 1008}
        incoming = asyncio.ensure_future(receive())
        revocation = asyncio.ensure_future(revoked.wait())
        done, _ = await asyncio.wait({incoming, revocation}, return_when=asyncio.FIRST_COMPLETED)
        if incoming in done:
            revocation.cancel()
            return incoming.result()
        incoming.cancel()
        closed = True
        await send({"type": "websocket.close", "code": 1008, "reason": "compute secret rotated"})
        return {"type": "websocket.disconnect", "code": 1008}

    async def send_until_revoked(message: Message) -> None:
        if not closed:
            await send(message)

    return receive_until_revoked, send_until_revoked


def _gateway_api(scope: Scope, headers: dict[str, str]) -> str:
    """The API's address as the browser reaches it (for links Prefect builds from its own mount)."""
    return f"{scope.get('scheme', 'http')}://{headers.get('host', 'localhost')}{PREFIX}"


def _upstream_scope(scope: Scope, api_path: str, operator_secret: str) -> Scope:
    basic = base64.b64encode(operator_secret.encode()).decode()
    headers = [(name, value) for name, value in scope["headers"] if name.lower() not in _STRIPPED_HEADERS]
    headers.append((b"authorization", f"Basic {basic}".encode()))
    return {**scope, "path": api_path, "raw_path": api_path.encode(), "headers": headers}


async def _refuse(scope: Scope, receive: Receive, send: Send, refused: Refused) -> None:
    if scope["type"] == "websocket":
        await receive()  # the websocket.connect message
        await send({"type": "websocket.close", "code": 1008, "reason": refused.detail[:120]})
        return
    body = json.dumps({"detail": refused.detail}).encode()
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
    if refused.status == 401:
        headers.append((b"www-authenticate", b"Bearer"))
    await send({"type": "http.response.start", "status": refused.status, "headers": headers})
    await send({"type": "http.response.body", "body": body})
