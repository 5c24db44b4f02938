"""Submitting jobs the ways a benchmark compares: the `leruli submit` path, and its parts on their own."""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING

from bench.bench_stack import TEST_IMAGE
from leruli_prefect.job_spec import JobSpec
from leruli_prefect.storage.buckets import create_bucket, new_bucket_name
from leruli_prefect.storage.run_archive import upload_run_archive

if TYPE_CHECKING:
    from uuid import UUID

    from bench.bench_stack import BenchStack

SMALL_INPUT_BYTES = 1024
# A valid bucket name for jobs that will never run: their flow runs need no bucket behind them.
UNUSED_BUCKET = "leruli-" + "0" * 32


def make_small_directories(root: Path, count: int) -> list[Path]:
    """`count` job directories holding one small input file each (a molecule's worth of bytes)."""
    directories = []
    for index in range(count):
        directory = root / f"job-{index:05d}"
        directory.mkdir(parents=True)
        (directory / "mol.xyz").write_bytes(os.urandom(SMALL_INPUT_BYTES))
        directories.append(directory)
    return directories


def trivial_spec(command: str = "true", bucket: str = UNUSED_BUCKET, memory_mb: int = 256) -> JobSpec:
    return JobSpec(image=TEST_IMAGE, command=command, memory_mb=memory_mb, time_limit_s=600, bucket=bucket)


def stage_directory(bench: BenchStack, directory: Path, command: str, memory_mb: int = 256) -> JobSpec:
    """The storage half of `leruli submit`: pack the directory, make its bucket, upload `run.tgz`."""
    bucket = new_bucket_name()
    s3 = bench.s3()
    create_bucket(s3, bucket)
    bench.created_bucket(bucket)
    upload_run_archive(s3, directory, command, bucket)
    return trivial_spec(command, bucket, memory_mb)


def submit_directory(bench: BenchStack, group: str, directory: Path, command: str = "true") -> UUID:
    """What `leruli submit` does (pack, bucket, upload, POST /v1/jobs); returns the job id."""
    spec = stage_directory(bench, directory, command)
    return bench.gateway(group).submit_job(spec).id


def post_job(bench: BenchStack, group: str, spec: JobSpec) -> UUID:
    """One `POST /v1/jobs`."""
    return bench.gateway(group).submit_job(spec).id
