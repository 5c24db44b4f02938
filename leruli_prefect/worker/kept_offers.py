"""The runs a node's last poll offered and it did not take, kept for the slots that free up soon after.

A busy node asks for jobs each time a container ends (`LeruliWorker._poll_when_freed`), and its regular
polls find a slot free between a container's end and the next claim: in row 2 of bench/ (100 trivial jobs,
2 slots) that was 0.76 polls per job, each one loading and serializing the head of the queue on the server
(`poll_window.WINDOW` runs: 29-33 ms of its CPU) and parsing it again on the node. The runs behind the one
it took are still the head of the queue a moment later, so while they are fresh (`KEPT_SECONDS`) a poll takes
the next of them and asks the server only when none of them can be taken.

Taking a kept offer is as safe as taking a fresh one: the claim (Pending) is the check. A run that another
node took, or that was cancelled or deleted meanwhile, is refused there; the node then forgets what it kept
and asks the server at its next poll. A run submitted meanwhile is behind the kept ones in the queue anyway.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Sequence
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from prefect.client.schemas.responses import WorkerFlowRunResponse

# Long enough to serve a busy node's releases from one poll for a while (about 9 per second in row 2), short
# enough that a run put back in the queue (a lost node's) waits at most this long behind the kept offers.
KEPT_SECONDS = 5.0


class KeptOffers:
    """The offers of one poll, in the order the node tries them, until taken, stale or forgotten.

    >>> kept = KeptOffers(clock=lambda: 0.0)
    >>> kept.fresh()
    []
    """

    def __init__(self, *, kept_seconds: float = KEPT_SECONDS, clock: Callable[[], float] = time.monotonic):
        self._kept_seconds = kept_seconds
        self._clock = clock
        self._offers: list[WorkerFlowRunResponse] = []
        self._polled_at = 0.0

    def keep(self, offered: Sequence[WorkerFlowRunResponse], taken: Iterable[WorkerFlowRunResponse]) -> None:
        """Keep what a poll just offered, in claim order, but the runs taken from it."""
        self._offers = list(offered)
        self._polled_at = self._clock()
        self.drop(taken)

    def fresh(self) -> list[WorkerFlowRunResponse]:
        """The kept offers, or none when they are older than `kept_seconds`."""
        if self._clock() - self._polled_at > self._kept_seconds:
            self._offers = []
        return list(self._offers)

    def drop(self, taken: Iterable[WorkerFlowRunResponse]) -> None:
        """Runs taken (claimed or about to be) are no longer on offer to this node."""
        gone = {response.flow_run.id for response in taken}
        if gone:
            self._offers = [offer for offer in self._offers if offer.flow_run.id not in gone]

    def forget(self) -> None:
        """A claim was refused: what the node kept may be stale, so its next poll asks the server."""
        self._offers = []
