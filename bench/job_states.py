"""Waiting for jobs to end, through the gateway's REST API as a user would."""

from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING
from uuid import UUID

if TYPE_CHECKING:
    from collections.abc import Iterable

    from bench.bench_stack import BenchStack

FINAL_STATES = frozenset({"Completed", "Failed", "Crashed", "Cancelled"})
# Polls are themselves load on the server: a few per second is enough for figures counted in seconds.
POLL_SECONDS = 0.25
# The waits for many jobs read their ends from the jobs themselves, so they may look seldom.
BATCH_POLL_SECONDS = 1.0
LOOKUP_CHUNK = 200  # the gateway's most ids per POST /v1/jobs/lookup


@dataclass(frozen=True)
class Ended:
    """A job's final state, and when it ended as the gateway reports it (the flow run's end time)."""

    state: str
    at: datetime | None


def wait_until_all_final(
    bench: BenchStack, group: str, job_ids: Iterable[UUID], timeout: float
) -> dict[UUID, Ended]:
    """Wait until every job in `job_ids` has ended; returns each job's final state and end time.

    One `POST /v1/jobs/lookup` a second for the jobs not seen ended yet (200 ids per call). The end times
    come from the jobs themselves, so how often this looks does not enter a figure; and looking seldom
    keeps the benchmark's own load off the server it measures (a `GET /v1/jobs/{id}` four times a second
    was 2.4 reads per job in row 2, about 9 % of the server's CPU there).
    """
    deadline = time.monotonic() + timeout
    client = bench.gateway(group)
    waiting = list(dict.fromkeys(str(job_id) for job_id in job_ids))
    ended: dict[UUID, Ended] = {}
    while True:
        for start in range(0, len(waiting), LOOKUP_CHUNK):
            for job in client.lookup_jobs(waiting[start : start + LOOKUP_CHUNK]):
                if job.state in FINAL_STATES:
                    ended[job.id] = Ended(job.state, job.ended)
        waiting = [job_id for job_id in waiting if UUID(job_id) not in ended]
        if not waiting:
            return ended
        if time.monotonic() > deadline:
            total = len(ended) + len(waiting)
            raise TimeoutError(f"{len(waiting)} of {total} jobs not ended within {timeout} s")
        time.sleep(BATCH_POLL_SECONDS)


def last_end(ended: dict[UUID, Ended]) -> datetime:
    """When the last of the jobs ended."""
    times = [job.at for job in ended.values() if job.at is not None]
    if len(times) < len(ended):
        raise RuntimeError(f"{len(ended) - len(times)} ended job(s) have no end time")
    return max(times)


def wait_until_final(bench: BenchStack, group: str, job_id: UUID, timeout: float) -> str:
    deadline = time.monotonic() + timeout
    client = bench.gateway(group)
    while time.monotonic() < deadline:
        state = client.job(job_id).state
        if state in FINAL_STATES:
            return state
        time.sleep(POLL_SECONDS)
    raise TimeoutError(f"job {job_id} not ended within {timeout} s")


def require_completed(ended: dict[UUID, Ended]) -> None:
    """A benchmark of jobs that failed measures nothing: stop with the states seen."""
    failed = {job_id: job.state for job_id, job in ended.items() if job.state != "Completed"}
    if failed:
        sample = ", ".join(f"{job_id}: {state}" for job_id, state in list(failed.items())[:5])
        raise RuntimeError(f"{len(failed)} job(s) did not complete ({sample})")
