"""Watching a running job for a cancel: Prefect's worker never stops infrastructure it has started.

A cancel is the flow run's state becoming Cancelling (or Cancelled), or the gateway's cancel tag on it (which
outlives a state that a racing Running proposal replaced). While a job runs, the node reads its
flow run every `cancel_poll_seconds` (one cheap GET, allowed for nodes by the gateway) and, on a cancel, runs
the job's stop action (kill its container) at once. The same poll notices when the node has lost the job:
written off by the server after the node went silent (paused, cut off) and requeued for another node; the
job is then stopped too and `lost` tells the worker to upload nothing and set no state.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING

import anyio
import httpx
from prefect.client.schemas.objects import StateType

from leruli_prefect.attempts import LOST_REASON, is_written_off
from leruli_prefect.job_spec import CANCEL_TAG

if TYPE_CHECKING:
    from uuid import UUID

    from prefect.client.orchestration import PrefectClient

logger = logging.getLogger(__name__)

CANCEL_STATES = frozenset({StateType.CANCELLING, StateType.CANCELLED})
StopAction = Callable[[], Awaitable[None]]


class CancelWatch:
    """Polls one flow run; once it is cancelled, `requested` is true and the stop action (if any) has run.

    >>> watch = CancelWatch(client, flow_run_id, interval=0.5)
    >>> # in a task group: tg.start_soon(watch.watch); later: await watch.on_cancel(kill_container)
    """

    def __init__(
        self, client: PrefectClient, flow_run_id: UUID, *, interval: float, node_name: str | None = None
    ) -> None:
        self._client = client
        self._node_name = node_name
        self.lost = False  # written off: another attempt holds the job now
        self._flow_run_id = flow_run_id
        self._interval = interval
        self._stop: StopAction | None = None
        self.requested = False
        self.message: str | None = None  # the cancel's own words ("cancelled by ..."), kept for Cancelled

    async def watch(self) -> None:
        """Poll until the run is cancelled (then stop the job) or until this task is cancelled."""
        while not self.requested:
            await anyio.sleep(self._interval)
            try:
                flow_run = await self._client.read_flow_run(self._flow_run_id)
            except httpx.HTTPError as exc:  # a passing gateway hiccup must not end the job
                logger.warning("cannot read flow run %s for a cancel: %s", self._flow_run_id, exc)
                continue
            if is_written_off(flow_run.labels, self._node_name):
                self.requested = self.lost = True
                self.message = LOST_REASON
            elif flow_run.state is not None and flow_run.state.type in CANCEL_STATES:
                self.requested = True
                self.message = flow_run.state.message
            elif CANCEL_TAG in flow_run.tags:
                # Cancelled while this node was claiming it: our Running replaced the Cancelled state.
                self.requested = True
                self.message = "cancelled while starting"
        if self._stop is not None:
            await self._stop()

    async def on_cancel(self, stop: StopAction) -> None:
        """Register what stops the job; run it now if the cancel came first."""
        self._stop = stop
        if self.requested:
            await stop()
