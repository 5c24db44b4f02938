"""The server: one ASGI app holding the gateway (/v1) and the Prefect server (API and UI behind the guard)."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse

from leruli_prefect.gateway.db import create_tables, make_engine, make_sessionmaker
from leruli_prefect.gateway.prefect_guard import PrefectGuard
from leruli_prefect.gateway.routes import groups, health, jobs, whoami
from leruli_prefect.gateway.server_config import ServerConfig
from leruli_prefect.gateway.state import GatewayState

logger = logging.getLogger(__name__)


def create_app(config: ServerConfig, *, operator_secret: str, base_job_template: dict[str, Any]) -> FastAPI:
    """Build the server app; Prefect's settings must already be in the environment (`prefect_environment`)."""
    from prefect.client.orchestration import PrefectClient
    from prefect.server.api.server import create_app as create_prefect_app

    prefect_app = create_prefect_app(final=True)
    engine = make_engine(config.gateway_database_url)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        await create_tables(engine)
        # Starlette does not run a mounted app's lifespan: Prefect's migrations and services start here.
        async with prefect_app.router.lifespan_context(prefect_app):
            client = PrefectClient(prefect_app, auth_string=operator_secret)
            client.manage_lifespan = False
            async with client:
                app.state.gateway = GatewayState(
                    sessions=make_sessionmaker(engine),
                    prefect=client,
                    operator_secret=operator_secret,
                    base_job_template=base_job_template,
                )
                logger.info("leruli gateway ready on %s", config.url)
                yield
        await engine.dispose()

    app = FastAPI(title="leruli-prefect gateway", version="1", lifespan=lifespan)
    for module in (health, whoami, groups, jobs):
        app.include_router(module.router, prefix="/v1")

    @app.exception_handler(Exception)
    async def internal_error(request: Request, exc: Exception) -> JSONResponse:
        logger.exception("internal error on %s %s", request.method, request.url.path)
        return JSONResponse(status_code=500, content={"detail": "internal server error; see the server log"})

    app.mount("/", prefect_app)
    app.add_middleware(PrefectGuard, get_state=lambda: app.state.gateway)
    return app
