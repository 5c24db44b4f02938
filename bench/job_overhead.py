"""Row 2: per-job overhead. 100 trivial jobs through one node with 2 slots, against the same 100
`docker run --network none`s done directly with docker-py, 2 at a time.

Through the node, the time runs from the first submission to the last job's end as the gateway reports
it; the inputs' buckets are made beforehand (that is row 3's subject, not this one's).
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING

from bench.bench_stack import CONCURRENCY, RUN_GROUP, TEST_IMAGE
from bench.job_states import require_completed, wait_until_all_final
from bench.job_submission import make_small_directories, post_job, stage_directory
from bench.results_table import Figure
from bench.timing import timed

if TYPE_CHECKING:
    from bench.bench_stack import BenchStack

SLOTS = 2
RATIO_TARGET = 1.5


def direct_docker_runs(bench: BenchStack, jobs: int) -> float:
    """Seconds for `jobs` trivial containers, `SLOTS` at a time, straight through docker-py."""

    def run_one(_: int) -> None:
        bench.docker().containers.run(
            TEST_IMAGE, ["/bin/bash", "-c", "true"], network_mode="none", remove=True
        )

    with timed() as span, ThreadPoolExecutor(SLOTS) as pool:
        list(pool.map(run_one, range(jobs)))
    return span.seconds


def jobs_through_node(bench: BenchStack, jobs: int) -> float:
    directories = make_small_directories(bench.scratch / "overhead", jobs)
    with ThreadPoolExecutor(CONCURRENCY) as pool:
        specs = list(pool.map(lambda directory: stage_directory(bench, directory, "true"), directories))
    with timed() as span:
        with ThreadPoolExecutor(CONCURRENCY) as pool:
            job_ids = list(pool.map(lambda spec: post_job(bench, RUN_GROUP, spec), specs))
        states = wait_until_all_final(bench, RUN_GROUP, job_ids, timeout=900)
    require_completed(states)
    return span.seconds


def measure(bench: BenchStack, jobs: int = 100) -> list[Figure]:
    direct = direct_docker_runs(bench, jobs)
    node = jobs_through_node(bench, jobs)
    ratio = node / direct
    return [
        Figure(
            "2",
            f"{jobs} trivial jobs, node with {SLOTS} slots: wall time",
            f"{node:.1f} s",
            baseline=f"{direct:.1f} s docker-py",
            ratio=ratio,
            target=f"ratio < {RATIO_TARGET:g}",
            met=ratio < RATIO_TARGET,
        )
    ]
