"""Reads a node repeats for every claim although their answer hardly changes: kept for a short while.

Prefect's worker reads the run's deployment before each claim, only to see that it still exists. A group's
nodes all claim runs of one deployment, so one read per `ttl` answers them all; a deployment deleted
meanwhile (its group removed) takes its runs with it, so their claims fail at the server anyway.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from typing import Any, Generic, TypeVar
from uuid import UUID

T = TypeVar("T")


class RecentReads(Generic[T]):
    """`read(id)` remembered per id for `ttl` seconds; errors are not remembered.

    >>> read_deployment = RecentReads(client.read_deployment, ttl=30)
    >>> deployment = await read_deployment(deployment_id)  # the API is asked at most every 30 s
    """

    def __init__(self, read: Callable[[UUID], Awaitable[T]], *, ttl: float) -> None:
        self._read = read
        self._ttl = ttl
        self._known: dict[UUID, tuple[float, T]] = {}

    async def __call__(self, object_id: UUID, *args: Any, **kwargs: Any) -> T:
        now = time.monotonic()
        known = self._known.get(object_id)
        if known is not None and now - known[0] < self._ttl and not args and not kwargs:
            return known[1]
        value = await self._read(object_id, *args, **kwargs)
        self._known[object_id] = (now, value)
        return value
