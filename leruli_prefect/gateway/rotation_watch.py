"""Closing, in every server process, the node websockets of a compute secret rotated in any of them.

Several server processes share one database; a rotation lands on one of them. Every second, while this
process holds node websockets, it reads the current compute secret hash of their groups (one indexed query
by primary key) and closes the sockets opened with another one. Polling rather than PostgreSQL's
LISTEN/NOTIFY or a Redis channel: it works the same on SQLite and PostgreSQL, with or without Redis, needs no
connection held open per process, cannot miss a notification sent while a process was reconnecting, and
costs nothing while no node is connected.
"""

from __future__ import annotations

import asyncio
import logging
from typing import TYPE_CHECKING

from sqlalchemy import select

from leruli_prefect.gateway.db import Group

if TYPE_CHECKING:
    from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

    from leruli_prefect.gateway.node_sockets import NodeSockets

logger = logging.getLogger(__name__)

WATCH_SECONDS = 1.0  # how late another process's rotation may close this process's node sockets


async def watch_once(sessions: async_sessionmaker[AsyncSession], sockets: NodeSockets) -> int:
    """Close the sockets whose compute secret was rotated; returns how many were closed."""
    groups = sockets.open_groups()
    if not groups:
        return 0
    async with sessions() as session:
        rows = await session.execute(select(Group.id, Group.compute_secret_hash).where(Group.id.in_(groups)))
        current = {group_id: secret_hash for group_id, secret_hash in rows.all()}
    revoked = sockets.revoke_changed(current)
    if revoked:
        logger.info("closed %d node websocket(s) whose compute secret was rotated", revoked)
    return revoked


async def watch_forever(
    sessions: async_sessionmaker[AsyncSession], sockets: NodeSockets, *, interval: float = WATCH_SECONDS
) -> None:
    """Watch until cancelled (the server's lifespan runs this as a background task)."""
    while True:
        await asyncio.sleep(interval)
        try:
            await watch_once(sessions, sockets)
        except Exception:  # a database hiccup: the next turn tries again; requests are checked regardless
            logger.warning("compute secret watch failed; retrying", exc_info=True)
