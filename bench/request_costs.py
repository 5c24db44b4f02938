"""The server's CPU per request of a job's life, each kind alone on an otherwise idle server.

Row 2's jobs cost the server about 0.3 s of CPU each (`job_overhead` prints the figure). This says which
requests it goes to: the node's poll for runs (with its window of `poll_window.WINDOW` runs, and with a
window of 8), its read of the runs it watches, the three states it proposes (the claim, Running, the final
state), a status lookup of 100 jobs (a user, or the benchmark, waiting), and a job's creation in a batch.
Each figure includes what the server does for the request afterwards (events), as far as it does it within
a few seconds. Not part of `make bench`: run it with the real parts up,

    scripts/with-services.sh .venv/bin/python -m bench.request_costs
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta

import httpx

from bench.bench_stack import BenchStack
from bench.job_submission import trivial_spec
from bench.results_table import Figure, format_table
from bench.timing import cpu_seconds
from leruli_prefect.attempts import WORKER_NAME_HEADER
from leruli_prefect.client import COMPUTE_SECRET_HEADER, GROUP_TOKEN_HEADER
from leruli_prefect.worker.poll_window import WINDOW

GROUP = "bench-costs"  # no node serves it: its jobs stay where the requests put them
QUEUED = 100
REPEATS = 60
# The server keeps working for a request after answering it (events, their persister): counted up to here.
AFTERMATH_S = 3.0
IDLE_S = 10.0


def measure() -> list[Figure]:
    bench = BenchStack.start()
    try:
        return _measure(bench)
    finally:
        bench.close()


def _measure(bench: BenchStack) -> list[Figure]:
    secrets = bench.group(GROUP)
    gateway = bench.gateway(GROUP)
    server = bench.server.process.popen.pid
    time.sleep(5)  # the new group's first moments
    before = cpu_seconds(server)
    time.sleep(IDLE_S)
    idle_share = (cpu_seconds(server) - before) / IDLE_S

    def per_request(what: str, repeats: int, request: Callable[[], object], per: int = 1) -> Figure:
        request()  # the first of a kind loads code and fills caches
        start = cpu_seconds(server)
        began = time.monotonic()
        for _ in range(repeats):
            request()
        time.sleep(AFTERMATH_S)
        spent = cpu_seconds(server) - start - idle_share * (time.monotonic() - began)
        return Figure("2", what, f"{spent / (repeats * per) * 1000:.1f} ms")

    def create_batch() -> list[str]:
        jobs = gateway.submit_jobs([(trivial_spec(), uuid.uuid4().hex) for _ in range(QUEUED)])
        return [str(job["id"]) for job in jobs]

    figures = [Figure("2", "server CPU while idle", f"{idle_share * 100:.1f} % of a core")]
    queued = create_batch()
    node = httpx.Client(
        base_url=bench.server.url,
        headers={
            GROUP_TOKEN_HEADER: secrets["group_token"],
            COMPUTE_SECRET_HEADER: secrets["compute_secret"],
        },
        timeout=60,
    )
    pool = f"leruli-{GROUP}"

    def poll(limit: int) -> httpx.Response:
        before = datetime.now(UTC) + timedelta(seconds=10)
        body = {"scheduled_before": before.isoformat(), "limit": limit}
        return _ok(node.post(f"/prefect/api/work_pools/{pool}/get_scheduled_flow_runs", json=body))

    due = len(queued)  # all Scheduled: no node serves the group
    for limit in (WINDOW, 8):
        figures.append(
            per_request(f"node's poll for {limit} runs, {due} due", REPEATS, lambda limit=limit: poll(limit))
        )
    figures.append(
        per_request(
            "node's read of the 2 runs it watches",
            REPEATS,
            lambda: _ok(node.post("/v1/node/runs", json={"ids": queued[:2]})),
        )
    )
    holder = {WORKER_NAME_HEADER: "bench-costs-node"}
    for state in ("PENDING", "RUNNING", "COMPLETED"):
        runs = iter(queued[1 : REPEATS + 2])

        def propose(state: str = state, runs: Iterator[str] = runs) -> object:
            body = {"state": {"type": state, "name": state.title()}, "force": False}
            answer = _ok(
                node.post(f"/prefect/api/flow_runs/{next(runs)}/set_state", json=body, headers=holder)
            )
            if answer.json()["status"] != "ACCEPT":
                raise RuntimeError(f"{state} not accepted: {answer.text[:200]}")
            return answer

        figures.append(per_request(f"node's proposal of {state.title()}", REPEATS, propose))
    figures.append(
        per_request(f"status lookup of {QUEUED} jobs", REPEATS // 4, lambda: gateway.lookup_jobs(queued))
    )
    figures.append(per_request(f"creating a job, in a batch of {QUEUED}", 5, create_batch, per=QUEUED))
    return figures


def _ok(response: httpx.Response) -> httpx.Response:
    response.raise_for_status()
    return response


def main() -> None:
    print(format_table(measure()))


if __name__ == "__main__":
    main()
