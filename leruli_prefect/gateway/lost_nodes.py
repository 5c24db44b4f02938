"""Writing off the jobs of lost nodes: a node that stops heartbeating loses its jobs, which are requeued.

Every node (a Prefect worker) heartbeats to its pool every `heartbeat_interval_seconds` and labels each run it
claims with its name. Every `sweep_seconds` the sweeper reads the Pending and Running runs of leruli pools
(their ids, labels and pools only, straight from the database: read whole through Prefect's API, 400 held
runs kept a fifth of the server's one thread busy);
a run whose holder has been silent for `lost_after_heartbeats` of its own intervals is written off: the
holder's name goes into the run's labels (the fence, see `leruli_prefect.attempts`), the run becomes Crashed
with `node lost`, and, while fewer than `max_attempts` were made, Scheduled again so that another node takes
it. Prefect keeps every state, so the job's history shows each attempt. The three numbers are the server's
settings (`leruli server start --sweep-seconds --lost-after-heartbeats --max-attempts`); the defaults below.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any, NamedTuple
from uuid import UUID

import sqlalchemy as sa
from prefect.server.database import provide_database_interface
from prefect.server.schemas.states import StateType
from prefect.settings import PREFECT_API_DEFAULT_LIMIT
from prefect.states import Crashed, Scheduled

from leruli_prefect.attempts import HOLDER_LABEL, LOST_REASON, attempt_of, write_off_labels
from leruli_prefect.gateway.job_runs import WORKER_TYPE
from leruli_prefect.gateway.sweep_turn import sweep_turn

if TYPE_CHECKING:
    from prefect.client.orchestration import PrefectClient
    from prefect.client.schemas.objects import Worker
    from sqlalchemy.ext.asyncio import AsyncEngine

logger = logging.getLogger(__name__)

SWEEP_SECONDS = 2.0  # one cheap query; it bounds how late a lost node is noticed
LOST_AFTER_HEARTBEATS = 3  # silent this many of its own heartbeat intervals: lost (Prefect's OFFLINE rule)
MAX_ATTEMPTS = 3  # a job whose node was lost this many times stays Crashed
_DEFAULT_HEARTBEAT_SECONDS = 30  # Prefect's default, for a worker that never said its interval
_HELD = [StateType.PENDING, StateType.RUNNING]  # Prefect's server-side enum: compared in SQL


class HeldRun(NamedTuple):
    id: UUID
    labels: dict[str, Any]
    work_pool_name: str | None


async def read_held_runs() -> list[HeldRun]:
    """Every Pending or Running run of leruli pools (one query, no page limit)."""
    db = provide_database_interface()
    query = (
        sa.select(db.FlowRun.id, db.FlowRun.labels, db.WorkPool.name)
        .join(db.WorkQueue, db.FlowRun.work_queue_id == db.WorkQueue.id)
        .join(db.WorkPool, db.WorkQueue.work_pool_id == db.WorkPool.id)
        .where(db.FlowRun.state_type.in_(_HELD), db.WorkPool.type == WORKER_TYPE)
    )
    async with db.session_context() as session:
        rows = (await session.execute(query)).all()
    return [HeldRun(run_id, dict(labels or {}), pool) for run_id, labels, pool in rows]


async def sweep_forever(
    prefect: PrefectClient,
    engine: AsyncEngine,
    *,
    interval: float = SWEEP_SECONDS,
    lost_after_heartbeats: int = LOST_AFTER_HEARTBEATS,
    max_attempts: int = MAX_ATTEMPTS,
) -> None:
    """Sweep until cancelled (the server's lifespan runs this as a background task).

    Server processes that share a database take turns (`sweep_turn`): a run is written off once.
    """
    up_since = datetime.now(UTC)
    while True:
        try:
            async with sweep_turn(engine) as my_turn:
                if my_turn:
                    await sweep_once(
                        prefect,
                        lost_after_heartbeats=lost_after_heartbeats,
                        max_attempts=max_attempts,
                        up_since=up_since,
                    )
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # a busy database or a passing error must not end the sweeping
            logger.warning("lost-node sweep failed: %s", exc)
        await asyncio.sleep(interval)


async def sweep_once(
    prefect: PrefectClient,
    *,
    lost_after_heartbeats: int = LOST_AFTER_HEARTBEATS,
    max_attempts: int = MAX_ATTEMPTS,
    up_since: datetime | None = None,
    held_runs: Callable[[], Awaitable[list[HeldRun]]] = read_held_runs,
) -> list[HeldRun]:
    """Write off every held run whose holder is lost; returns those runs (`up_since`: see `is_lost`)."""
    held = await held_runs()
    if not held:
        return []
    now = datetime.now(UTC)
    workers: dict[str, dict[str, Worker]] = {}
    written_off = []
    for flow_run in held:
        holder = flow_run.labels.get(HOLDER_LABEL)
        pool = flow_run.work_pool_name
        if not isinstance(holder, str) or not holder or pool is None:
            continue  # claimed a moment ago, not yet labelled by its new holder (a write-off blanks it)
        if pool not in workers:
            workers[pool] = {w.name: w for w in await _pool_workers(prefect, pool)}
        lost = is_lost(
            workers[pool].get(holder), now, lost_after_heartbeats=lost_after_heartbeats, up_since=up_since
        )
        if not lost:
            continue
        try:
            await write_off(prefect, flow_run, holder, max_attempts=max_attempts)
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # one run that cannot be written off must not hide the ones after it
            logger.warning("job %s: cannot write off lost node %s: %s", flow_run.id, holder, exc)
            continue
        written_off.append(flow_run)
    return written_off


async def _pool_workers(prefect: PrefectClient, pool: str) -> list[Worker]:
    """Every worker of `pool`, page by page (a holder not read would count as unknown, never as lost)."""
    workers: list[Worker] = []
    page_size = _page_size()
    while True:
        page = await prefect.read_workers_for_work_pool(pool, limit=page_size, offset=len(workers))
        workers.extend(page)
        if len(page) < page_size:
            return workers


def _page_size() -> int:
    """The most Prefect's API returns per read (`PREFECT_API_DEFAULT_LIMIT`, 200 unless set)."""
    return PREFECT_API_DEFAULT_LIMIT.value()


def is_lost(
    worker: Worker | None,
    now: datetime,
    *,
    lost_after_heartbeats: int = LOST_AFTER_HEARTBEATS,
    up_since: datetime | None = None,
) -> bool:
    """A worker is lost when it has been silent for `lost_after_heartbeats` of its heartbeat intervals.

    Silence is counted from `up_since` (when this server started) at the earliest: while the server was down
    (restarted, upgraded) its nodes could not heartbeat, and they must not lose their jobs for that.
    """
    if worker is None or worker.last_heartbeat_time is None:
        return False  # not yet known to its pool: give it time (it heartbeats before it claims)
    interval = worker.heartbeat_interval_seconds or _DEFAULT_HEARTBEAT_SECONDS
    heard = max(worker.last_heartbeat_time, up_since) if up_since else worker.last_heartbeat_time
    return now - heard > timedelta(seconds=lost_after_heartbeats * interval)


async def write_off(prefect: PrefectClient, flow_run: HeldRun, holder: str, *, max_attempts: int) -> None:
    """Fence `holder` off, mark the run Crashed (`node lost`) and requeue it while attempts are left."""
    attempt = attempt_of(flow_run.labels)
    requeue = attempt < max_attempts
    labels = write_off_labels(flow_run.labels, holder, requeue=requeue)
    # The fence goes up first, so the lost holder cannot slip a state in between.
    await prefect.update_flow_run_labels(flow_run.id, dict(labels))
    # The message is the job's reason, exactly `node lost`; who and which attempt are in the labels.
    await prefect.set_flow_run_state(flow_run.id, Crashed(message=LOST_REASON), force=True)
    if requeue:
        await prefect.set_flow_run_state(
            flow_run.id,
            Scheduled(message=f"requeued after node lost: attempt {attempt + 1} of {max_attempts}"),
            force=True,
        )
    logger.warning(
        "job %s: node %s lost on attempt %d; %s",
        flow_run.id,
        holder,
        attempt,
        f"requeued as attempt {attempt + 1}" if requeue else "no attempts left",
    )
