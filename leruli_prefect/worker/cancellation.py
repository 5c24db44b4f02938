"""Watching a running job for a cancel: Prefect's worker never stops infrastructure it has started.

A cancel is the flow run's state becoming Cancelling (or Cancelled), or the gateway's cancel tag on it (which
outlives a state that a racing Running proposal replaced). While a job runs, the node reads its
flow run every `cancel_poll_seconds` (with all of the node's other jobs, in one request: `run_reads`) and, on
a cancel, runs the job's stop action (kill its container) at once. The same read notices when the node has
lost the job: written off by the server after the node went silent (paused, cut off) and requeued for
another node; the job is then stopped too and `lost` tells the worker to upload nothing and set no state.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING

from leruli_prefect.attempts import LOST_REASON, is_written_off
from leruli_prefect.errors import LeruliError
from leruli_prefect.job_spec import CANCEL_TAG

if TYPE_CHECKING:
    from uuid import UUID

    from leruli_prefect.worker.run_reads import RunReads

logger = logging.getLogger(__name__)

CANCEL_STATES = frozenset({"CANCELLING", "CANCELLED"})
StopAction = Callable[[], Awaitable[None]]


class CancelWatch:
    """Watches one flow run; once it is cancelled, `requested` is true and the stop action (if any) has run.

    >>> watch = CancelWatch(reads, flow_run_id, node_name="node-1")
    >>> # in a task group: tg.start_soon(watch.watch); later: await watch.on_cancel(kill_container)
    """

    def __init__(self, reads: RunReads, flow_run_id: UUID, *, node_name: str | None = None) -> None:
        self._reads = reads
        self._node_name = node_name
        self.lost = False  # written off: another attempt holds the job now
        self._flow_run_id = flow_run_id
        self._stop: StopAction | None = None
        self.requested = False
        self.message: str | None = None  # the cancel's own words ("cancelled by ..."), kept for Cancelled

    async def watch(self) -> None:
        """Watch until the run is cancelled (then stop the job) or until this task is cancelled."""
        while not self.requested:
            try:
                run = await self._reads.next(self._flow_run_id)
            except (OSError, LeruliError) as exc:  # a passing gateway hiccup must not end the job
                logger.warning("cannot read flow run %s for a cancel: %s", self._flow_run_id, exc)
                continue
            if run is None:  # deleted on the server: nobody can see its outputs or state any more
                self.requested = True
                self.message = "the job was deleted on the server"
            elif is_written_off(run.labels, self._node_name):
                self.requested = self.lost = True
                self.message = LOST_REASON
            elif run.state_type in CANCEL_STATES:
                self.requested = True
                self.message = run.state_message
            elif CANCEL_TAG in run.tags:
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
