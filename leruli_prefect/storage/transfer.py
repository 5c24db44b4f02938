"""Moving job files between a local directory and a job bucket."""

from __future__ import annotations

from pathlib import Path
from typing import IO, TYPE_CHECKING

from botocore.exceptions import BotoCoreError, ClientError

from leruli_prefect.errors import StorageError

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client

ARCHIVE_KEY = "run.tgz"
# Below boto3's multipart threshold a file is one PUT: `put_object` sends it without the transfer manager
# `upload_file` builds (and tears down) for every call, which made small uploads a third slower here.
SINGLE_PUT_BYTES = 8 * 1024 * 1024


def upload_file(s3: S3Client, path: Path, bucket: str, key: str) -> None:
    try:
        if path.stat().st_size < SINGLE_PUT_BYTES:
            s3.put_object(Bucket=bucket, Key=key, Body=path.read_bytes())
        else:
            s3.upload_file(str(path), bucket, key)
    except (ClientError, BotoCoreError) as exc:
        raise StorageError(f"cannot upload {path} to {bucket}/{key}: {exc}") from exc


def upload_fileobj(s3: S3Client, handle: IO[bytes], size: int, bucket: str, key: str) -> None:
    """Upload `size` bytes from `handle` (at its start), as `upload_file` does a file."""
    try:
        if size < SINGLE_PUT_BYTES:
            s3.put_object(Bucket=bucket, Key=key, Body=handle.read())
        else:
            s3.upload_fileobj(handle, bucket, key)
    except (ClientError, BotoCoreError) as exc:
        raise StorageError(f"cannot upload to {bucket}/{key}: {exc}") from exc


def put_empty(s3: S3Client, bucket: str, key: str) -> None:
    try:
        s3.put_object(Bucket=bucket, Key=key, Body=b"")
    except (ClientError, BotoCoreError) as exc:
        raise StorageError(f"cannot write {bucket}/{key}: {exc}") from exc


def download_file(s3: S3Client, bucket: str, key: str, path: Path) -> None:
    try:
        s3.download_file(bucket, key, str(path))
    except (ClientError, BotoCoreError) as exc:
        raise download_error(exc, bucket, key) from exc


def download_error(exc: ClientError | BotoCoreError, bucket: str, key: str) -> StorageError:
    """Our error for a download S3 refused or failed: a missing object or bucket is named as such."""
    code = exc.response.get("Error", {}).get("Code", "") if isinstance(exc, ClientError) else ""
    if code in {"404", "NoSuchKey", "NoSuchBucket"}:
        return StorageError(f"{bucket}/{key} does not exist")
    return StorageError(f"cannot download {bucket}/{key}: {exc}")


def list_keys(s3: S3Client, bucket: str) -> list[str]:
    try:
        keys: list[str] = []
        for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket):
            keys.extend(obj["Key"] for obj in page.get("Contents", []))
        return keys
    except ClientError as exc:
        if exc.response.get("Error", {}).get("Code") == "NoSuchBucket":
            raise StorageError(f"bucket {bucket} does not exist (pruned, or a typo?)") from exc
        raise StorageError(f"cannot list bucket {bucket}: {exc}") from exc
    except BotoCoreError as exc:
        raise StorageError(f"cannot list bucket {bucket}: {exc}") from exc


def download_bucket(
    s3: S3Client, bucket: str, directory: Path, skip: frozenset[str] = frozenset()
) -> list[str]:
    """Download every object of the bucket into `directory` (except the keys in `skip`); returns the keys.

    Keys that would land outside `directory` (absolute, `..`) are refused: a bucket is written by a
    container we do not trust.
    """
    root = directory.resolve()
    fetched = []
    for key in list_keys(s3, bucket):
        if key in skip:
            continue
        target = (root / key).resolve()
        if not target.is_relative_to(root) or target == root:
            raise StorageError(f"refusing to write {key!r} outside {directory}")
        target.parent.mkdir(parents=True, exist_ok=True)
        download_file(s3, bucket, key, target)
        fetched.append(key)
    return fetched
