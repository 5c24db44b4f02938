"""Open websockets of compute nodes, by group, so that rotating a compute secret can close them at once.

Within one server process; a second process behind a load balancer keeps its own (its nodes' next HTTP
request is refused all the same, since every request is checked against the database).
"""

from __future__ import annotations

import asyncio
from collections import defaultdict


class NodeSockets:
    def __init__(self) -> None:
        self._revocations: dict[int, set[asyncio.Event]] = defaultdict(set)

    def register(self, group_id: int) -> asyncio.Event:
        """An event that is set when this group's compute secret is rotated."""
        event = asyncio.Event()
        self._revocations[group_id].add(event)
        return event

    def unregister(self, group_id: int, event: asyncio.Event) -> None:
        self._revocations[group_id].discard(event)

    def revoke(self, group_id: int) -> int:
        """Signal every open socket of the group; returns how many there were."""
        events = self._revocations.pop(group_id, set())
        for event in events:
            event.set()
        return len(events)

    def open_count(self, group_id: int) -> int:
        return len(self._revocations.get(group_id, ()))
