"""Shedding load: past a bound of REST requests in flight, the gateway answers 503 with `Retry-After` at once.

A flood of clients would otherwise pile up requests (memory, and latency for everyone, nodes included) until
they time out with no answer. An explicit 503 costs nothing, changes nothing, and tells the client when to
come back (the leruli client and Prefect's both retry it). The health check and the Prefect API of nodes and
operators (`/prefect`, its writes already serialized by the guard) are never shed.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from starlette.responses import JSONResponse

if TYPE_CHECKING:
    from starlette.types import ASGIApp, Receive, Scope, Send

MAX_IN_FLIGHT = 64  # far above what a group's users send at once; a flood's excess is answered at once
RETRY_AFTER_SECONDS = 1
_NEVER_SHED = frozenset({"/v1/health"})


class LoadShedding:
    """ASGI middleware: at most `limit` `/v1` requests at once; the next ones get 503 + `Retry-After`."""

    def __init__(self, app: ASGIApp, limit: int = MAX_IN_FLIGHT) -> None:
        self.app = app
        self.limit = limit
        self.in_flight = 0
        self.shed = 0  # answered 503 since start (for the log and tests)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        path = scope.get("path", "") if scope["type"] == "http" else ""
        if not path.startswith("/v1/") or path in _NEVER_SHED:
            await self.app(scope, receive, send)
            return
        if self.in_flight >= self.limit:
            self.shed += 1
            busy = JSONResponse(
                {"detail": "the server is busy; retry in a moment"},
                status_code=503,
                headers={"Retry-After": str(RETRY_AFTER_SECONDS)},
            )
            await busy(scope, receive, send)
            return
        self.in_flight += 1
        try:
            await self.app(scope, receive, send)
        finally:
            self.in_flight -= 1
