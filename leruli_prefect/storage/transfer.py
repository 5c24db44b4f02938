"""Moving job files between a local directory and a job bucket."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from botocore.exceptions import BotoCoreError, ClientError

from leruli_prefect.errors import StorageError
from leruli_prefect.storage.part_upload import Readable, part_size_for, put_bytes, read_parts, send_parts

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client

ARCHIVE_KEY = "run.tgz"


def upload_file(s3: S3Client, path: Path, bucket: str, key: str) -> None:
    """Upload `path` as `key`, every request with its `Content-MD5` (storage/part_upload.py).

    A small file is one `put_object`: boto3's `upload_file` builds (and tears down) a transfer manager for
    every call, which made small uploads a third slower here.
    """
    try:
        with open(path, "rb") as handle:
            send_parts(s3, read_parts(handle, part_size_for(path.stat().st_size)), bucket, key)
    except (ClientError, BotoCoreError) as exc:
        raise StorageError(f"cannot upload {path} to {bucket}/{key}: {exc}") from exc


def upload_stream(s3: S3Client, handle: Readable, size_bound: int, bucket: str, key: str) -> int:
    """Upload what `handle` gives until its end (at most about `size_bound` bytes, which sets the part
    size) as `key`; returns the number of bytes sent."""
    try:
        return send_parts(s3, read_parts(handle, part_size_for(size_bound)), bucket, key).size
    except (ClientError, BotoCoreError) as exc:
        raise StorageError(f"cannot upload to {bucket}/{key}: {exc}") from exc


def put_empty(s3: S3Client, bucket: str, key: str) -> None:
    try:
        put_bytes(s3, bucket, key, b"")
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
