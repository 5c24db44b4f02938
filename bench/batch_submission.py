"""Row 3: submitting many small jobs, against the storage ceiling and Prefect's one-by-one creation.

- storage ceiling: each directory's bucket made and its input uploaded directly with boto3, concurrently;
- Prefect client: flow runs of the group's deployment created one by one by the operator through
  `/prefect/api` (what the server can create without a bulk path);
- end to end: the `leruli submit` path (pack, bucket, upload, `POST /v1/jobs`) over a thread pool;
- bulk: the same through `GatewayClient.submit_jobs` (`leruli task-submit --batch`), the targeted row.

The jobs go to a group no node serves: they stay queued and cost nothing to run.
"""

from __future__ import annotations

import asyncio
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import TYPE_CHECKING
from uuid import UUID

from bench.bench_stack import CONCURRENCY
from bench.job_submission import make_small_directories, stage_directory, submit_directory, trivial_spec
from bench.results_table import Figure
from bench.timing import settle, timed
from leruli_prefect.client import GatewayClient
from leruli_prefect.job_spec import FLOW_NAME, deployment_name
from leruli_prefect.storage.buckets import create_bucket, new_bucket_name
from leruli_prefect.storage.transfer import upload_file

if TYPE_CHECKING:
    from bench.bench_stack import BenchStack
    from leruli_prefect.job_spec import JobSpec

BATCH_GROUP = "bench-batch"
CEILING_FRACTION_TARGET = 0.8
SERVER_CREATION_TARGET = 1000.0  # jobs/s


def storage_ceiling(bench: BenchStack, directories: list[Path]) -> float:
    """Jobs/s for one bucket per directory and its files uploaded, straight through boto3."""

    def store(directory: Path) -> None:
        s3 = bench.s3()
        bucket = new_bucket_name()
        create_bucket(s3, bucket)
        bench.created_bucket(bucket)
        for path in directory.iterdir():
            upload_file(s3, path, bucket, path.name)

    with timed() as span, ThreadPoolExecutor(CONCURRENCY) as pool:
        list(pool.map(store, directories))
    return len(directories) / span.seconds


def prefect_one_by_one(bench: BenchStack, runs: int) -> float:
    """Flow runs/s created one at a time through Prefect's client, as the operator."""
    from prefect.client.orchestration import PrefectClient

    parameters = trivial_spec().model_dump()

    async def create() -> float:
        api = f"{bench.server.url}/prefect/api"
        async with PrefectClient(api, auth_string=bench.server.operator_secret) as client:
            deployment = await client.read_deployment_by_name(f"{FLOW_NAME}/{deployment_name(BATCH_GROUP)}")
            with timed() as span:
                for _ in range(runs):
                    await client.create_flow_run_from_deployment(deployment.id, parameters=parameters)
            return runs / span.seconds

    return asyncio.run(create())


def end_to_end(bench: BenchStack, directories: list[Path]) -> float:
    """Jobs/s through the `leruli submit` path, `CONCURRENCY` submissions at a time."""
    with timed() as span, ThreadPoolExecutor(CONCURRENCY) as pool:
        list(pool.map(lambda directory: submit_directory(bench, BATCH_GROUP, directory), directories))
    return len(directories) / span.seconds


BULK_CALL_JOBS = 1000  # the most one `POST /v1/jobs/batch` takes
SETTLE_MAX_S = 60.0


def submit_in_bulk(bench: BenchStack, group: str, specs: list[JobSpec]) -> list[UUID]:
    """`GatewayClient.submit_jobs` in calls of at most `BULK_CALL_JOBS`; returns the job ids."""
    client = bench.gateway(group)
    ids: list[UUID] = []
    for start in range(0, len(specs), BULK_CALL_JOBS):
        chunk = [(spec, uuid.uuid4().hex) for spec in specs[start : start + BULK_CALL_JOBS]]
        ids += [UUID(str(job["id"])) for job in client.submit_jobs(chunk)]
    return ids


def bulk(bench: BenchStack, directories: list[Path]) -> tuple[float, float] | None:
    """Jobs/s through the bulk path (stage concurrently, then bulk calls), and runs/s of the bulk calls
    alone (the server-side creation); None while the bulk path does not exist."""
    if not hasattr(GatewayClient, "submit_jobs"):
        return None
    with timed() as staging, ThreadPoolExecutor(CONCURRENCY) as pool:
        specs = list(pool.map(lambda directory: stage_directory(bench, directory, "true"), directories))
    # The creation alone, not behind what the server may still be doing for earlier rows (Prefect's event
    # persister writes an event per run 3b and 3c made, seconds after their answers). The wait is in neither
    # figure.
    settle(bench.server.process.popen.pid, SETTLE_MAX_S)
    with timed() as creation:
        submit_in_bulk(bench, BATCH_GROUP, specs)
    return len(directories) / (staging.seconds + creation.seconds), len(directories) / creation.seconds


def measure(bench: BenchStack, jobs: int = 1000, slow_jobs: int = 200) -> list[Figure]:
    """`jobs` directories for the storage ceiling and the bulk path; `slow_jobs` for the paths that create
    flow runs one at a time (a few per second here: 1000 of each would take most of the 15 minutes).

    The ceiling is measured right before and right after the bulk path, each time on a store emptied the
    same way, and 3a is both runs together: the local Ceph slows down with every thousand buckets made and
    deleted (76, 67, 59, 57 jobs/s in four such rounds here, its CPU per round 15.6 s up to 25.0 s), so a
    ceiling measured two rounds before the bulk path was the faster store's.
    """
    bench.group(BATCH_GROUP)
    root = bench.scratch / "batch"
    created = prefect_one_by_one(bench, slow_jobs)
    submitted = end_to_end(bench, make_small_directories(root / "end-to-end", slow_jobs))
    bench.delete_buckets()  # a store full of earlier buckets would slow the next path down
    before = storage_ceiling(bench, make_small_directories(root / "ceiling-before", jobs))
    bench.delete_buckets()
    bulk_rates = bulk(bench, make_small_directories(root / "bulk", jobs))
    bench.delete_buckets()
    after = storage_ceiling(bench, make_small_directories(root / "ceiling-after", jobs))
    bench.delete_buckets()
    ceiling = 2 / (1 / before + 1 / after)  # the jobs of both runs over their time together
    figures = [
        Figure(
            "3a",
            f"storage ceiling: {jobs} buckets + uploads, boto3, before/after 3d: {before:.0f}/{after:.0f}",
            f"{ceiling:.1f} jobs/s",
        ),
        Figure("3b", f"{slow_jobs} flow runs one by one, Prefect client (operator)", f"{created:.1f} runs/s"),
        Figure(
            "3c",
            f"end to end: {slow_jobs} dirs, leruli submit path, {CONCURRENCY} threads",
            f"{submitted:.1f} jobs/s",
            baseline=f"{ceiling:.1f} jobs/s (3a)",
            # No target: the 0.8 is for the 1000 directories of a batch (3d); this row shows what
            # single submissions cost beside it.
            ratio=submitted / ceiling,
        ),
    ]
    if bulk_rates is not None:
        bulk_rate, bulk_creation = bulk_rates
        figures.append(
            Figure(
                "3d",
                f"bulk end to end: {jobs} dirs staged ({CONCURRENCY} threads), submit_jobs",
                f"{bulk_rate:.1f} jobs/s",
                baseline=f"{ceiling:.1f} jobs/s (3a)",
                ratio=bulk_rate / ceiling,
                target=f"ratio >= {CEILING_FRACTION_TARGET:g}",
                met=bulk_rate / ceiling >= CEILING_FRACTION_TARGET,
            )
        )
        figures.append(
            Figure(
                "3e",
                f"server-side creation: POST /v1/jobs/batch, {jobs} jobs",
                f"{bulk_creation:.0f} jobs/s",
                target=f">= {SERVER_CREATION_TARGET:g} jobs/s",
                met=bulk_creation >= SERVER_CREATION_TARGET,
            )
        )
    return figures
