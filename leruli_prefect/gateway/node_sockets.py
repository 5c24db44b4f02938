"""Open websockets of compute nodes, by group, so that rotating a compute secret can close them at once.

Each socket is registered with the hash of the compute secret it was opened with. The process that rotates
a secret closes its own sockets at once (`revoke`); every process, the rotating one included, also compares
the registered hashes with the database's every second (`rotation_watch`) and closes the sockets whose
secret is no longer the group's (`revoke_changed`), so a rotation through one server process cuts off the
nodes held open by all the others too.
"""

from __future__ import annotations

import asyncio
from collections import defaultdict


class NodeSockets:
    def __init__(self) -> None:
        # group id -> {the socket's revocation event: hash of the compute secret it was opened with}
        self._open: dict[int, dict[asyncio.Event, str]] = defaultdict(dict)

    def register(self, group_id: int, secret_hash: str) -> asyncio.Event:
        """An event that is set when this group's compute secret is no longer `secret_hash`."""
        event = asyncio.Event()
        self._open[group_id][event] = secret_hash
        return event

    def unregister(self, group_id: int, event: asyncio.Event) -> None:
        sockets = self._open.get(group_id)
        if sockets is not None:
            sockets.pop(event, None)
            if not sockets:
                del self._open[group_id]

    def revoke(self, group_id: int) -> int:
        """Signal every open socket of the group; returns how many there were."""
        events = self._open.pop(group_id, {})
        for event in events:
            event.set()
        return len(events)

    def revoke_changed(self, current: dict[int, str]) -> int:
        """Signal the sockets opened with a secret that is no longer their group's (`current`: group id ->
        the compute secret hash now in the database; a group missing from it is gone). Returns how many."""
        revoked = 0
        for group_id in list(self._open):
            sockets = self._open[group_id]
            for event, secret_hash in list(sockets.items()):
                if current.get(group_id) != secret_hash:
                    event.set()
                    del sockets[event]
                    revoked += 1
            if not sockets:
                del self._open[group_id]
        return revoked

    def open_groups(self) -> list[int]:
        return list(self._open)

    def open_count(self, group_id: int) -> int:
        return len(self._open.get(group_id, ()))
