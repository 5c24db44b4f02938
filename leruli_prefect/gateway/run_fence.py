"""Which node may still change a run: the fence a node's writes to its runs pass through.

A node written off for a run (it went silent and the run was requeued) may no longer change it; nor may a
node start a run that is no longer Pending. Prefect accepts Running after Cancelled (a terminal state may be
left for a rerun): a node that held a run while an operator forced it Cancelled would start it after all.
A claim (a proposed Pending) needs no fence here: Prefect accepts Pending only from Scheduled.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from leruli_prefect.attempts import attempt_of, is_written_off
from leruli_prefect.gateway.asgi import Refused

if TYPE_CHECKING:
    from leruli_prefect.gateway.job_reads import RunFacts

_STARTABLE = {"PENDING", "RUNNING"}  # RUNNING: the retry of a start whose answer was lost


def check(found: RunFacts | None, worker_name: str | None, *, proposed: str | None = None) -> None:
    """Refuse (409) a node's write to the run `found` (None: no such run, left to Prefect to answer);
    `proposed` is the type of the state it proposes, if any."""
    labels = found.labels if found is not None else {}
    if is_written_off(labels, worker_name):
        raise Refused(409, f"node {worker_name} lost this job; attempt {attempt_of(labels)} holds it")
    if proposed == "RUNNING" and found is not None and found.state_type not in _STARTABLE:
        current = (found.state_type or "no state").title()
        raise Refused(409, f"the job is {current}: a node starts only a job it holds Pending")
