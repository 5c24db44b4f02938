"""A request on its way from the guard to Prefect: its body read and rewritten, its answer passed on or
held back to be rewritten. Prefect is reached through `prefect_writes` with the server's credential."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from leruli_prefect.gateway import ui_scoping
from leruli_prefect.gateway.asgi import ASGIApp, Captured, Receive, Refused, Scope, Send
from leruli_prefect.gateway.prefect_writes import read_body, replay, send_to_prefect
from leruli_prefect.gateway.state import GatewayState
from leruli_prefect.gateway.ui_scoping import BadRequestBody
from leruli_prefect.gateway.ui_session import Tenant

MAX_BODY = 8 * 1024 * 1024


@dataclass
class PrefectCall:
    """One request on its way to Prefect (`upstream` already carries the server's credential)."""

    app: ASGIApp
    state: GatewayState
    upstream: Scope
    receive: Receive
    send: Send
    gateway_api: str  # where the browser reaches the API: http://host/prefect/api

    async def body(self) -> dict[str, Any]:
        raw = await read_body(self.receive, MAX_BODY)
        if raw is None:
            raise Refused(413, "request body too large")
        try:
            return ui_scoping.json_object(raw)
        except BadRequestBody as exc:
            raise Refused(422, str(exc)) from exc

    async def forward(self, body: dict[str, Any] | None = None) -> None:
        scope, receive = self._with_body(body)
        await send_to_prefect(self.app, scope, receive, self.send, self.state.prefect_writes)

    async def captured(self, body: dict[str, Any] | None = None, query: str | None = None) -> Captured:
        scope, receive = self._with_body(body)
        # Prefect's API gzips large answers; an answer to be rewritten must come back plain.
        scope["headers"] = [(k, v) for k, v in scope["headers"] if k.lower() != b"accept-encoding"]
        if query is not None:
            scope["query_string"] = query.encode()
        captured = Captured()
        await send_to_prefect(self.app, scope, receive, captured.send, self.state.prefect_writes)
        return captured

    def _with_body(self, body: dict[str, Any] | None) -> tuple[Scope, Receive]:
        if body is None:
            return dict(self.upstream), self.receive
        raw = json.dumps(body).encode()
        headers = [(k, v) for k, v in self.upstream["headers"] if k.lower() != b"content-length"]
        headers.append((b"content-length", str(len(raw)).encode()))
        return {**self.upstream, "headers": headers}, replay(raw, self.receive)


@dataclass
class UiCall(PrefectCall):
    """A request of a tenant signed in to the UI."""

    tenant: Tenant
