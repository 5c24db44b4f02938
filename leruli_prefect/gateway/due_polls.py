"""Answering a node's poll that finds runs in the gateway, with Prefect's own scheduled-runs query.

After `idle_polls`, the polls that reach Prefect are those that find a job: about one per job. Prefect's
endpoint spends about 34 ms of the server's CPU on each: its request stack, two sessions, the query, and two
background tasks (through its task queue) that mark the pool's queues and deployments as polled. The marks
need one poll of each pool now and then (`idle_polls.REAL_POLL_SECONDS`), not one per job.

So while Prefect has had a poll of the pool lately, the gateway answers a plain poll itself: the same lookups
and the same query function (`prefect.server.models.workers.get_scheduled_flow_runs`, with the SQLite
template of `scheduled_runs_query`), serialized as Prefect's endpoint serializes its answer. This goes below
Prefect's public classes, so it is pinned to the Prefect minor version `scheduled_runs_query` pins, and
tests/gateway/test_due_polls.py proves the answers equal Prefect's. Anything not plain (unknown fields, a
queue that does not exist, a limit Prefect refuses, a malformed body) goes to Prefect, which answers it.
"""

from __future__ import annotations

import json
from datetime import datetime

import prefect
import sqlalchemy as sa
from prefect.server import models, schemas
from prefect.server.database import provide_database_interface
from prefect.settings import PREFECT_SERVER_API_DEFAULT_LIMIT
from pydantic import TypeAdapter

from leruli_prefect.gateway.idle_polls import read_moment
from leruli_prefect.gateway.scheduled_runs_query import PINNED_PREFECT

if not prefect.__version__.startswith(PINNED_PREFECT):
    raise ImportError(f"due_polls is written for Prefect {PINNED_PREFECT}x, not {prefect.__version__}")

_FIELDS = {"work_queue_names", "scheduled_before", "scheduled_after", "limit"}
_ANSWER = TypeAdapter(list[schemas.responses.WorkerFlowRunResponse])


class NotPlain(ValueError):
    """A poll this module leaves to Prefect."""


def read_poll(body: bytes) -> tuple[list[str], datetime | None, datetime | None, int]:
    """The poll's queue names, `scheduled_before`, `scheduled_after` and limit, as Prefect reads them."""
    data = json.loads(body or b"{}")
    if not isinstance(data, dict) or not set(data) <= _FIELDS:
        raise NotPlain("not a plain poll")
    names = data.get("work_queue_names") or []
    if not isinstance(names, list) or not all(isinstance(name, str) for name in names):
        raise NotPlain("work_queue_names is not a list of names")
    default_limit = PREFECT_SERVER_API_DEFAULT_LIMIT.value()
    limit = data.get("limit")
    limit = default_limit if limit is None else limit
    if not isinstance(limit, int) or isinstance(limit, bool) or not 0 <= limit <= default_limit:
        raise NotPlain("a limit Prefect refuses")
    return names, read_moment(data, "scheduled_before"), read_moment(data, "scheduled_after"), limit


async def answer_poll(pool: str, body: bytes) -> bytes | None:
    """Prefect's answer (JSON) to this poll of `pool`, or None when the poll is left to Prefect."""
    try:
        names, before, after, limit = read_poll(body)
    except ValueError:
        return None
    try:
        return await _answer(pool, names, before, after, limit)
    except sa.exc.DBAPIError:  # a busy SQLite, say: Prefect's endpoint, behind the write lock, answers it
        return None


async def _answer(
    pool: str, names: list[str], before: datetime | None, after: datetime | None, limit: int
) -> bytes | None:
    db = provide_database_interface()
    async with db.session_context(begin_transaction=True) as session:
        pool_id = (
            await session.execute(sa.select(db.WorkPool.id).where(db.WorkPool.name == pool))
        ).scalar_one_or_none()
        if pool_id is None:
            return None
        queue_ids = None  # all the pool's queues, as Prefect reads an empty list
        if names:
            found = await session.execute(
                sa.select(db.WorkQueue.name, db.WorkQueue.id).where(
                    db.WorkQueue.work_pool_id == pool_id, db.WorkQueue.name.in_(names)
                )
            )
            ids = dict(found.all())
            if set(ids) != set(names):
                return None  # Prefect answers 404 for a queue it does not have
            queue_ids = [ids[name] for name in names]
        runs = await models.workers.get_scheduled_flow_runs(
            session=session,
            work_pool_ids=[pool_id],
            work_queue_ids=queue_ids,
            scheduled_before=before,
            scheduled_after=after,
            limit=limit,
        )
    return _ANSWER.dump_json(list(runs), by_alias=True)  # as FastAPI serializes a response model
