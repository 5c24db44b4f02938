"""One read for all the runs a node watches, instead of one per job.

Each job a node holds is watched for a cancel or a write-off twice a second (`CancelWatch`). Read one by
one, through Prefect's API, that cost the server 12 ms a read: 25 ms a second per running job, so that 40
running jobs would have kept the server's one thread busy with nothing else. Here the watches of all of a
node's jobs wait for the same read, made once per interval (`POST /v1/node/runs`, one indexed query).
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence
from typing import Any, NamedTuple
from uuid import UUID


class WatchedRun(NamedTuple):
    state_type: str | None  # Prefect's StateType value, e.g. "CANCELLING"
    state_message: str | None
    labels: dict[str, Any]
    tags: list[str]


ReadMany = Callable[[Sequence[UUID]], Awaitable[dict[UUID, WatchedRun]]]


class RunReads:
    """Reads of runs, gathered into one `read_many` call every `interval` seconds.

    >>> reads = RunReads(read_many, interval=0.5)
    >>> run = await reads.next(run_id)  # the run as read at the next round; None: not found
    """

    def __init__(self, read_many: ReadMany, interval: float) -> None:
        self._read_many = read_many
        self._interval = interval
        self._waiting: dict[UUID, list[asyncio.Future[WatchedRun | None]]] = {}
        self._rounds: asyncio.Task[None] | None = None

    async def next(self, run_id: UUID) -> WatchedRun | None:
        """The run as the next round reads it (at most `interval` from now); raises what that read raised."""
        future: asyncio.Future[WatchedRun | None] = asyncio.get_running_loop().create_future()
        self._waiting.setdefault(run_id, []).append(future)
        if self._rounds is None or self._rounds.done():
            self._rounds = asyncio.create_task(self._read_rounds())
        return await future

    async def _read_rounds(self) -> None:
        # Runs while anyone waits: a node with no job running makes no reads.
        while self._waiting:
            await asyncio.sleep(self._interval)
            waiting, self._waiting = self._waiting, {}
            waiting = {run_id: [f for f in futures if not f.done()] for run_id, futures in waiting.items()}
            waiting = {run_id: futures for run_id, futures in waiting.items() if futures}
            if not waiting:
                continue
            try:
                found = await self._read_many(list(waiting))
            except Exception as exc:  # every watch of this round gets the failure, and decides itself
                for futures in waiting.values():
                    for future in futures:
                        if not future.done():
                            future.set_exception(exc)
                continue
            for run_id, futures in waiting.items():
                for future in futures:
                    if not future.done():
                        future.set_result(found.get(run_id))
