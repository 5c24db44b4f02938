"""What the gateway holds while it runs: its database sessions, a Prefect client, the operator secret."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any
from uuid import UUID

from leruli_prefect.gateway.idle_polls import IdlePolls
from leruli_prefect.gateway.node_sockets import NodeSockets

if TYPE_CHECKING:
    from prefect.client.orchestration import PrefectClient
    from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

    from leruli_prefect.gateway.result_storage import GroupResultStorage


@dataclass
class GatewayState:
    sessions: async_sessionmaker[AsyncSession]
    prefect: PrefectClient
    operator_secret: str
    base_job_template: dict[str, Any]
    # flow run id -> deployment id; a flow run never changes deployment, so this never goes stale.
    run_deployments: dict[UUID, UUID] = field(default_factory=dict)
    # work pool name -> id (the tenant UI scopes events by the pool's resource id).
    pool_ids: dict[str, UUID] = field(default_factory=dict)
    node_sockets: NodeSockets = field(default_factory=NodeSockets)
    idle_polls: IdlePolls = field(default_factory=IdlePolls)
    # On SQLite one writer at a time: writes that collide fail at once (SQLITE_BUSY) rather than wait, so
    # the guard sends nodes' writing requests to Prefect one by one. None on PostgreSQL.
    prefect_writes: asyncio.Lock | None = None
    # group name -> its result storage block (made once, never changed)
    result_storages: dict[str, GroupResultStorage] = field(default_factory=dict)
