"""A queue of 100,000 jobs on PostgreSQL: how fast the reads that matter stay.

Not part of `make bench` or `make test` (filling the queue takes minutes). Run it with the real parts up:

    scripts/with-services.sh .venv/bin/python -m bench.queue_on_postgres [--jobs 100000] [--other-jobs 10000]

It starts its own server on a fresh database of the test PostgreSQL cluster (scripts/postgres.sh), fills one
group's queue through the bulk path (`POST /v1/jobs/batch`, 1,000 jobs a call) and another group's with a
smaller backlog, half before and half after (so that every read must pick its group's rows out of others'),
then times through the gateway: the group's newest 100 (`GET /v1/jobs?limit=100`), one job's status
(`GET /v1/jobs/{id}`) and a node's claim (`POST /prefect/api/work_pools/{pool}/get_scheduled_flow_runs` with
the node's credentials, as a worker polls). No node runs, so the queue stays full. It prints a Markdown table
for bench/RESULTS.md and the plans PostgreSQL chose for the two flow run queries behind the reads.
"""

from __future__ import annotations

import argparse
import random
import secrets
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx

from bench.job_submission import trivial_spec
from bench.run import load_average, machine
from bench.timing import SETTLE_CPU_SHARE, median, percentile, settle, timed
from leruli_prefect.client import COMPUTE_SECRET_HEADER, GROUP_TOKEN_HEADER
from tests import stack

CHUNK = 1000  # jobs per POST /v1/jobs/batch (the gateway's maximum)
SAMPLES = 50
# After the fill the server still digests the runs' Scheduled events (Prefect's event persister writes each
# one): the reads are timed once it has settled (bench/timing.py), or after SETTLE_MAX_S.
SETTLE_MAX_S = 900


def fill(server: stack.Server, group: dict[str, str], jobs: int) -> tuple[list[str], float]:
    """Submit `jobs` queued jobs through the bulk path; returns their ids and the rate (jobs/s)."""
    spec = trivial_spec().model_dump(mode="json")
    headers = {"Authorization": f"Bearer {group['api_secret']}"}
    ids: list[str] = []
    with timed() as span, httpx.Client(base_url=server.url, headers=headers, timeout=600) as client:
        while len(ids) < jobs:
            count = min(CHUNK, jobs - len(ids))
            response = client.post("/v1/jobs/batch", json={"jobs": [spec] * count})
            response.raise_for_status()
            ids += [job["id"] for job in response.json()["jobs"]]
    return ids, jobs / span.seconds


def latencies_ms(call: Callable[[], httpx.Response], samples: int = SAMPLES) -> list[float]:
    call().raise_for_status()  # warms connections and caches: not a sample
    values = []
    for _ in range(samples):
        start = time.perf_counter()
        call().raise_for_status()
        values.append((time.perf_counter() - start) * 1000)
    return values


def figure(values: list[float]) -> str:
    return f"{median(values):.1f} ms (p95 {percentile(values, 0.95):.1f} ms)"


def explain(database: stack.PostgresDatabase, deployment_id: str, pool_id: str) -> str:
    """The plans of the queries behind the newest-100 listing and the claim (as Prefect 3.9 writes them)."""
    listing = (
        f"SELECT id FROM flow_run WHERE deployment_id = '{deployment_id}' "
        "ORDER BY expected_start_time DESC, id LIMIT 100"
    )
    claim = (
        "SELECT flow_run.id FROM flow_run JOIN work_queue ON work_queue.id = flow_run.work_queue_id "
        f"WHERE work_queue.work_pool_id = '{pool_id}' AND flow_run.state_type = 'SCHEDULED' "
        "AND flow_run.next_scheduled_start_time <= now() "
        "ORDER BY flow_run.next_scheduled_start_time ASC LIMIT 10"
    )
    return "\n".join(
        f"-- {name}\n{database.psql('EXPLAIN ANALYZE ' + sql, database=database.name)}"
        for name, sql in (("newest 100 of a group", listing), ("claim", claim))
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--jobs", type=int, default=100_000)
    parser.add_argument("--other-jobs", type=int, default=10_000)
    args = parser.parse_args()

    database = stack.PostgresDatabase.create(f"leruli_bench_{secrets.token_hex(4)}")
    scratch = Path(tempfile.mkdtemp(prefix="leruli-queue-bench-"))
    server = stack.start_server(scratch / "server", database_url=database.url)
    try:
        started = datetime.now(UTC)
        load_at_start = load_average()
        group, other = server.init_group("queue"), server.init_group("others")
        # The other group's jobs both older and newer than the measured group's: the listing (newest first)
        # and the claim (oldest first) each have to pass over some of them.
        _, other_rate = fill(server, other, args.other_jobs // 2)
        ids, rate = fill(server, group, args.jobs)
        fill(server, other, args.other_jobs - args.other_jobs // 2)
        settled = settle(server.process.popen.pid, SETTLE_MAX_S)
        user = httpx.Client(
            base_url=server.url, headers={"Authorization": f"Bearer {group['group_token']}"}, timeout=60
        )
        node = httpx.Client(
            base_url=f"{server.url}/prefect/api",
            headers={
                COMPUTE_SECRET_HEADER: group["compute_secret"],
                GROUP_TOKEN_HEADER: group["group_token"],
            },
            timeout=60,
        )
        pool = group["work_pool"]
        newest = latencies_ms(lambda: user.get("/v1/jobs", params={"limit": 100}))
        rng = random.Random(7)
        status = latencies_ms(lambda: user.get(f"/v1/jobs/{rng.choice(ids)}"))

        def claim() -> httpx.Response:
            before = (datetime.now(UTC) + timedelta(seconds=1)).isoformat()
            body = {"work_queue_names": ["default"], "scheduled_before": before, "limit": 2}
            return node.post(f"/work_pools/{pool}/get_scheduled_flow_runs", json=body)

        claimed = claim().json()
        assert len(claimed) == 2, claimed
        claims = latencies_ms(claim)
        operator = {"Authorization": f"Bearer {server.operator_secret}"}
        pool_id = httpx.get(f"{server.url}/prefect/api/work_pools/{pool}", headers=operator).json()["id"]
        deployment_id = claimed[0]["flow_run"]["deployment_id"]
        queued = len(ids) + args.other_jobs
        print(f"## Queue of {args.jobs:,} jobs on PostgreSQL ({started:%Y-%m-%d %H:%M} UTC)\n")
        print(f"Machine: {machine()}; load average at start {load_at_start}, at end {load_average()}.\n")
        print("| measure | value |\n|---|---|")
        print(
            f"| fill, other group: {args.other_jobs:,} jobs (POST /v1/jobs/batch) | {other_rate:.0f} jobs/s |"
        )
        print(f"| fill, measured group: {args.jobs:,} jobs by POST /v1/jobs/batch | {rate:.0f} jobs/s |")
        print(f"| GET /v1/jobs?limit=100 (newest 100 of the group), {queued:,} queued | {figure(newest)} |")
        print(f"| GET /v1/jobs/{{id}} (one job's status), {queued:,} queued | {figure(status)} |")
        print(f"| node's claim: get_scheduled_flow_runs (limit 2), {queued:,} queued | {figure(claims)} |")
        print(
            f"\n{SAMPLES} samples each, one client, after one warm-up call; timed once the server had"
            f" settled ({settled:.0f} s after the fill: below {SETTLE_CPU_SHARE:.0%} of a core,"
            f" or {SETTLE_MAX_S} s).\n"
        )
        print("```\n" + explain(database, deployment_id, pool_id) + "```")
    finally:
        server.process.stop()
        database.drop()


if __name__ == "__main__":
    main()
