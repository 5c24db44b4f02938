"""A node's claim labels its run in the same request: the gateway writes the labels once Prefect accepts it.

Prefect's worker labels every run it claims with its own name (the holder: the fence of
`leruli_prefect.attempts`), its type and its pool, in a request of its own after its Pending was accepted
(`PATCH /flow_runs/{id}/labels`). That request cost the server about 13 ms of CPU and each job's start about
70 ms, and between the two requests the run was Pending with no holder: a node that died there left it
Pending for good, since the lost-node sweeper writes off only runs that name their holder.

So the guard holds back Prefect's answer to a node's Pending; if Prefect accepted it, the run gets the
holder's labels before the node hears the answer (the node skips Prefect's own request:
`LeruliWorker._give_worker_labels_to_flow_run`). The labels are written straight into Prefect's table, as
Prefect's own endpoint writes them, in the gateway's process (as `job_reads` reads them).
"""

from __future__ import annotations

import gzip
import json
import logging
from collections.abc import Awaitable, Callable
from typing import Any
from uuid import UUID

import sqlalchemy as sa
from prefect.server.database import provide_database_interface

from leruli_prefect.attempts import HOLDER_LABEL
from leruli_prefect.gateway.asgi import Message, Send
from leruli_prefect.gateway.job_runs import WORKER_TYPE

logger = logging.getLogger(__name__)


def holder_labels(worker_name: str, pool_name: str, pool_id: UUID) -> dict[str, str]:
    """The labels Prefect's worker gives a run it claims (`BaseWorker._give_worker_labels_to_flow_run`)."""
    return {
        HOLDER_LABEL: worker_name,
        "prefect.worker.type": WORKER_TYPE,
        "prefect.work-pool.name": pool_name,
        "prefect.work-pool.id": str(pool_id),
    }


async def label_claimed_run(run_id: UUID, worker_name: str) -> bool:
    """Merge the holder's labels into the run's in one transaction; False if the run or its pool is gone."""
    db = provide_database_interface()
    # IMMEDIATE on SQLite: take the write lock first and wait for it, rather than fail to upgrade later.
    async with db.session_context(begin_transaction=True, with_for_update=True) as session:
        query = (
            sa.select(db.FlowRun.labels, db.WorkPool.name, db.WorkPool.id)
            .join(db.WorkQueue, db.FlowRun.work_queue_id == db.WorkQueue.id)
            .join(db.WorkPool, db.WorkQueue.work_pool_id == db.WorkPool.id)
            .where(db.FlowRun.id == run_id)
        )
        row = (await session.execute(query)).first()
        if row is None:
            return False
        labels, pool_name, pool_id = row
        merged = {**(labels or {}), **holder_labels(worker_name, pool_name, pool_id)}
        await session.execute(sa.update(db.FlowRun).where(db.FlowRun.id == run_id).values(labels=merged))
    return True


def is_accepted(start: Message, body: bytes) -> bool:
    """Whether Prefect's answer to a proposed state says it was accepted (`{"status": "ACCEPT", ...}`); the
    answer may be gzipped (Prefect's API compresses larger answers for clients that accept it)."""
    if start["status"] not in (200, 201):
        return False
    headers = {name.lower(): value for name, value in start.get("headers", [])}
    try:
        if headers.get(b"content-encoding") == b"gzip":
            body = gzip.decompress(body)
        answer: Any = json.loads(body)
    except (ValueError, OSError, EOFError):  # not JSON, or not gzip after all
        return False
    return isinstance(answer, dict) and answer.get("status") == "ACCEPT"


def labelling_when_accepted(send: Send, label: Callable[[], Awaitable[object]]) -> Send:
    """`send`, holding back Prefect's answer to a claim until, if it was accepted, `label()` is done.

    A label write that fails is logged and the answer still goes out: the run is the node's, and its
    job runs; only a later write-off of that node would miss it (as before, when the node's own request
    could fail)."""
    held: list[Message] = []

    async def send_after_labels(message: Message) -> None:
        if message["type"] not in ("http.response.start", "http.response.body"):
            return await send(message)
        held.append(message)
        if message["type"] == "http.response.start" or message.get("more_body", False):
            return
        body = b"".join(part.get("body", b"") for part in held[1:])
        if is_accepted(held[0], body):
            try:
                await label()
            except Exception:
                logger.exception("a claimed run was not labelled with its holder")
        for part in held:
            await send(part)
        held.clear()

    return send_after_labels
