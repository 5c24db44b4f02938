"""Submitting one directory as a job: pack it into `run.tgz`, upload it to a new bucket, create the job.

The CLI (`leruli task-submit`) and the Python API (`leruli_prefect.submit`) both call this, so a job
submitted either way is the same job. Blocking (tar, boto3): async callers run it in a thread.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from leruli_prefect.errors import SubmissionError
from leruli_prefect.job_spec import JobSpec, JobView
from leruli_prefect.storage.archive import check_inputs
from leruli_prefect.storage.buckets import create_bucket, delete_bucket, new_bucket_name
from leruli_prefect.storage.run_archive import upload_run_archive

if TYPE_CHECKING:
    from pathlib import Path

    from mypy_boto3_s3 import S3Client

    from leruli_prefect.client import GatewayClient

# The original Leruli client writes these into a submitted directory and reads them when no id is given.
JOB_FILE = "leruli.job"
BUCKET_FILE = "leruli.bucket"


def job_spec(
    code: str, version: str, command: str, *, cores: int, memory_mb: int, time_limit_s: int
) -> JobSpec:
    """The spec of a new job with a fresh, unguessable bucket; invalid values raise pydantic's error."""
    return JobSpec(
        image=f"{code}:{version}",
        command=command,
        cores=cores,
        memory_mb=memory_mb,
        time_limit_s=time_limit_s,
        bucket=new_bucket_name(),
    )


def refuse_if_submitted(directory: Path) -> None:
    """A directory holding `leruli.job` was submitted already; submitting it again needs a deliberate step."""
    marker = directory / JOB_FILE
    if marker.exists():
        job_id = marker.read_text().strip()
        raise SubmissionError(
            f"this directory was already submitted as job {job_id}; remove {JOB_FILE} to resubmit"
        )


def upload_and_submit(client: GatewayClient, s3: S3Client, directory: Path, spec: JobSpec) -> JobView:
    """Pack `directory` with `run.sh`, upload it to `spec.bucket` and create the job.

    If anything fails before the gateway accepted the job, the bucket is deleted: a failed submission leaves
    nothing behind.
    """
    client.require_api_secret()  # fail before touching S3 when no API secret is set
    check_inputs(directory)
    create_bucket(s3, spec.bucket)
    try:
        upload_run_archive(s3, directory, spec.command, spec.bucket)
        return client.submit_job(spec)
    except BaseException:
        delete_bucket(s3, spec.bucket)
        raise


def write_markers(directory: Path, job_id: object, bucket: str) -> None:
    """Record the job in its directory as the original client did (`leruli.job`, `leruli.bucket`)."""
    (directory / JOB_FILE).write_text(f"{job_id}\n")
    (directory / BUCKET_FILE).write_text(f"{bucket}\n")
