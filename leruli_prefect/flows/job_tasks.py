"""Leruli jobs as Prefect tasks, so that a researcher's flow can fan out many jobs and gather their results.

Each task wraps one blocking call of `leruli_prefect.api`; Prefect's default task runner runs them in threads,
so `run_job.submit(...)` or `run_job.map(...)` keeps many jobs in flight at once. A job is a side effect on
the queue, never a pure function of its inputs, so no task caches its result.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from uuid import UUID

from prefect import task
from prefect.cache_policies import NO_CACHE
from prefect.logging import get_run_logger

from leruli_prefect import api
from leruli_prefect.api import DEFAULT_TIME_LIMIT_S, Inputs, Job, JobResult
from leruli_prefect.connections import CredentialsSource, StorageSource
from leruli_prefect.job_spec import JobView


@task(name="leruli-run-job", task_run_name="{code}:{version} {command}", cache_policy=NO_CACHE)
def run_job(
    inputs: Inputs,
    code: str,
    version: str,
    command: str | Sequence[str],
    directory: Path | str,
    *,
    cores: int = 1,
    memory_mb: int = 4000,
    time_limit_s: int = DEFAULT_TIME_LIMIT_S,
    timeout_s: float | None = None,
    check: bool = True,
    credentials: CredentialsSource = None,
    storage: StorageSource = None,
) -> JobResult:
    """Submit a job, wait for it and download its files into `directory`; fails unless it Completed.

    Example:
        ```python
        result = run_job({"mol.xyz": xyz}, "xtb", "6.5.1", "xtb mol.xyz --opt", "out/water")
        optimized = result.read_text("xtbopt.xyz")
        ```
    """
    logger = get_run_logger()
    job = api.submit(
        inputs,
        code,
        version,
        command,
        cores=cores,
        memory_mb=memory_mb,
        time_limit_s=time_limit_s,
        credentials=credentials,
        storage=storage,
    )
    logger.info("Submitted job %s (%s:%s) with bucket %s", job.id, code, version, job.bucket)
    result = api.collect(job, directory, timeout_s=timeout_s, check=check)
    logger.info("Job %s ended %s; %d file(s) in %s", job.id, result.job.state, len(result.files), directory)
    return result


@task(name="leruli-submit-job", task_run_name="submit {code}:{version} {command}", cache_policy=NO_CACHE)
def submit_job(
    inputs: Inputs,
    code: str,
    version: str,
    command: str | Sequence[str],
    *,
    cores: int = 1,
    memory_mb: int = 4000,
    time_limit_s: int = DEFAULT_TIME_LIMIT_S,
    credentials: CredentialsSource = None,
    storage: StorageSource = None,
) -> Job:
    """Only submit: returns the `Job` handle at once (queue everything first, then wait)."""
    job = api.submit(
        inputs,
        code,
        version,
        command,
        cores=cores,
        memory_mb=memory_mb,
        time_limit_s=time_limit_s,
        credentials=credentials,
        storage=storage,
    )
    get_run_logger().info("Submitted job %s (%s:%s) with bucket %s", job.id, code, version, job.bucket)
    return job


@task(name="leruli-wait-for-job", task_run_name="wait for job", cache_policy=NO_CACHE)
def wait_for_job(job: Job | UUID | str, *, timeout_s: float | None = None) -> JobView:
    """Wait until the job ended (any final state) and return its final view."""
    return api.wait(job, timeout_s=timeout_s)


@task(name="leruli-collect-job", task_run_name="collect {job.id}", cache_policy=NO_CACHE)
def collect_job(
    job: Job, directory: Path | str, *, timeout_s: float | None = None, check: bool = True
) -> JobResult:
    """Wait for a submitted job and download its files into `directory`; fails unless it Completed."""
    result = api.collect(job, directory, timeout_s=timeout_s, check=check)
    get_run_logger().info(
        "Job %s ended %s; %d file(s) in %s", job.id, result.job.state, len(result.files), directory
    )
    return result
