"""Answering a node's poll of an empty queue in the gateway, without Prefect.

A node with a free slot polls four times a second (`poll_seconds`), and most polls find nothing. Prefect
spends about 34 ms of the server's one event-loop thread on each (two sessions, the scheduled-runs query,
and two background writes that mark the pool's queues and deployment as polled), so every idle node kept
the server about 15 % busy, and seven idle nodes a whole core (bench/RESULTS.md, "Idle and running
nodes"). One indexed query answers most of those polls: if none of the pool's runs is Scheduled and due,
the answer is an empty list whatever else Prefect would check (paused queues, concurrency limits).

Prefect still gets a poll of each pool at least every `REAL_POLL_SECONDS`: its foreman marks a queue and a
deployment NOT_READY (shown in its UI) when neither was polled for 60 s. Between those, a poll that does find
runs is answered by `due_polls`.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from prefect.server.database import provide_database_interface
from prefect.server.schemas.states import StateType

REAL_POLL_SECONDS = 10.0


class IdlePolls:
    """When a pool's poll may be answered here; one per server process.

    >>> polls = IdlePolls()
    >>> polls.passed("pool-a")  # Prefect answered a poll of pool-a
    >>> polls.prefect_polled_lately("pool-a"), polls.prefect_polled_lately("pool-b")
    (True, False)
    """

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._last_passed: dict[str, float] = {}  # pool name -> when a poll of it last went to Prefect

    def prefect_polled_lately(self, pool: str) -> bool:
        last = self._last_passed.get(pool)
        return last is not None and self._clock() - last < REAL_POLL_SECONDS

    def passed(self, pool: str) -> None:
        self._last_passed[pool] = self._clock()

    async def nothing_due(self, pool: str, body: bytes) -> bool:
        """True when the poll (its JSON `body`) can be answered with an empty list here."""
        if not self.prefect_polled_lately(pool):
            return False
        try:
            scheduled_before = _scheduled_before(body)
        except ValueError:
            return False  # Prefect answers a malformed poll with its own 422
        return not await pool_has_due_run(pool, scheduled_before)


def _scheduled_before(body: bytes) -> datetime | None:
    """The poll's `scheduled_before` (None: any time, as Prefect reads a missing one)."""
    data = json.loads(body or b"{}")
    if not isinstance(data, dict):
        raise ValueError("a poll's body is a JSON object")
    return read_moment(data, "scheduled_before")


def read_moment(data: dict[str, Any], key: str) -> datetime | None:
    """A poll's date-time field as Prefect reads it (None when absent; naive means UTC); ValueError if it is
    not a date-time string."""
    raw = data.get(key)
    if raw is None:
        return None
    if not isinstance(raw, str):
        raise ValueError(f"{key} is a date-time string")
    moment = datetime.fromisoformat(raw)
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


async def pool_has_due_run(pool: str, scheduled_before: datetime | None) -> bool:
    """Whether any run in `pool`'s queues is Scheduled to start by `scheduled_before` (one indexed query):
    what Prefect's scheduled-runs query needs before it looks further."""
    db = provide_database_interface()
    query = (
        sa.select(db.FlowRun.id)
        .join(db.WorkQueue, db.FlowRun.work_queue_id == db.WorkQueue.id)
        .join(db.WorkPool, db.WorkQueue.work_pool_id == db.WorkPool.id)
        .where(db.WorkPool.name == pool, db.FlowRun.state_type == StateType.SCHEDULED)
        .limit(1)
    )
    if scheduled_before is not None:
        query = query.where(db.FlowRun.next_scheduled_start_time <= scheduled_before)
    async with db.session_context() as session:
        return (await session.execute(query)).first() is not None
