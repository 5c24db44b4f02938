"""The Python API: submit jobs, follow them and fetch their outputs, from plain Python or a Prefect task.

    >>> import leruli_prefect as leruli
    >>> job = leruli.submit({"mol.xyz": xyz}, "xtb", "6.5.1", "xtb mol.xyz --opt", memory_mb=1000)
    >>> job.wait().state
    'Completed'
    >>> job.get("results/")

Credentials come from a block (`credentials=`, `storage=`; a block instance or a saved block's name) or,
when none is given, from the `LERULI_*` environment the CLI reads. Every call is blocking; inside a Prefect
flow use the tasks in `leruli_prefect.flows`, which Prefect runs in threads, to fan out many jobs.
"""

from __future__ import annotations

import re
import shlex
import shutil
import tempfile
import time
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TypeAlias
from uuid import UUID

from leruli_prefect.connections import CredentialsSource, StorageSource, gateway_client_for, s3_client_for
from leruli_prefect.errors import JobFailedError, SubmissionError
from leruli_prefect.job_record import JobRecord, fetch_record
from leruli_prefect.job_spec import BUCKET_PATTERN, JobView
from leruli_prefect.storage.job_files import download_run_dir
from leruli_prefect.submission import job_spec, upload_and_submit

# A directory, a list of files (packed flat, by name), or file names mapped to their contents.
Inputs: TypeAlias = "Path | str | Sequence[Path | str] | Mapping[str, str | bytes]"
FINAL_STATES = frozenset({"Completed", "Failed", "Crashed", "Cancelled"})
DEFAULT_TIME_LIMIT_S = 86_400


@dataclass(frozen=True)
class Job:
    """A submitted job: its id (the Prefect flow run id) and bucket, and the credentials to follow it."""

    id: UUID
    bucket: str
    credentials: CredentialsSource = field(default=None, repr=False, compare=False)
    storage: StorageSource = field(default=None, repr=False, compare=False)

    def status(self) -> JobView:
        return status(self, credentials=self.credentials)

    def wait(self, timeout_s: float | None = None) -> JobView:
        return wait(self, timeout_s=timeout_s, credentials=self.credentials)

    def get(self, directory: Path | str) -> list[Path]:
        return get(self, directory, storage=self.storage)

    def cancel(self) -> JobView:
        return cancel(self, credentials=self.credentials)

    def record(self) -> JobRecord | None:
        return record(self, credentials=self.credentials, storage=self.storage)


@dataclass(frozen=True)
class JobResult:
    """A finished job with its outputs downloaded: `result.path("xtbopt.xyz")`, `result.read_text(...)`."""

    job: JobView
    directory: Path
    files: list[Path]
    record: JobRecord | None = None  # exit code, runtime, peak memory, image digest, files' SHA-256

    @property
    def completed(self) -> bool:
        return self.job.state == "Completed"

    def path(self, name: str) -> Path:
        return self.directory / name

    def read_text(self, name: str) -> str:
        return (self.directory / name).read_text()


def submit(
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
    """Pack the inputs with `run.sh`, upload them to a new bucket and queue COMMAND in CODE:VERSION.

    A command given as a list is quoted for the shell (`shlex.join`); a string runs as written. Unlike
    `leruli submit`, this writes no `leruli.job` into a directory: keep the returned `Job`.

    >>> submit("water/", "psi4", "1.3.2", ["psi4", "input.dat"], cores=4, memory_mb=8000)
    """
    line = command if isinstance(command, str) else shlex.join(command)
    spec = job_spec(code, version, line, cores=cores, memory_mb=memory_mb, time_limit_s=time_limit_s)
    s3 = s3_client_for(storage)
    with gateway_client_for(credentials) as client, _input_directory(inputs) as directory:
        view = upload_and_submit(client, s3, directory, spec)
    return Job(id=view.id, bucket=spec.bucket, credentials=credentials, storage=storage)


def status(job: Job | UUID | str, *, credentials: CredentialsSource = None) -> JobView:
    """The job as the gateway reports it now (state, reason, limits, times)."""
    with gateway_client_for(_credentials(job, credentials)) as client:
        return client.job(_job_id(job))


def wait(
    job: Job | UUID | str,
    *,
    timeout_s: float | None = None,
    first_poll_s: float = 0.5,
    max_poll_s: float = 10.0,
    credentials: CredentialsSource = None,
) -> JobView:
    """Poll until the job is Completed, Failed, Crashed or Cancelled and return that final view.

    The pause between polls grows by half each time from `first_poll_s` up to `max_poll_s`, so short jobs
    return quickly and thousands of waiting jobs do not flood the gateway. Raises `TimeoutError` after
    `timeout_s` (never, by default).
    """
    deadline = None if timeout_s is None else time.monotonic() + timeout_s
    pause = first_poll_s
    with gateway_client_for(_credentials(job, credentials)) as client:
        while True:
            view = client.job(_job_id(job))
            if view.state in FINAL_STATES:
                return view
            if deadline is not None and time.monotonic() + pause > deadline:
                raise TimeoutError(f"job {view.id} did not finish within {timeout_s} s (it is {view.state})")
            time.sleep(pause)
            pause = min(pause * 1.5, max_poll_s)


def record(
    job: Job | UUID | str | JobView,
    *,
    credentials: CredentialsSource = None,
    storage: StorageSource = None,
) -> JobRecord | None:
    """The job's result record (None while it has none: not yet ended, or ended before its container ran).

    Read from the group's results bucket with your S3 keys; it is the job's Prefect result, so with the
    Prefect API and `AWS_*` keys `flow_run.state.result(raise_on_failure=False)` returns the same, as a dict.

    >>> record(job).files[0].sha256
    """
    view = job if isinstance(job, JobView) else status(job, credentials=credentials)
    if view.result is None:
        return None
    if storage is None and isinstance(job, Job):
        storage = job.storage
    return fetch_record(s3_client_for(storage), view.result)


def get(
    job: Job | UUID | str,
    directory: Path | str,
    *,
    credentials: CredentialsSource = None,
    storage: StorageSource = None,
) -> list[Path]:
    """Download the job's files (outputs, inputs, joblog.txt, joberr.txt) into `directory`; returns them.

    `job` may also be a bucket name, as `leruli get BUCKET` takes.
    """
    target = Path(directory)
    target.mkdir(parents=True, exist_ok=True)
    if isinstance(job, Job):
        bucket = job.bucket
        storage = storage if storage is not None else job.storage
    elif isinstance(job, str) and re.fullmatch(BUCKET_PATTERN, job):
        bucket = job
    else:
        bucket = status(job, credentials=credentials).bucket or ""
    keys = download_run_dir(s3_client_for(storage), bucket, target)
    return [target / key for key in keys]


def cancel(job: Job | UUID | str, *, credentials: CredentialsSource = None) -> JobView:
    """Cancel the job: a queued one never starts, a running one is stopped (its outputs are still saved)."""
    with gateway_client_for(_credentials(job, credentials)) as client:
        return client.cancel_job(_job_id(job))


def run(
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
    """Submit, wait and download the files into `directory` (`submit`, then `collect`)."""
    job = submit(
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
    return collect(job, directory, timeout_s=timeout_s, check=check)


def collect(
    job: Job, directory: Path | str, *, timeout_s: float | None = None, check: bool = True
) -> JobResult:
    """Wait for a submitted job and download its files into `directory`.

    With `check` (the default) a job that did not complete raises `JobFailedError` after its files (partial
    outputs, joberr.txt) were downloaded, so a failure stops a flow yet leaves the evidence on disk.
    """
    final = job.wait(timeout_s=timeout_s)
    files = job.get(directory)
    if check and final.state != "Completed":
        reason = f": {final.reason}" if final.reason else ""
        raise JobFailedError(f"job {final.id} ({final.image}) ended {final.state}{reason}", final)
    return JobResult(
        job=final, directory=Path(directory), files=files, record=record(final, storage=job.storage)
    )


def _job_id(job: Job | UUID | str) -> UUID | str:
    return job.id if isinstance(job, Job) else job


def _credentials(job: Job | UUID | str, credentials: CredentialsSource) -> CredentialsSource:
    """Explicit credentials win; else those the job was submitted with; else the environment."""
    if credentials is None and isinstance(job, Job):
        return job.credentials
    return credentials


@contextmanager
def _input_directory(inputs: Inputs) -> Iterator[Path]:
    """The inputs as one directory: a given directory as is, else a scratch copy removed afterwards."""
    if isinstance(inputs, str | Path):
        directory = Path(inputs)
        if not directory.is_dir():
            raise SubmissionError(f"{directory} is not a directory")
        yield directory
        return
    with tempfile.TemporaryDirectory(prefix="leruli-inputs-") as scratch:
        directory = Path(scratch)
        if isinstance(inputs, Mapping):
            for name, content in inputs.items():
                _check_plain_name(name)
                if isinstance(content, bytes):
                    (directory / name).write_bytes(content)
                else:
                    (directory / name).write_text(content)
        else:
            for source in map(Path, inputs):
                _check_plain_name(source.name)
                if (directory / source.name).exists():
                    raise SubmissionError(f"two inputs are named {source.name}; inputs are packed by name")
                if source.is_dir():
                    shutil.copytree(source, directory / source.name)
                else:
                    shutil.copy2(source, directory / source.name)
        yield directory


def _check_plain_name(name: str) -> None:
    if not name or name in {".", ".."} or "/" in name or "\\" in name:
        raise SubmissionError(f"input name {name!r} must be a plain file name")
