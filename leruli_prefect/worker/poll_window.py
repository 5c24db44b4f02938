"""How many scheduled runs a node asks for in one poll.

Prefect's worker asks for the server's default page (200 runs); with a deep queue every poll then loads and
serializes 200 flow runs (447 KB of JSON), and with 20 nodes polling, those polls took 27 % of the server's
busy time, more than anything else (bench/RESULTS.md, "Many nodes"). A node claims at most a few runs per
poll, so it asks for the head of the queue only: `WINDOW` runs, the same head that `claim_order` spreads
nodes over. Only when a full window held nothing more this node could take, and it still has room, does it
ask once more for the default page: a small node must still find a small run behind many big ones.
"""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, Any

import httpx
from prefect.client.schemas.responses import WorkerFlowRunResponse

from leruli_prefect.worker.claim_order import SPREAD_WINDOW

if TYPE_CHECKING:
    from prefect.client.orchestration import PrefectClient

WINDOW = SPREAD_WINDOW


async def scheduled_runs(
    client: PrefectClient,
    *,
    work_pool_name: str,
    work_queue_names: list[str] | None,
    scheduled_before: datetime,
    limit: int | None,
) -> list[WorkerFlowRunResponse]:
    """`PrefectClient.get_scheduled_flow_runs_for_work_pool` with the endpoint's `limit`, which the client
    method does not pass (None: the server's default page). An unknown pool offers nothing, as in Prefect's
    worker (its next heartbeat creates or reports it)."""
    body: dict[str, Any] = {"scheduled_before": str(scheduled_before)}
    if work_queue_names:
        body["work_queue_names"] = list(work_queue_names)
    if limit is not None:
        body["limit"] = limit
    try:
        response = await client.request(
            "POST",
            "/work_pools/{name}/get_scheduled_flow_runs",
            path_params={"name": work_pool_name},
            json=body,
        )
    except httpx.HTTPStatusError as exc:
        if exc.response.status_code == 404:
            return []
        raise
    return WorkerFlowRunResponse.model_validate_list(response.json())
