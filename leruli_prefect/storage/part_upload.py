"""Uploads in which every request carries the `Content-MD5` of its bytes, so S3 refuses a body damaged on the
way (`BadDigest`): one `put_object` below `SINGLE_PUT_BYTES`, else a multipart upload whose parts go out side
by side while the next part is read (hashlib and socket writes release the GIL).

Because of that header our clients do not sign payloads (storage/s3_client.py): over plain http botocore
otherwise hashes every byte once more with SHA-256 for the signature, 1.7 s of CPU per 512 MiB here, and the
signed `Content-MD5` already binds the body to the request.

Blocking calls; callers map botocore's errors to ours.
"""

from __future__ import annotations

import base64
import hashlib
import threading
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

from botocore.exceptions import BotoCoreError, ClientError

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client

# boto3's multipart threshold and part size, so ETags match what its `upload_file` would give.
SINGLE_PUT_BYTES = 8 * 1024 * 1024
PART_BYTES = 8 * 1024 * 1024
MAX_PARTS = 10_000  # S3's limit: larger files get larger parts
PARTS_IN_FLIGHT = 8  # parts read ahead of the uploads: bounds the memory one upload holds


class Readable(Protocol):
    def read(self, size: int, /) -> bytes: ...


@dataclass(frozen=True)
class SentObject:
    size: int
    etag: str  # what S3 must report for it, without quotes
    reported_etag: str  # the ETag in S3's answer, without quotes; empty when it gave none


def part_size_for(size: int) -> int:
    """The part size for `size` bytes: 8 MiB, doubled until the parts fit S3's limit."""
    part = PART_BYTES
    while -(-size // part) > MAX_PARTS:
        part *= 2
    return part


def read_parts(handle: Readable, part_bytes: int) -> Iterator[bytes]:
    """`handle`'s bytes in parts of `part_bytes` (the last one shorter); a pipe's reads are filled up too."""
    while chunk := handle.read(part_bytes):
        yield chunk


def send_parts(
    s3: S3Client,
    parts: Iterable[bytes],
    bucket: str,
    key: str,
    each_part: Callable[[bytes], object] | None = None,
) -> SentObject:
    """Upload the concatenation of `parts` (as `read_parts` gives them: full parts but the last) as `key`;
    `each_part` sees every part in order (a whole-file hash).

    A first part shorter than `SINGLE_PUT_BYTES` is the whole object: one `put_object`.
    """
    parts = iter(parts)
    first = next(parts, b"")
    if len(first) >= SINGLE_PUT_BYTES:
        return _send_multipart(s3, _prepend(first, parts), bucket, key, each_part)
    if next(parts, None) is not None:
        raise ValueError(f"a short part ({len(first)} bytes) came before others: refusing to send {key}")
    if each_part:
        each_part(first)
    return put_bytes(s3, bucket, key, first)


def put_bytes(s3: S3Client, bucket: str, key: str, body: bytes, content_type: str = "") -> SentObject:
    """One `put_object` of `body` with its `Content-MD5`."""
    md5 = hashlib.md5(body, usedforsecurity=False).digest()
    extra = {"ContentType": content_type} if content_type else {}
    answer = s3.put_object(Bucket=bucket, Key=key, Body=body, ContentMD5=_b64(md5), **extra)
    return SentObject(len(body), md5.hex(), _unquoted(answer))


def etag_of(size: int, part_md5s: list[bytes]) -> str:
    """S3's ETag for an object sent as these parts: their MD5 for one PUT, the MD5 of the MD5s with `-N`."""
    if size < SINGLE_PUT_BYTES:
        return (part_md5s[0] if part_md5s else hashlib.md5(b"", usedforsecurity=False).digest()).hex()
    return _multipart_etag(part_md5s)


def _multipart_etag(part_md5s: list[bytes]) -> str:
    return f"{hashlib.md5(b''.join(part_md5s), usedforsecurity=False).hexdigest()}-{len(part_md5s)}"


def _send_multipart(
    s3: S3Client, parts: Iterator[bytes], bucket: str, key: str, each_part: Callable[[bytes], object] | None
) -> SentObject:
    """The parts sent while later ones are read; the upload aborted if any part fails or reading fails."""
    upload_id = s3.create_multipart_upload(Bucket=bucket, Key=key)["UploadId"]
    part_md5s: list[bytes] = []
    size = 0
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
            for number, chunk in enumerate(parts, start=1):
                if each_part:
                    each_part(chunk)  # in order, here; each part's MD5 in its sender
                part_md5s.append(b"")
                size += len(chunk)
                in_flight.acquire()
                if any(future.done() and future.exception() for future in sent):
                    in_flight.release()
                    break  # a part failed: stop reading, its error is raised below
                sent.append(pool.submit(send, number, chunk))
            answers = [future.result() for future in sent]
        completed = s3.complete_multipart_upload(
            Bucket=bucket, Key=key, UploadId=upload_id, MultipartUpload={"Parts": answers}
        )
    except BaseException:
        _abort_quietly(s3, bucket, key, upload_id)
        raise
    return SentObject(size, _multipart_etag(part_md5s), _unquoted(completed))


def _prepend(first: bytes, rest: Iterator[bytes]) -> Iterator[bytes]:
    yield first
    yield from rest


def _unquoted(answer: Any) -> str:
    return str(answer.get("ETag", "")).strip('"')


def _b64(digest: bytes) -> str:
    return base64.b64encode(digest).decode()


def _abort_quietly(s3: S3Client, bucket: str, key: str, upload_id: str) -> None:
    try:
        s3.abort_multipart_upload(Bucket=bucket, Key=key, UploadId=upload_id)
    except (ClientError, BotoCoreError):
        pass  # the parts stay until S3's own cleanup; the upload is retried or failed either way
