"""Row 4: 1 GiB of inputs and outputs through a job, against the same bytes moved directly with boto3.

The job gets a 512 MiB input and copies it to a 512 MiB output. Through the product: `leruli submit`
(pack, bucket, upload), the node's stage in and stage out, then `leruli get` in the submitted directory, as
the CLI does (it reads ./leruli.bucket there): the outputs come down, the unchanged input is kept; the
container's own run time (start to die) is taken off. Directly: the four transfers that job implies
(input up, input down to the node, output up, output down to the user) with boto3's `upload_file` and
`download_file`, on a client as boto3 makes it (the baseline of the target: before the job and after it, their
mean), and once more on a client with our settings (payloads not signed, storage/s3_client.py), shown beside
it. Random bytes, so that compression gains nothing.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path
from typing import TYPE_CHECKING

from bench.bench_stack import RUN_GROUP, mount_of
from bench.job_states import wait_until_final
from bench.job_submission import post_job, stage_directory
from bench.results_table import Figure
from bench.timing import timed
from leruli_prefect.storage.buckets import create_bucket, new_bucket_name
from leruli_prefect.storage.job_files import download_run_dir
from tests import stack

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client

    from bench.bench_stack import BenchStack
    from bench.container_events import ContainerEvents

HALF_GIB = 512 * 1024**2
RATIO_TARGET = 0.8
_CHUNK = 16 * 1024**2


def write_random_file(path: Path, size: int) -> None:
    with open(path, "wb") as handle:
        for _ in range(size // _CHUNK):
            handle.write(os.urandom(_CHUNK))


def direct_transfers(bench: BenchStack, s3: S3Client, source: Path, work: Path) -> float:
    """Seconds for the job's four transfers of `source` done with boto3 alone."""
    bucket = new_bucket_name()
    create_bucket(s3, bucket)
    bench.created_bucket(bucket)
    node_copy, user_copy = work / "node-input.bin", work / "user-output.bin"
    with timed() as span:
        s3.upload_file(str(source), bucket, "input.bin")
        s3.download_file(bucket, "input.bin", str(node_copy))
        s3.upload_file(str(node_copy), bucket, "output.bin")
        s3.download_file(bucket, "output.bin", str(user_copy))
    node_copy.unlink()
    user_copy.unlink()
    return span.seconds


def through_job(bench: BenchStack, events: ContainerEvents, job_dir: Path) -> tuple[float, float]:
    """Seconds from `leruli submit` to `leruli get` done, less the container's run; and that run."""
    with timed() as span:
        spec = stage_directory(bench, job_dir, "cp input.bin output.bin", memory_mb=2000)
        job_id = post_job(bench, RUN_GROUP, spec)
        state = wait_until_final(bench, RUN_GROUP, job_id, timeout=600)
        download_run_dir(bench.s3(), spec.bucket, job_dir)  # what `leruli get` runs
    if state != "Completed":
        raise RuntimeError(f"staging job {job_id} ended {state}")
    container = events.wait_for("die", str(job_id), 10) - events.wait_for("start", str(job_id), 10)
    return span.seconds - container, container


def measure(bench: BenchStack, events: ContainerEvents) -> list[Figure]:
    work = bench.scratch / "staging"
    job_dir = work / "job"
    job_dir.mkdir(parents=True)
    write_random_file(job_dir / "input.bin", HALF_GIB)
    try:
        # boto3 as it comes (over plain http it signs every payload), then with our client's settings;
        # the baseline of the target once more after the job: the same transfers took 6.5-9.2 s from one
        # run to the next here, so a single one decided the ratio more than the job did.
        as_it_comes = stack.s3_client(bench.s3_env)
        direct_before = direct_transfers(bench, as_it_comes, job_dir / "input.bin", work)
        unsigned = direct_transfers(bench, bench.s3(), job_dir / "input.bin", work)
        job, container = through_job(bench, events, job_dir)
        direct_after = direct_transfers(bench, as_it_comes, job_dir / "input.bin", work)
    finally:
        bench.delete_buckets()
        shutil.rmtree(work, ignore_errors=True)
    gib = 2 * HALF_GIB / 1024**3
    direct = (direct_before + direct_after) / 2
    ratio = direct / job
    assert bench.node_data_dir is not None, "the node started with the stack"
    return [
        Figure(
            "4",
            "filesystems: the node's data dir; Docker's data root (docs/adding-a-node.md)",
            f"{mount_of(bench.node_data_dir)}; {mount_of(Path(bench.docker().info()['DockerRootDir']))}",
        ),
        Figure(
            "4",
            f"staging 512 MiB in + 512 MiB out (container's {container:.1f} s taken off)",
            f"{gib / job * 1024:.0f} MiB/s ({job:.1f} s)",
            baseline=f"{gib / direct * 1024:.0f} MiB/s ({direct_before:.1f}/{direct_after:.1f} s) boto3",
            ratio=ratio,
            target=f"ratio >= {RATIO_TARGET:g}",
            met=ratio >= RATIO_TARGET,
        ),
        Figure(
            "4",
            "staging, the same job against boto3 with our settings",
            f"{gib / job * 1024:.0f} MiB/s ({job:.1f} s)",
            baseline=f"{gib / unsigned * 1024:.0f} MiB/s ({unsigned:.1f} s) unsigned",
            ratio=unsigned / job,
        ),
    ]
