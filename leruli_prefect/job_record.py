"""A job's result record: what ran, where, for how long, and every file it left, with sizes and SHA-256.

The node writes it, once per attempt that ran a container, as the job's Prefect result: JSON in the group's
results bucket (`storage_key`), referenced from the flow run's final state through Prefect's own result
metadata (`storage_block_id` names the group's `S3Bucket` block, which holds no keys). Whoever reads it brings
their own S3 keys: the CLI and the Python API with `LERULI_S3_*`, Prefect's `state.result()` with `AWS_*`.
Shared by the node, the gateway and the clients; nothing here imports Prefect.
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import TYPE_CHECKING
from uuid import UUID

from pydantic import BaseModel, Field, ValidationError

from leruli_prefect.errors import StorageError

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client

RESULTS_BLOCK_PREFIX = "leruli-results-"  # + group name: the group's S3Bucket block document


class OutputFile(BaseModel):
    """One file the node uploaded to the job's bucket (inputs the job left in /rundir count too)."""

    name: str = Field(description="Path relative to /rundir, as the key in the job's bucket")
    size: int = Field(description="Bytes")
    sha256: str = Field(description="Hex SHA-256 of the content, checked against S3 after the upload")


class JobRecord(BaseModel):
    """The result record of one attempt of a job."""

    job_id: UUID
    attempt: int = Field(description="Which attempt ran (1 unless a node was lost)")
    node: str = Field(description="The node (Prefect worker name) that ran it")
    image: str = Field(description="`name:version` as submitted")
    image_digest: str = Field(description="The image id the container ran (`docker image inspect`'s Id)")
    exit_code: int | None = Field(description="The container's exit code (137 when killed)")
    oom_killed: bool
    timed_out: bool
    cancelled: bool
    started: datetime | None = Field(description="When the container started (Docker's clock)")
    ended: datetime | None = Field(description="When the container ended")
    runtime_s: float = Field(description="Seconds from container start to end")
    peak_memory_bytes: int | None = Field(
        description="Peak memory of the container as Docker's stats saw it (None if never sampled)"
    )
    files: list[OutputFile]


class ResultLocation(BaseModel):
    """Where a job's record is: the group's results bucket and the key (Prefect's `storage_key`)."""

    bucket: str
    key: str


def results_key(job_id: UUID | str, attempt: int) -> str:
    """One key per attempt: a fenced-off node can never overwrite the record of a newer attempt."""
    return f"jobs/{job_id}/attempt-{attempt}.json"


def parse_stored_record(content: bytes) -> JobRecord:
    """Read a record as Prefect's `ResultStore` stores it: `{"metadata": {...}, "result": "<JSON>"}`.

    Only the JSON serializer is accepted: a record is written by a node, and a pickled one could run code
    in the reader.
    """
    try:
        stored = json.loads(content)
        serializer = stored["metadata"]["serializer"]["type"]
        if serializer != "json":
            raise StorageError(f"result record serialized as {serializer!r}, not JSON: not read")
        result = stored["result"]
        return JobRecord.model_validate_json(result if isinstance(result, str) else json.dumps(result))
    except (ValueError, KeyError, TypeError, ValidationError) as exc:
        raise StorageError(f"not a leruli result record: {exc}") from exc


def fetch_record(s3: S3Client, location: ResultLocation) -> JobRecord:
    """Read a job's record from its group's results bucket with the caller's own S3 keys."""
    from botocore.exceptions import BotoCoreError, ClientError

    try:
        content = s3.get_object(Bucket=location.bucket, Key=location.key)["Body"].read()
    except (ClientError, BotoCoreError) as exc:
        raise StorageError(f"cannot read the result record {location.bucket}/{location.key}: {exc}") from exc
    return parse_stored_record(content)
