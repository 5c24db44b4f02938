"""What a node watches of the runs it holds, all in one request (nodes only)."""

from __future__ import annotations

from uuid import UUID

from fastapi import APIRouter

from leruli_prefect.gateway import job_reads
from leruli_prefect.gateway.deps import NodeDep, caller_group
from leruli_prefect.gateway.models import RunWatch, WatchedRuns

router = APIRouter(tags=["nodes"])


@router.post("/node/runs")
async def watch_runs(body: RunWatch, caller: NodeDep) -> WatchedRuns:
    """The state, its message, labels and tags of those of `ids` that are the group's (others are left
    out): a node reads every job it holds with this twice a second, to stop a cancelled or written-off one."""
    group = caller_group(caller)
    return WatchedRuns(runs=await job_reads.read_watched_runs(body.ids, UUID(group.deployment_id)))
