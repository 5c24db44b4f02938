"""Job buckets: one per job, named with 128 random bits so that nobody can guess another job's bucket."""

from __future__ import annotations

import secrets
from typing import TYPE_CHECKING

from botocore.exceptions import BotoCoreError, ClientError

from leruli_prefect.errors import StorageError

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client


def new_bucket_name() -> str:
    """`leruli-` and 32 hex digits, e.g. `leruli-3f9c...`; S3-legal and unguessable."""
    return f"leruli-{secrets.token_hex(16)}"


def create_bucket(s3: S3Client, bucket: str) -> None:
    try:
        s3.create_bucket(Bucket=bucket)
    except (ClientError, BotoCoreError) as exc:
        raise StorageError(f"cannot create bucket {bucket}: {exc}") from exc


def delete_bucket(s3: S3Client, bucket: str) -> None:
    """Delete every object of the bucket, then the bucket."""
    try:
        paginator = s3.get_paginator("list_objects_v2")
        for page in paginator.paginate(Bucket=bucket):
            keys = [{"Key": obj["Key"]} for obj in page.get("Contents", [])]
            if keys:
                s3.delete_objects(Bucket=bucket, Delete={"Objects": keys, "Quiet": True})
        s3.delete_bucket(Bucket=bucket)
    except (ClientError, BotoCoreError) as exc:
        raise StorageError(f"cannot delete bucket {bucket}: {exc}") from exc


def ensure_bucket(s3: S3Client, bucket: str) -> None:
    """Create the bucket unless it exists already (a group's code bucket is made by its first publisher)."""
    try:
        s3.head_bucket(Bucket=bucket)
        return
    except ClientError as exc:
        if exc.response.get("Error", {}).get("Code") not in {"404", "NoSuchBucket", "NotFound"}:
            raise StorageError(f"cannot reach bucket {bucket}: {exc}") from exc
    except BotoCoreError as exc:
        raise StorageError(f"cannot reach bucket {bucket}: {exc}") from exc
    create_bucket(s3, bucket)
