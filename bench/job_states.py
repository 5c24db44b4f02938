"""Waiting for jobs to end, through the gateway's REST API as a user would."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from uuid import UUID

    from bench.bench_stack import BenchStack

FINAL_STATES = frozenset({"Completed", "Failed", "Crashed", "Cancelled"})
# Polls are themselves load on the server: a few per second is enough for figures counted in seconds.
POLL_SECONDS = 0.25


def wait_until_all_final(
    bench: BenchStack, group: str, job_ids: set[UUID], timeout: float
) -> dict[UUID, str]:
    """Poll the group's newest jobs (one `GET /v1/jobs` per poll) until every job in `job_ids` has ended.

    `job_ids` must be among the group's 200 newest jobs. Returns each job's final state.
    """
    deadline = time.monotonic() + timeout
    client = bench.gateway(group)
    ended: dict[UUID, str] = {}
    while time.monotonic() < deadline:
        for job in client.jobs(limit=200):
            if job.id in job_ids and job.state in FINAL_STATES:
                ended[job.id] = job.state
        if len(ended) == len(job_ids):
            return ended
        time.sleep(POLL_SECONDS)
    raise TimeoutError(f"{len(job_ids) - len(ended)} of {len(job_ids)} jobs not ended within {timeout} s")


def wait_until_final(bench: BenchStack, group: str, job_id: UUID, timeout: float) -> str:
    deadline = time.monotonic() + timeout
    client = bench.gateway(group)
    while time.monotonic() < deadline:
        state = client.job(job_id).state
        if state in FINAL_STATES:
            return state
        time.sleep(POLL_SECONDS)
    raise TimeoutError(f"job {job_id} not ended within {timeout} s")


def require_completed(states: dict[UUID, str]) -> None:
    """A benchmark of jobs that failed measures nothing: stop with the states seen."""
    failed = {job_id: state for job_id, state in states.items() if state != "Completed"}
    if failed:
        sample = ", ".join(f"{job_id}: {state}" for job_id, state in list(failed.items())[:5])
        raise RuntimeError(f"{len(failed)} job(s) did not complete ({sample})")
