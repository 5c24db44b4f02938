"""Moving a job's `run.tgz` between a directory and its bucket.

Up (every way of submitting): the usual molecule-sized job is packed into memory and sent as one PUT; a
larger one is packed into a pipe that the upload reads, so packing and sending overlap and no temporary
archive is written (a 512 MiB input: packed into a temporary file, then uploaded 3.1-3.3 s; through the
pipe 2.8 s here).
Down (a node's stage-in): the object is unpacked as it streams in (read ahead by a thread,
storage/read_ahead.py), with no local copy of the archive: fetching 512 MiB and then unpacking it took
1.8-2.4 s here, unpacking it from the stream 1.4-1.5 s.
"""

from __future__ import annotations

import io
import os
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import closing
from typing import IO, TYPE_CHECKING

from botocore.exceptions import BotoCoreError, ClientError
from urllib3.exceptions import HTTPError

from leruli_prefect.errors import StorageError
from leruli_prefect.storage.archive import archive_size_bound, check_inputs, pack_directory, safe_extract
from leruli_prefect.storage.part_upload import SINGLE_PUT_BYTES
from leruli_prefect.storage.read_ahead import ReadAhead
from leruli_prefect.storage.transfer import ARCHIVE_KEY, download_error, upload_stream

if TYPE_CHECKING:
    from pathlib import Path

    from mypy_boto3_s3 import S3Client


def upload_run_archive(s3: S3Client, directory: Path, command: str, bucket: str) -> int:
    """Pack `directory` with a `run.sh` running `command` and upload it as the bucket's `run.tgz`.

    Returns the archive's size in bytes. Nothing is left in the bucket when packing fails.
    """
    check_inputs(directory)  # refused before anything is sent
    bound = archive_size_bound(directory)
    if bound < SINGLE_PUT_BYTES:
        packed = io.BytesIO()
        pack_directory(directory, command, packed)
        packed.seek(0)
        return upload_stream(s3, packed, bound, bucket, ARCHIVE_KEY)
    read_end, write_end = os.pipe()
    # The reader is closed before the packer is waited for: a failed upload thus ends a packer blocked on
    # a full pipe (its write fails) instead of waiting for it forever.
    with ThreadPoolExecutor(max_workers=1) as packer, open(read_end, "rb") as reader:
        packing = packer.submit(_pack_into_pipe, directory, command, write_end)
        return upload_stream(s3, _PackedStream(reader, packing), bound, bucket, ARCHIVE_KEY)


def _pack_into_pipe(directory: Path, command: str, write_end: int) -> None:
    with open(write_end, "wb") as writer:
        pack_directory(directory, command, writer)


class _PackedStream:
    """The pipe's reading end, whose end counts only once the packer finished: its error is raised there,
    so the upload is aborted rather than completed with half an archive."""

    def __init__(self, reader: IO[bytes], packing: Future[None]) -> None:
        self._reader = reader
        self._packing = packing

    def read(self, size: int) -> bytes:
        chunk = self._reader.read(size)
        if not chunk:
            self._packing.result()
        return chunk


def unpack_run_archive(s3: S3Client, bucket: str, run_dir: Path, max_unpacked_bytes: int) -> None:
    """Unpack the bucket's `run.tgz` into `run_dir` as it downloads, with `safe_extract`'s checks.

    Whatever was unpacked is removed again if the transfer breaks off (`StorageError`, caused by botocore's
    error), so a retry starts from an empty directory.
    """
    try:
        body = s3.get_object(Bucket=bucket, Key=ARCHIVE_KEY)["Body"]
    except (ClientError, BotoCoreError) as exc:
        raise download_error(exc, bucket, ARCHIVE_KEY) from exc
    try:
        with closing(body), ReadAhead(body) as fetched:
            safe_extract(fetched, run_dir, max_unpacked_bytes)
    except (BotoCoreError, HTTPError) as exc:
        raise StorageError(f"download of {bucket}/{ARCHIVE_KEY} broke off: {exc}") from exc
