"""The researcher's job commands, named as the original Leruli client named them (`task-submit`, ...)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from leruli_prefect.cli.credentials import gateway_client, s3_client
from leruli_prefect.cli.failures import reports_errors
from leruli_prefect.errors import ConfigurationError, StorageError
from leruli_prefect.job_record import JobRecord, ResultLocation, fetch_record
from leruli_prefect.settings import Settings, load_settings
from leruli_prefect.storage.archive import STDERR_FILE
from leruli_prefect.storage.job_files import download_run_dir
from leruli_prefect.submission import (
    BUCKET_FILE,
    JOB_FILE,
    job_spec,
    refuse_if_submitted,
    upload_and_submit,
    write_markers,
)

# `leruli status` shows the end of joberr.txt for jobs in these states.
_FAILED_STATES = frozenset({"Failed", "Crashed"})
_TAIL_LINES = 10
_TAIL_BYTES = 8192


def read_marker(name: str, what: str) -> str:
    path = Path.cwd() / name
    if not path.exists():
        raise ConfigurationError(f"no {what} given and no {name} in {Path.cwd()}")
    return path.read_text().strip()


@reports_errors
def submit(
    code: Annotated[str, typer.Argument(help="The code (image name), e.g. psi4")],
    version: Annotated[str, typer.Argument(help="The code's version (image tag), e.g. 1.3.2")],
    command: Annotated[list[str], typer.Argument(help="The command to run in the directory")],
    cores: Annotated[int, typer.Option(help="Cores (also OMP_NUM_THREADS and kin)")] = 1,
    memory: Annotated[int, typer.Option(help="Memory limit in MB")] = 4000,
    time: Annotated[int, typer.Option(help="Time limit in minutes")] = 1440,
    batch: Annotated[
        str | None,
        typer.Option(help="Submit many directories: a glob such as 'case-?/run-*/' or a file listing them"),
    ] = None,
) -> None:
    """Submit the current directory (or, with --batch, many) as a job running COMMAND in CODE:VERSION."""
    if batch is not None:
        from leruli_prefect.cli.batch import submit_directories

        limits = {"cores": cores, "memory_mb": memory, "time_limit_s": time * 60}
        return submit_directories(batch, code, version, " ".join(command), **limits)
    settings = load_settings()
    directory = Path.cwd()
    refuse_if_submitted(directory)
    spec = job_spec(code, version, " ".join(command), cores=cores, memory_mb=memory, time_limit_s=time * 60)
    s3 = s3_client(settings)
    with gateway_client(settings) as client:
        job = upload_and_submit(client, s3, directory, spec)
    write_markers(directory, job.id, spec.bucket)
    typer.echo(str(job.id))


@reports_errors
def status(
    job_id: Annotated[str | None, typer.Argument(help="Job id; default: the one in ./leruli.job")] = None,
    batch: Annotated[
        str | None, typer.Option(help="Summarize many directories: a glob or a file listing them")
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the job as JSON (for scripts)")] = False,
) -> None:
    """Print a job's state and why; in a tree of submitted directories (or with --batch), a summary."""
    if batch is not None or (job_id is None and not (Path.cwd() / JOB_FILE).exists()):
        if as_json:
            raise ConfigurationError("--json shows one job; give its id or run it in the job's directory")
        from leruli_prefect.cli.batch import summarize_directories

        return summarize_directories(batch)
    settings = load_settings()
    job_id = job_id or read_marker(JOB_FILE, "job id")
    with gateway_client(settings) as client:
        job = client.job(job_id)
    tail = _stderr_tail(settings, job.bucket) if job.state in _FAILED_STATES and job.bucket else ""
    record = _record(settings, job.result) if job.result is not None else None
    if as_json:
        # The job as the REST API gives it, plus the end of joberr.txt (null unless it failed) and the
        # result record (null until the job has one).
        shown = {
            **job.model_dump(mode="json"),
            "stderr_tail": tail or None,
            "record": record.model_dump(mode="json") if record else None,
        }
        typer.echo(json.dumps(shown, indent=2))
        return
    typer.echo(f"{job.state}: {job.reason}" if job.reason else job.state)
    if record is not None:
        typer.echo(summarize_record(record))
    if tail:
        typer.echo(f"Last lines of {STDERR_FILE}:")
        typer.echo(tail)


def summarize_record(record: JobRecord) -> str:
    """One line: `exit code 0, ran 12.3 s, peak memory 45.6 MB, 5 files (node n1, attempt 1)`."""
    memory = "unknown" if record.peak_memory_bytes is None else f"{record.peak_memory_bytes / 1e6:.1f} MB"
    return (
        f"Result: exit code {record.exit_code}, ran {record.runtime_s:.1f} s, peak memory {memory}, "
        f"{len(record.files)} files (node {record.node}, attempt {record.attempt})"
    )


def _record(settings: Settings, location: ResultLocation) -> JobRecord | None:
    """The job's result record, read with the user's S3 keys (None, with a note, if it cannot be)."""
    try:
        return fetch_record(s3_client(settings), location)
    except (StorageError, ConfigurationError) as exc:
        typer.echo(f"(result record not readable: {exc})", err=True)
        return None


def _stderr_tail(settings: Settings, bucket: str) -> str:
    """The last lines of the job's joberr.txt, read from its bucket with the user's S3 keys ("" if none)."""
    from botocore.exceptions import BotoCoreError, ClientError

    try:
        # Only the end of the file: a failing job may have written gigabytes to stderr.
        response = s3_client(settings).get_object(
            Bucket=bucket, Key=STDERR_FILE, Range=f"bytes=-{_TAIL_BYTES}"
        )
        text = response["Body"].read().decode(errors="replace")
    except ClientError as exc:
        # No file (the job never ran) or an empty one (S3 refuses a range of nothing): nothing to show.
        if exc.response.get("Error", {}).get("Code") not in {"NoSuchKey", "404", "InvalidRange"}:
            typer.echo(f"({STDERR_FILE} not readable: {exc})", err=True)
        return ""
    except (BotoCoreError, ConfigurationError) as exc:
        typer.echo(f"({STDERR_FILE} not readable: {exc})", err=True)
        return ""
    return "\n".join(text.splitlines()[-_TAIL_LINES:])


@reports_errors
def get(
    bucket: Annotated[str | None, typer.Argument(help="Bucket; default: the one in ./leruli.bucket")] = None,
) -> None:
    """Download a job's files (its outputs and inputs) into the current directory."""
    settings = load_settings()
    bucket = bucket or read_marker(BUCKET_FILE, "bucket")
    keys = download_run_dir(s3_client(settings), bucket, Path.cwd())
    typer.echo(f"Downloaded {len(keys)} file(s) from {bucket}")


def register(app: typer.Typer) -> None:
    """Add the job commands under their original names and their short aliases."""
    passthrough = {"allow_extra_args": True, "ignore_unknown_options": True}
    for name, alias, function in (
        ("task-submit", "submit", submit),
        ("task-status", "status", status),
        ("task-get", "get", get),
    ):
        settings = passthrough if function is submit else None
        app.command(name, context_settings=settings)(function)
        app.command(alias, context_settings=settings, help=f"Alias of {name}.")(function)
