"""Waiting for jobs to end, through the gateway's REST API as a user would."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from collections.abc import Iterable
    from uuid import UUID

    from bench.bench_stack import BenchStack

FINAL_STATES = frozenset({"Completed", "Failed", "Crashed", "Cancelled"})
# Polls are themselves load on the server: a few per second is enough for figures counted in seconds.
POLL_SECONDS = 0.25


def wait_until_all_final(
    bench: BenchStack, group: str, job_ids: Iterable[UUID], timeout: float
) -> dict[UUID, str]:
    """Wait until every job in `job_ids` has ended; returns each job's final state.

    One `GET /v1/jobs/{id}` at a time, for the first job (in the order given) not seen ended yet: jobs end
    about in the order they were submitted, so most answers move the wait on to the next job at once. The
    server spends about 10 ms on one; a listing of the group's 200 newest jobs four times a second (how this
    waited before) kept the server it measures busy with the benchmark itself.
    """
    deadline = time.monotonic() + timeout
    client = bench.gateway(group)
    waiting = list(dict.fromkeys(job_ids))
    ended: dict[UUID, str] = {}
    while waiting:
        if time.monotonic() > deadline:
            total = len(ended) + len(waiting)
            raise TimeoutError(f"{len(waiting)} of {total} jobs not ended within {timeout} s")
        state = client.job(waiting[0]).state
        if state in FINAL_STATES:
            ended[waiting.pop(0)] = state
        else:
            time.sleep(POLL_SECONDS)
    return ended


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
