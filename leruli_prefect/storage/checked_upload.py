"""Uploading a job's files with a check that S3 holds exactly what was on disk.

Each file is read once to compute its SHA-256 (for the result record) and the ETag S3 must report for it:
the MD5 of the content for a single-part upload, or the MD5 of the parts' MD5s with `-N` for a multipart one
(boto3 switches at `multipart_threshold`). After the upload, `head_object` tells the ETag S3 computed from
what it received; any difference means the object is not the file, and the job fails with that reason.
(Ceph RGW 16 knows no `x-amz-checksum-sha256`; the ETag rule holds on every S3.)

Blocking calls; the worker runs them in a thread.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from botocore.exceptions import BotoCoreError, ClientError

from leruli_prefect.errors import StorageError
from leruli_prefect.storage.transfer import upload_file

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client

_READ_BYTES = 1024 * 1024


class CorruptUploadError(StorageError):
    """S3 holds something other than the file that was uploaded."""


@dataclass(frozen=True)
class FileDigest:
    key: str
    size: int
    sha256: str
    etag: str  # what S3 must report, without quotes


def digest_file(path: Path, key: str) -> FileDigest:
    """SHA-256 and the expected S3 ETag of `path`, with the part size boto3's `upload_file` will use."""
    from boto3.s3.transfer import TransferConfig
    from s3transfer.utils import ChunksizeAdjuster

    transfer = TransferConfig()
    size = path.stat().st_size
    multipart = size >= transfer.multipart_threshold
    part_size = ChunksizeAdjuster().adjust_chunksize(transfer.multipart_chunksize, size) if multipart else 0
    sha256, whole, part, parts = (
        hashlib.sha256(),
        hashlib.md5(usedforsecurity=False),
        hashlib.md5(usedforsecurity=False),
        [],
    )
    in_part = 0
    with open(path, "rb") as handle:
        while chunk := handle.read(_READ_BYTES):
            sha256.update(chunk)
            if not multipart:
                whole.update(chunk)
                continue
            while chunk:  # part boundaries may fall inside a read
                take = chunk[: part_size - in_part]
                part.update(take)
                in_part += len(take)
                chunk = chunk[len(take) :]
                if in_part == part_size:
                    parts.append(part.digest())
                    part, in_part = hashlib.md5(usedforsecurity=False), 0
    if multipart and in_part:
        parts.append(part.digest())
    etag = (
        f"{hashlib.md5(usedforsecurity=False, string=b''.join(parts)).hexdigest()}-{len(parts)}"
        if multipart
        else whole.hexdigest()
    )
    return FileDigest(key=key, size=size, sha256=sha256.hexdigest(), etag=etag)


def check_uploaded(s3: S3Client, bucket: str, digest: FileDigest) -> None:
    """Raise `CorruptUploadError` unless S3's object has the file's size and ETag."""
    try:
        head = s3.head_object(Bucket=bucket, Key=digest.key)
    except (ClientError, BotoCoreError) as exc:
        raise StorageError(f"cannot check the upload of {digest.key} to {bucket}: {exc}") from exc
    etag = str(head.get("ETag", "")).strip('"')
    size = head.get("ContentLength")
    if etag != digest.etag or size != digest.size:
        raise CorruptUploadError(
            f"upload of {digest.key} is corrupt: S3 holds {size} bytes with ETag {etag}, "
            f"the file has {digest.size} bytes with ETag {digest.etag}"
        )


def upload_checked(s3: S3Client, path: Path, bucket: str, key: str) -> FileDigest:
    """Upload `path` as `key` and check that S3 holds exactly it; returns its digest."""
    digest = digest_file(path, key)
    upload_file(s3, path, bucket, key)
    check_uploaded(s3, bucket, digest)
    return digest
