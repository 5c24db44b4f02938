"""Uploading a job's files with a check that S3 holds exactly what was on disk.

Each file is read once: every part is hashed (SHA-256 of the whole file for the result record, MD5 of the
part) and sent with its `Content-MD5`, so S3 refuses a part damaged on the way. A file under
`SINGLE_PUT_BYTES` is one `put_object`; a larger one a multipart upload whose parts go out side by side
while the next part is read and hashed (hashlib and the socket writes release the GIL, so hashing overlaps
the transfer instead of preceding it: reading the file once for the digest and once more for boto3's
`upload_file` cost 2.4 s extra on a 512 MiB output here). After the upload, `head_object` must report the
size and the ETag the parts imply: the MD5 of the content for one part, the MD5 of the parts' MD5s with
`-N` for several (the rule every S3 follows; Ceph RGW 16 knows no `x-amz-checksum-sha256`).

Blocking calls; the worker runs them in a thread.
"""

from __future__ import annotations

import base64
import hashlib
import threading
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from botocore.exceptions import BotoCoreError, ClientError

from leruli_prefect.errors import StorageError
from leruli_prefect.storage.transfer import SINGLE_PUT_BYTES

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client

PART_BYTES = 8 * 1024 * 1024  # boto3's default part size, so ETags match what `upload_file` would give
MAX_PARTS = 10_000  # S3's limit: larger files get larger parts
PARTS_IN_FLIGHT = 8  # parts read ahead of the uploads: bounds the memory a file's upload holds


class CorruptUploadError(StorageError):
    """S3 holds something other than the file that was uploaded."""


@dataclass(frozen=True)
class FileDigest:
    key: str
    size: int
    sha256: str
    etag: str  # what S3 must report, without quotes


def part_size_for(size: int) -> int:
    """The part size for a file of `size` bytes: 8 MiB, doubled until the parts fit S3's limit."""
    part = PART_BYTES
    while -(-size // part) > MAX_PARTS:
        part *= 2
    return part


def digest_file(path: Path, key: str) -> FileDigest:
    """SHA-256 and the S3 ETag of `path` as `upload_checked` uploads it (without uploading)."""
    size = path.stat().st_size
    sha256, part_md5s = hashlib.sha256(), []
    with open(path, "rb") as handle:
        for chunk in _parts(handle, size):
            sha256.update(chunk)
            part_md5s.append(hashlib.md5(chunk, usedforsecurity=False).digest())
    return FileDigest(key=key, size=size, sha256=sha256.hexdigest(), etag=_etag(size, part_md5s))


def upload_checked(s3: S3Client, path: Path, bucket: str, key: str) -> FileDigest:
    """Upload `path` as `key`, reading it once, and check that S3 holds exactly it; returns its digest."""
    size = path.stat().st_size
    try:
        with open(path, "rb") as handle:
            if size < SINGLE_PUT_BYTES:
                digest = _put_whole(s3, handle.read(), bucket, key)
            else:
                digest = _put_parts(s3, handle, size, bucket, key)
    except ClientError as exc:
        if exc.response.get("Error", {}).get("Code") in {"BadDigest", "InvalidDigest"}:
            raise CorruptUploadError(f"upload of {key} is corrupt: S3 received other bytes ({exc})") from exc
        raise StorageError(f"cannot upload {path} to {bucket}/{key}: {exc}") from exc
    except BotoCoreError as exc:
        raise StorageError(f"cannot upload {path} to {bucket}/{key}: {exc}") from exc
    if digest.size != size:
        raise StorageError(f"{path} changed size while it was uploaded ({size} -> {digest.size} bytes)")
    check_uploaded(s3, bucket, digest)
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


def _put_whole(s3: S3Client, data: bytes, bucket: str, key: str) -> FileDigest:
    md5 = hashlib.md5(data, usedforsecurity=False).digest()
    s3.put_object(Bucket=bucket, Key=key, Body=data, ContentMD5=_b64(md5))
    sha256 = hashlib.sha256(data).hexdigest()
    return FileDigest(key=key, size=len(data), sha256=sha256, etag=md5.hex())


def _put_parts(s3: S3Client, handle: Any, size: int, bucket: str, key: str) -> FileDigest:
    """A multipart upload, its parts sent while later ones are read; aborted if any part fails."""
    upload_id = s3.create_multipart_upload(Bucket=bucket, Key=key)["UploadId"]
    sha256, part_md5s, done = hashlib.sha256(), [], 0
    in_flight = threading.BoundedSemaphore(PARTS_IN_FLIGHT)
    sent: list[Future[dict[str, Any]]] = []

    def send(number: int, chunk: bytes) -> dict[str, Any]:
        try:
            md5 = hashlib.md5(chunk, usedforsecurity=False).digest()
            part_md5s[number - 1] = md5
            answer = s3.upload_part(
                Bucket=bucket,
                Key=key,
                UploadId=upload_id,
                PartNumber=number,
                Body=chunk,
                ContentMD5=_b64(md5),
            )
            return {"PartNumber": number, "ETag": answer["ETag"]}
        finally:
            in_flight.release()

    try:
        with ThreadPoolExecutor(max_workers=PARTS_IN_FLIGHT) as pool:
            for number, chunk in enumerate(_parts(handle, size), start=1):
                sha256.update(chunk)  # in order, here; each part's MD5 in its sender
                part_md5s.append(b"")
                done += len(chunk)
                in_flight.acquire()
                if any(future.done() and future.exception() for future in sent):
                    in_flight.release()
                    break  # a part failed: stop reading, its error is raised below
                sent.append(pool.submit(send, number, chunk))
            parts = [future.result() for future in sent]
        s3.complete_multipart_upload(
            Bucket=bucket, Key=key, UploadId=upload_id, MultipartUpload={"Parts": parts}
        )
    except BaseException:
        _abort_quietly(s3, bucket, key, upload_id)
        raise
    return FileDigest(key=key, size=done, sha256=sha256.hexdigest(), etag=_etag(done, part_md5s))


def _parts(handle: Any, size: int) -> Any:
    part = part_size_for(size) if size >= SINGLE_PUT_BYTES else max(size, 1)
    while chunk := handle.read(part):
        yield chunk


def _etag(size: int, part_md5s: list[bytes]) -> str:
    if size < SINGLE_PUT_BYTES:
        return (part_md5s[0] if part_md5s else hashlib.md5(b"", usedforsecurity=False).digest()).hex()
    return f"{hashlib.md5(b''.join(part_md5s), usedforsecurity=False).hexdigest()}-{len(part_md5s)}"


def _b64(digest: bytes) -> str:
    return base64.b64encode(digest).decode()


def _abort_quietly(s3: S3Client, bucket: str, key: str, upload_id: str) -> None:
    try:
        s3.abort_multipart_upload(Bucket=bucket, Key=key, UploadId=upload_id)
    except (ClientError, BotoCoreError):
        pass  # the parts stay until S3's own cleanup; the job's upload is retried or failed either way
