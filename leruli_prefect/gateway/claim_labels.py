"""A node's claim labels its run in the same transaction: the gateway writes the labels as Prefect accepts it.

Prefect's worker labels every run it claims with its own name (the holder: the fence of
`leruli_prefect.attempts`), its type and its pool, in a request of its own after its Pending was accepted
(`PATCH /flow_runs/{id}/labels`). That request cost the server about 13 ms of CPU and each job's start about
70 ms, and between the two requests the run was Pending with no holder: a node that died there left it
Pending for good, since the lost-node sweeper writes off only runs that name their holder.

So the gateway orchestrates a node's Pending itself (`node_states`); if it is accepted, the run gets the
holder's labels in the same transaction, before the node hears the answer (the node skips Prefect's own
request: `LeruliWorker._give_worker_labels_to_flow_run`). The labels are written straight into Prefect's
table, as Prefect's own endpoint writes them (as `job_reads` reads them).
"""

from __future__ import annotations

from typing import TYPE_CHECKING
from uuid import UUID

import sqlalchemy as sa
from prefect.server.database import provide_database_interface

from leruli_prefect.attempts import HOLDER_LABEL
from leruli_prefect.gateway.job_runs import WORKER_TYPE

if TYPE_CHECKING:
    from sqlalchemy.ext.asyncio import AsyncSession


def holder_labels(worker_name: str, pool_name: str, pool_id: UUID) -> dict[str, str]:
    """The labels Prefect's worker gives a run it claims (`BaseWorker._give_worker_labels_to_flow_run`)."""
    return {
        HOLDER_LABEL: worker_name,
        "prefect.worker.type": WORKER_TYPE,
        "prefect.work-pool.name": pool_name,
        "prefect.work-pool.id": str(pool_id),
    }


async def label_claimed_run(session: AsyncSession, run_id: UUID, worker_name: str) -> bool:
    """Merge the holder's labels into the run's, in `session`'s transaction (that of the accepted claim)."""
    db = provide_database_interface()
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
