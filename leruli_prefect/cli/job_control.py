"""Cancelling jobs and pruning their data (owner or admin), named as the original client named them."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from leruli_prefect.cli.credentials import gateway_client, s3_client
from leruli_prefect.cli.failures import reports_errors
from leruli_prefect.cli.jobs import BUCKET_FILE, JOB_FILE, read_marker
from leruli_prefect.errors import SubmissionError
from leruli_prefect.settings import load_settings
from leruli_prefect.storage.buckets import delete_bucket


@reports_errors
def cancel(
    job_id: Annotated[str | None, typer.Argument(help="Job id; default: ./leruli.job")] = None,
) -> None:
    """Cancel a job: a queued one never starts, a running one is stopped (its outputs are still saved)."""
    job_id = job_id or read_marker(JOB_FILE, "job id")
    with gateway_client(load_settings()) as client:
        job = client.cancel_job(job_id)
    typer.echo(f"{job.id}: {job.state}")


@reports_errors
def prune(
    job_id: Annotated[str | None, typer.Argument(help="Job id; default: ./leruli.job")] = None,
    bucket: Annotated[str | None, typer.Argument(help="Its bucket; default: ./leruli.bucket")] = None,
) -> None:
    """Delete an ended job's data (its bucket and everything in it)."""
    settings = load_settings()
    job_id = job_id or read_marker(JOB_FILE, "job id")
    with gateway_client(settings) as client:
        granted = client.prune_job(job_id)
    if bucket is not None and bucket != granted:
        raise SubmissionError(f"{bucket} is not the bucket of job {job_id} ({granted}); nothing deleted")
    delete_bucket(s3_client(settings), granted)
    typer.echo(f"Deleted the data of job {job_id} (bucket {granted}).")
    if (Path.cwd() / JOB_FILE).exists() and read_marker(JOB_FILE, "job id") == job_id:
        typer.echo(f"({JOB_FILE} and {BUCKET_FILE} stay as a record; remove them to submit this again)")


def register(app: typer.Typer) -> None:
    for name, aliases, function in (
        ("task-cancel", ("cancel",), cancel),
        ("task-prune", ("prune", "purge"), prune),
    ):
        app.command(name)(function)
        for alias in aliases:
            app.command(alias, help=f"Alias of {name}.")(function)
