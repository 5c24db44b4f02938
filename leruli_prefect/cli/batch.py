"""`task-submit --batch` and `task-status --batch`: many directories at once, with progress and a summary."""

from __future__ import annotations

import time
from collections import Counter
from pathlib import Path

import typer

from leruli_prefect.batch_submission import find_directories, submit_batch
from leruli_prefect.cli.credentials import gateway_client, s3_client
from leruli_prefect.errors import SubmissionError
from leruli_prefect.settings import load_settings
from leruli_prefect.submission import JOB_FILE

LOOKUP_CHUNK = 200
TOP_REASONS = 5


def submit_directories(
    pattern_or_file: str,
    code: str,
    version: str,
    command: str,
    *,
    cores: int,
    memory_mb: int,
    time_limit_s: int,
) -> None:
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    settings = load_settings()
    directories = find_directories(pattern_or_file)
    started = time.monotonic()
    columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn())
    with gateway_client(settings) as client, Progress(*columns, transient=False) as progress:
        uploads = progress.add_task("Uploading ", total=len(directories))
        submissions = progress.add_task("Submitting", total=None)
        outcome = submit_batch(
            client,
            s3_client(settings),
            directories,
            code=code,
            version=version,
            command=command,
            cores=cores,
            memory_mb=memory_mb,
            time_limit_s=time_limit_s,
            on_uploaded=lambda: progress.advance(uploads),
            on_submitted=lambda count: progress.advance(submissions, count),
        )
        progress.update(submissions, total=len(outcome.submitted))
    elapsed = time.monotonic() - started
    rate = len(outcome.submitted) / elapsed if elapsed > 0 else 0.0
    typer.echo(f"Submitted {len(outcome.submitted)} in {elapsed:.1f}s ({rate:.1f}/s)")
    if outcome.skipped:
        typer.echo(f"Skipped {len(outcome.skipped)} already submitted (they hold {JOB_FILE})")
    for directory, reason in sorted(outcome.failed):
        typer.echo(f"Not submitted: {directory}: {reason}", err=True)
    if outcome.failed:
        raise typer.Exit(code=1)


def job_ids_below(pattern_or_file: str | None) -> dict[str, Path]:
    """Job id -> directory, for the directories named (or every `leruli.job` below the current one)."""
    if pattern_or_file is not None:
        markers = [directory / JOB_FILE for directory in find_directories(pattern_or_file)]
        markers = [marker for marker in markers if marker.exists()]
    else:
        markers = sorted(Path.cwd().rglob(JOB_FILE))
    if not markers:
        raise SubmissionError(f"no submitted directories ({JOB_FILE}) found")
    return {marker.read_text().strip(): marker.parent for marker in markers}


def summarize_directories(pattern_or_file: str | None) -> None:
    """Counts per state and the most common failure reasons."""
    settings = load_settings()
    jobs = job_ids_below(pattern_or_file)
    states: Counter[str] = Counter()
    reasons: Counter[str] = Counter()
    ids = list(jobs)
    with gateway_client(settings) as client:
        for start in range(0, len(ids), LOOKUP_CHUNK):
            for job in client.lookup_jobs(ids[start : start + LOOKUP_CHUNK]):
                states[job.state] += 1
                if job.reason:
                    reasons[job.reason] += 1
    unknown = len(ids) - sum(states.values())
    typer.echo(f"{len(ids)} job(s):")
    for state, count in states.most_common():
        typer.echo(f"  {state:<12} {count}")
    if unknown:
        typer.echo(f"  {'not found':<12} {unknown}  (pruned, or from another group)")
    if reasons:
        typer.echo("Most common reasons:")
        for reason, count in reasons.most_common(TOP_REASONS):
            typer.echo(f"  {count:>6}  {reason}")
