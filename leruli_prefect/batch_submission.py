"""Submitting many directories at once: parallel uploads, jobs created in bulk, safe to interrupt and rerun.

Each directory is first given a `leruli.pending` file (its bucket and an idempotency key), then its
`run.tgz` is uploaded, then jobs are created in chunks through the gateway's bulk endpoint, and finally
`leruli.job` and `leruli.bucket` replace `leruli.pending`. A rerun after a crash or Ctrl-C skips directories
with `leruli.job`, resumes those with `leruli.pending` under the same key (the gateway answers the job it
already made instead of making a second one) and starts the rest.
Blocking (tar, boto3, HTTP); uploads run in a thread pool.
"""

from __future__ import annotations

import glob
import json
import secrets
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from botocore.exceptions import ClientError

from leruli_prefect.errors import LeruliError, SubmissionError
from leruli_prefect.job_spec import JobSpec
from leruli_prefect.storage.archive import check_inputs
from leruli_prefect.storage.run_archive import upload_run_archive
from leruli_prefect.submission import JOB_FILE, job_spec, write_markers

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client

    from leruli_prefect.client import GatewayClient

PENDING_FILE = "leruli.pending"
CHUNK = 500  # jobs per bulk request
UPLOAD_WORKERS = 8


@dataclass(frozen=True)
class Pending:
    directory: Path
    spec: JobSpec
    key: str


@dataclass
class BatchOutcome:
    submitted: list[tuple[Path, str]] = field(default_factory=list)
    skipped: list[Path] = field(default_factory=list)  # submitted before (leruli.job present)
    failed: list[tuple[Path, str]] = field(default_factory=list)


def find_directories(pattern_or_file: str) -> list[Path]:
    """The directories a glob names (`case-?/run-*/`), or those listed one per line in a file."""
    path = Path(pattern_or_file)
    if path.is_file():
        lines = [line.strip() for line in path.read_text().splitlines()]
        names = [line for line in lines if line and not line.startswith("#")]
        base = path.parent
        directories = [(base / name) if not Path(name).is_absolute() else Path(name) for name in names]
    else:
        directories = [Path(match) for match in sorted(glob.glob(pattern_or_file, recursive=True))]
    found = [directory for directory in directories if directory.is_dir()]
    if not found:
        raise SubmissionError(f"{pattern_or_file} names no directory")
    return found


def prepare(directory: Path, make_spec: Callable[[], JobSpec]) -> Pending:
    """The directory's pending submission: resumed from `leruli.pending`, or new and recorded there first."""
    marker = directory / PENDING_FILE
    if marker.exists():
        recorded = json.loads(marker.read_text())
        return Pending(directory, JobSpec.model_validate(recorded["spec"]), recorded["key"])
    check_inputs(directory)
    pending = Pending(directory, make_spec(), secrets.token_hex(16))
    scratch = marker.with_suffix(".tmp")
    scratch.write_text(json.dumps({"spec": pending.spec.model_dump(), "key": pending.key}))
    scratch.replace(marker)  # atomic: a crash leaves either no marker or a whole one
    return pending


def upload(s3: S3Client, pending: Pending) -> None:
    """Pack the directory and put `run.tgz` in its bucket (which a resumed submission may already have)."""
    bucket = pending.spec.bucket
    try:
        s3.create_bucket(Bucket=bucket)
    except ClientError as exc:
        if exc.response.get("Error", {}).get("Code") != "BucketAlreadyOwnedByYou":
            raise SubmissionError(f"cannot create bucket {bucket}: {exc}") from exc
    upload_run_archive(s3, pending.directory, pending.spec.command, bucket)


def submit_batch(
    client: GatewayClient,
    s3: S3Client,
    directories: list[Path],
    *,
    code: str,
    version: str,
    command: str,
    cores: int,
    memory_mb: int,
    time_limit_s: int,
    on_uploaded: Callable[[], None] = lambda: None,
    on_submitted: Callable[[int], None] = lambda count: None,
) -> BatchOutcome:
    client.require_api_secret()
    outcome = BatchOutcome()

    def make_spec() -> JobSpec:
        return job_spec(code, version, command, cores=cores, memory_mb=memory_mb, time_limit_s=time_limit_s)

    make_spec()  # invalid options fail here, once, before any directory is touched
    ready: list[Pending] = []
    with ThreadPoolExecutor(max_workers=UPLOAD_WORKERS) as pool:
        futures = {}
        for directory in directories:
            if (directory / JOB_FILE).exists():
                outcome.skipped.append(directory)
                on_uploaded()
                continue
            futures[pool.submit(_prepare_and_upload, s3, directory, make_spec)] = directory
        for future in as_completed(futures):
            try:
                ready.append(future.result())
            except (LeruliError, ClientError, OSError, ValueError) as exc:
                outcome.failed.append((futures[future], str(exc)))
            on_uploaded()
    ready.sort(key=lambda pending: str(pending.directory))
    for start in range(0, len(ready), CHUNK):
        chunk = ready[start : start + CHUNK]
        created = client.submit_jobs([(pending.spec, pending.key) for pending in chunk])
        for pending, job in zip(chunk, created, strict=True):
            write_markers(pending.directory, job["id"], pending.spec.bucket)
            (pending.directory / PENDING_FILE).unlink(missing_ok=True)
            outcome.submitted.append((pending.directory, job["id"]))
        on_submitted(len(chunk))
    return outcome


def _prepare_and_upload(s3: S3Client, directory: Path, make_spec: Callable[[], JobSpec]) -> Pending:
    pending = prepare(directory, make_spec)
    upload(s3, pending)
    return pending
