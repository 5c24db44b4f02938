"""The server: one ASGI app holding the gateway (/v1, and the original client's routes in legacy_v22_1) and
the Prefect server (API and UI behind the guard)."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exception_handlers import http_exception_handler
from fastapi.responses import JSONResponse, Response
from starlette.exceptions import HTTPException

from leruli_prefect.gateway import (
    audit,
    lost_nodes,
    rotation_watch,
    scheduled_runs_query,
    sqlite_event_writes,
)
from leruli_prefect.gateway.db import make_engine, make_sessionmaker, upgrade_database
from leruli_prefect.gateway.load_shedding import LoadShedding
from leruli_prefect.gateway.prefect_guard import PrefectGuard
from leruli_prefect.gateway.routes import (
    audit_log,
    codes,
    compute_secret,
    groups,
    health,
    jobs,
    legacy_v22_1,
    node_runs,
    results,
    users,
    whoami,
)
from leruli_prefect.gateway.server_config import ServerConfig
from leruli_prefect.gateway.state import GatewayState
from leruli_prefect.serving_heap import prepare_heap_for_serving

logger = logging.getLogger(__name__)

# Refusals worth an audit entry: who tried what they may not (409 and 422 are honest mistakes).
_AUDITED_REFUSALS = {401, 403, 404}


def create_app(config: ServerConfig, *, operator_secret: str, base_job_template: dict[str, Any]) -> FastAPI:
    """Build the server app; Prefect's settings must already be in the environment (`prefect_environment`)."""
    from prefect.client.orchestration import PrefectClient
    from prefect.server.api.server import create_app as create_prefect_app
    from prefect.server.api.server import is_client_retryable_exception

    prefect_app = create_prefect_app(final=True)
    if config.prefect_database_url.startswith("sqlite"):
        scheduled_runs_query.install()  # nodes' polls scan their own pool's runs only
        sqlite_event_writes.install()  # events written by executemany, not compiled per batch
    engine = make_engine(config.gateway_database_url)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        await upgrade_database(engine)
        # Starlette does not run a mounted app's lifespan: Prefect's migrations and services start here.
        async with prefect_app.router.lifespan_context(prefect_app):
            # On SQLite, Prefect's single writer: the guard sends nodes' and operators' writes one at a time.
            writes = asyncio.Lock() if config.prefect_database_url.startswith("sqlite") else None
            client = PrefectClient(prefect_app, auth_string=operator_secret)
            client.manage_lifespan = False
            async with client:
                sessions = make_sessionmaker(engine)
                app.state.gateway = GatewayState(
                    sessions=sessions,
                    prefect=client,
                    operator_secret=operator_secret,
                    base_job_template=base_job_template,
                    prefect_writes=writes,
                )
                frozen = prepare_heap_for_serving()
                logger.info(
                    "leruli gateway ready on %s (%d startup objects kept from collections)",
                    config.url,
                    frozen,
                )
                sweeper = asyncio.create_task(
                    lost_nodes.sweep_forever(
                        client,
                        engine,
                        interval=config.sweep_seconds,
                        lost_after_heartbeats=config.lost_after_heartbeats,
                        max_attempts=config.max_attempts,
                    )
                )
                watcher = asyncio.create_task(
                    rotation_watch.watch_forever(sessions, app.state.gateway.node_sockets)
                )
                yield
                watcher.cancel()
                sweeper.cancel()
        await engine.dispose()

    app = FastAPI(title="leruli-prefect gateway", version="1", lifespan=lifespan)
    for module in (health, whoami, groups, jobs, node_runs, results, codes, users, compute_secret, audit_log):
        app.include_router(module.router, prefix="/v1")
    # The original Leruli client's routes (/v22_1/..., /latest/group-token), onto the /v1 handlers.
    app.include_router(legacy_v22_1.router)

    @app.exception_handler(HTTPException)
    async def refused(request: Request, exc: HTTPException) -> Response:
        if exc.status_code in _AUDITED_REFUSALS:
            await audit.record(
                app.state.gateway.sessions,
                caller=getattr(request.state, "caller", None),
                action=f"{request.method} {request.url.path}",
                outcome=f"refused {exc.status_code}",
                detail=str(exc.detail),
                source=request.client.host if request.client else "unknown",
            )
        return await http_exception_handler(request, exc)

    @app.exception_handler(Exception)
    async def internal_error(request: Request, exc: Exception) -> JSONResponse:
        if is_client_retryable_exception(exc):
            # SQLite busy under concurrent writers, a dropped database connection: nothing was changed, and
            # the same request will work in a moment (Prefect answers its own such errors the same way).
            logger.warning("busy on %s %s: %s", request.method, request.url.path, exc)
            return JSONResponse(
                status_code=503,
                content={"detail": "the server is busy; retry in a moment"},
                headers={"Retry-After": "1"},
            )
        logger.exception("internal error on %s %s", request.method, request.url.path)
        return JSONResponse(status_code=500, content={"detail": "internal server error; see the server log"})

    app.mount("/", prefect_app)
    app.add_middleware(PrefectGuard, get_state=lambda: app.state.gateway)
    # Outermost: a shed request costs no work at all.
    app.add_middleware(LoadShedding, limit=config.max_in_flight)
    return app
