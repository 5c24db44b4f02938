"""Uploading a job's files with a check that S3 holds exactly what was on disk.

Each file is read once: every part is hashed (SHA-256 of the whole file for the result record, MD5 of the
part for its `Content-MD5`, storage/part_upload.py) while earlier parts are on their way (reading the file
once for the digest and once more for boto3's `upload_file` cost 2.4 s extra on a 512 MiB output here).
S3 must then report the ETag the parts imply: the MD5 of the content for one part, the MD5 of the parts' MD5s
with `-N` for several (the rule every S3 follows; Ceph RGW 16 knows no `x-amz-checksum-sha256`). Its answer
to `put_object` carries that ETag, so a small file needs no `head_object` (a round trip per file, about two
per job); RGW answers the completion of a multipart upload with an empty ETag, so a large file is asked for
its size and ETag afterwards.

Blocking calls; the worker runs them in a thread.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from botocore.exceptions import BotoCoreError, ClientError

from leruli_prefect.errors import StorageError
from leruli_prefect.storage.part_upload import etag_of, part_size_for, read_parts, send_parts

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client


class CorruptUploadError(StorageError):
    """S3 holds something other than the file that was uploaded."""


@dataclass(frozen=True)
class FileDigest:
    key: str
    size: int
    sha256: str
    etag: str  # what S3 must report, without quotes


def digest_file(path: Path, key: str) -> FileDigest:
    """SHA-256 and the S3 ETag of `path` as `upload_checked` uploads it (without uploading)."""
    size = path.stat().st_size
    sha256, part_md5s = hashlib.sha256(), []
    with open(path, "rb") as handle:
        for chunk in read_parts(handle, part_size_for(size)):
            sha256.update(chunk)
            part_md5s.append(hashlib.md5(chunk, usedforsecurity=False).digest())
    return FileDigest(key=key, size=size, sha256=sha256.hexdigest(), etag=etag_of(size, part_md5s))


def upload_checked(s3: S3Client, path: Path, bucket: str, key: str) -> FileDigest:
    """Upload `path` as `key`, reading it once, and check that S3 holds exactly it; returns its digest."""
    size = path.stat().st_size
    sha256 = hashlib.sha256()
    try:
        with open(path, "rb") as handle:
            sent = send_parts(s3, read_parts(handle, part_size_for(size)), bucket, key, sha256.update)
        digest = FileDigest(key=key, size=sent.size, sha256=sha256.hexdigest(), etag=sent.etag)
    except ClientError as exc:
        if exc.response.get("Error", {}).get("Code") in {"BadDigest", "InvalidDigest"}:
            raise CorruptUploadError(f"upload of {key} is corrupt: S3 received other bytes ({exc})") from exc
        raise StorageError(f"cannot upload {path} to {bucket}/{key}: {exc}") from exc
    except BotoCoreError as exc:
        raise StorageError(f"cannot upload {path} to {bucket}/{key}: {exc}") from exc
    if digest.size != size:
        raise StorageError(f"{path} changed size while it was uploaded ({size} -> {digest.size} bytes)")
    if not sent.reported_etag:
        check_uploaded(s3, bucket, digest)
    elif sent.reported_etag != digest.etag:
        raise CorruptUploadError(
            f"upload of {key} is corrupt: S3 stored ETag {sent.reported_etag}, "
            f"the file's {size} bytes have ETag {digest.etag}"
        )
    return digest


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
