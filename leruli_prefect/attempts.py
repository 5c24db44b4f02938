"""The attempts of a job: a job whose node is lost is requeued, and each attempt is fenced off from the rest.

A job's flow run carries, as Prefect labels, which attempt it is on (`leruli.attempt`, absent = 1) and, for
each attempt written off because its node went silent, the name of the worker that held it
(`leruli.lost.N`). That worker name is the fencing token: Prefect's worker labels the run it claims with its
name (`prefect.worker.name`, blanked at a write-off) and sends that name with every API request
(`X-Prefect-Worker-Name`), so the gateway refuses writes from a worker that lost the run and does not hold it
again, and the worker itself stops the job and keeps its outputs. A worker that lost a run may claim a later
attempt of it once its stale task has ended (it never holds one run twice).
Shared by the gateway (the sweeper, the guard) and the node; nothing here imports Prefect.
"""

from __future__ import annotations

from collections.abc import Mapping

ATTEMPT_LABEL = "leruli.attempt"
LOST_LABEL_PREFIX = "leruli.lost."
HOLDER_LABEL = "prefect.worker.name"  # set by Prefect's worker on every run it claims
WORKER_NAME_HEADER = "x-prefect-worker-name"  # sent by Prefect's client once its worker has started
LOST_REASON = "node lost"


def attempt_of(labels: Mapping[str, object]) -> int:
    """The attempt a run is on: 1 until it is first requeued."""
    try:
        return int(str(labels.get(ATTEMPT_LABEL, 1)))
    except ValueError:
        return 1


def lost_holders(labels: Mapping[str, object]) -> set[str]:
    """The workers that held an earlier attempt of this run and were written off."""
    return {str(value) for key, value in labels.items() if key.startswith(LOST_LABEL_PREFIX) and value}


def is_written_off(labels: Mapping[str, object], worker_name: str | None) -> bool:
    """Whether `worker_name` lost this run and has not claimed it again since: it may no longer set its
    state, change it or upload outputs. (The write-off blanks the holder label; a new claim sets it.)"""
    if worker_name is None or worker_name not in lost_holders(labels):
        return False
    return labels.get(HOLDER_LABEL) != worker_name


def write_off_labels(labels: Mapping[str, object], holder: str, *, requeue: bool) -> dict[str, str | int]:
    """The labels that record that `holder` lost the current attempt (and open the next one if requeued)."""
    attempt = attempt_of(labels)
    written: dict[str, str | int] = {f"{LOST_LABEL_PREFIX}{attempt}": holder, HOLDER_LABEL: ""}
    if requeue:
        written[ATTEMPT_LABEL] = attempt + 1
    return written
