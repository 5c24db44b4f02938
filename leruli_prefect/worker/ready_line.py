"""Runs held ready (`NodeConfig.prefetch`, off by default): claimed before a slot is free, inputs staged and
container made, so each starts the moment a slot frees.

Claiming a run costs a node four round trips through the gateway (poll, Pending, worker labels, Running),
about 0.3 s here, and its stage-in seconds for large inputs: a slot stands idle for both between two jobs.
A run held ready has done all but the Running proposal before its slot frees. One that waits longer than
`prefetch_hold_seconds` (the jobs ahead are long) goes back to the queue at its place, so an idle node takes
it; the line then takes nobody new until a container ends. Where the server's CPU is what limits (2 cores,
bench row 2) the line changes nothing measurable; where staging is a job's long part and jobs are shorter
than the hold, it hides the stage-in (docs/adding-a-node.md has the figures).

Only the run's own task ends a run in line: a cancel wakes it, and it sets Cancelled itself. Prefect's
worker would set Cancelled for it, and Prefect accepts Scheduled after Cancelled, so a give-back racing
that cancel would have brought the job back to life. From Cancelling Prefect accepts only Cancelled, so a
give-back racing the user's cancel is refused.
"""

from __future__ import annotations

import asyncio
import enum
import logging
from datetime import UTC, datetime
from typing import TYPE_CHECKING
from uuid import UUID

import anyio
import httpx
from prefect.client.schemas.objects import StateType
from prefect.client.schemas.responses import SetStateStatus
from prefect.exceptions import PrefectHTTPStatusError
from prefect.states import Cancelled, Scheduled

from leruli_prefect.worker.packing import NodeCapacity

if TYPE_CHECKING:
    from prefect.client.orchestration import PrefectClient
    from prefect.client.schemas.objects import FlowRun


class Turn(enum.Enum):
    ADMITTED = "admitted"  # it holds a slot now
    CANCELLED = "cancelled"  # a cancel came while it waited
    HELD_TOO_LONG = "held too long"


class ReadyLine:
    """The wake-ups of the runs waiting in `capacity`'s line."""

    def __init__(self, capacity: NodeCapacity, hold_seconds: float) -> None:
        self.capacity = capacity
        self.hold_seconds = hold_seconds
        self._calls: dict[UUID, asyncio.Event] = {}
        self._cancelled: set[UUID] = set()

    def admit(self) -> None:
        """Let the runs at the head of the line into the room that is free now."""
        for job in self.capacity.admit():
            self._wake(job)  # type: ignore[arg-type]

    def cancel(self, job: UUID) -> bool:
        """A cancel came for `job`: True when it waits in line (its wait ends; its task sets Cancelled)."""
        if not self.capacity.is_waiting(job):
            return False
        self._cancelled.add(job)
        self._wake(job)
        return True

    async def wait(self, job: UUID) -> Turn:
        """Wait until `job` is admitted, cancelled, or has waited `hold_seconds`."""
        called = self._calls.setdefault(job, asyncio.Event())
        try:
            with anyio.move_on_after(self.hold_seconds):
                while self.capacity.is_waiting(job) and job not in self._cancelled:
                    await called.wait()
                    called.clear()
        finally:
            del self._calls[job]
        if job in self._cancelled:
            self._cancelled.discard(job)
            self.capacity.release(job)
            return Turn.CANCELLED
        return Turn.HELD_TOO_LONG if self.capacity.is_waiting(job) else Turn.ADMITTED

    def _wake(self, job: UUID) -> None:
        called = self._calls.get(job)
        if called is not None:
            called.set()


async def give_back(client: PrefectClient, flow_run: FlowRun, node_name: str, hold_seconds: float) -> bool:
    """Put a run held ready back in the queue at its place; True when it is no longer this node's (given back,
    cancelled, or another attempt's), False when it stays in line (the gateway did not answer)."""
    job = flow_run.id
    queued_at = flow_run.next_scheduled_start_time or flow_run.expected_start_time or datetime.now(UTC)
    back = Scheduled(
        scheduled_time=queued_at,
        message=f"back in the queue: no slot freed on node {node_name} within {hold_seconds:g} s",
    )
    try:
        answer = await client.set_flow_run_state(job, back)
        if answer.status == SetStateStatus.ACCEPT:
            return True
        current = await client.read_flow_run(job)
    except PrefectHTTPStatusError as exc:
        # 409: this node was written off and the job requeued; 404: the job is gone.
        return exc.response.status_code in (404, 409)
    except httpx.HTTPError as exc:
        logging.getLogger(__name__).info("job %s stays in line (not given back): %s", job, exc)
        return False
    state = current.state.type if current.state is not None else None
    if state == StateType.CANCELLING:  # the cancel came first: Prefect allows only Cancelled from it
        await client.set_flow_run_state(job, Cancelled(message=current.state.message))
    return state != StateType.PENDING
