"""Row 1 (and the backlog part of row 6): submit to container start, one job at a time.

Submit = the moment `POST /v1/jobs` returns; container start = the engine's `start` event of the job's
container. Each job waits a random fraction of the node's poll interval before it is submitted, so the
samples do not lock onto the node's polling rhythm.
"""

from __future__ import annotations

import random
import time
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING

from bench.bench_stack import CONCURRENCY, RUN_GROUP
from bench.job_states import require_completed, wait_until_all_final
from bench.job_submission import make_small_directories, post_job, stage_directory
from bench.results_table import Figure
from bench.timing import percentile
from leruli_prefect.worker.node_config import NodeConfig

if TYPE_CHECKING:
    from bench.bench_stack import BenchStack
    from bench.container_events import ContainerEvents

NODE_POLL_SECONDS: float = NodeConfig.model_fields["poll_seconds"].default  # the node's default
P50_TARGET_S = 1.0
P95_TARGET_S = 2.0


def pickup_latencies(bench: BenchStack, events: ContainerEvents, jobs: int, label: str) -> list[float]:
    """Seconds from each submission's return to its container's start, for `jobs` trivial jobs in turn."""
    directories = make_small_directories(bench.scratch / f"pickup-{label}", jobs)
    with ThreadPoolExecutor(CONCURRENCY) as pool:  # buckets and uploads first: not what is measured
        specs = list(pool.map(lambda directory: stage_directory(bench, directory, "true"), directories))
    rng = random.Random(7)
    latencies = []
    job_ids = set()
    for spec in specs:
        time.sleep(rng.uniform(0, NODE_POLL_SECONDS))
        job_id = post_job(bench, RUN_GROUP, spec)
        submitted = time.time()
        job_ids.add(job_id)
        started = events.wait_for("start", str(job_id), timeout=120)
        latencies.append(started - submitted)
        events.wait_for("die", str(job_id), timeout=120)  # one job at a time: a free slot for the next
    require_completed(wait_until_all_final(bench, RUN_GROUP, job_ids, timeout=120))
    return latencies


def pickup_figures(row: str, latencies: list[float], note: str = "") -> list[Figure]:
    p50, p95 = percentile(latencies, 0.5), percentile(latencies, 0.95)
    measure = f"pickup latency, {len(latencies)} jobs{note}"
    return [
        Figure(
            row, f"{measure}: p50", f"{p50:.2f} s", target=f"< {P50_TARGET_S:g} s", met=p50 < P50_TARGET_S
        ),
        Figure(
            row, f"{measure}: p95", f"{p95:.2f} s", target=f"< {P95_TARGET_S:g} s", met=p95 < P95_TARGET_S
        ),
    ]


def measure(bench: BenchStack, events: ContainerEvents, jobs: int = 50) -> list[Figure]:
    return pickup_figures("1", pickup_latencies(bench, events, jobs, "idle"))
