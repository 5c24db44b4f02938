"""Moving a job's `run.tgz` between a directory and its bucket.

Up (every way of submitting): the archive is packed into memory and sent as one PUT when it is small (the
usual molecule-sized job: no temporary file, no transfer manager), and spills to a temporary file for a
multipart upload when it is not.
Down (a node's stage-in): the object is unpacked as it streams in, with no local copy of the archive:
fetching 512 MiB and then unpacking it took 1.8-2.4 s here, unpacking it from the stream 1.4-1.5 s.
"""

from __future__ import annotations

import tempfile
from contextlib import closing
from typing import TYPE_CHECKING

from botocore.exceptions import BotoCoreError, ClientError
from urllib3.exceptions import HTTPError

from leruli_prefect.errors import StorageError
from leruli_prefect.storage.archive import pack_directory, safe_extract
from leruli_prefect.storage.transfer import ARCHIVE_KEY, SINGLE_PUT_BYTES, download_error, upload_fileobj

if TYPE_CHECKING:
    from pathlib import Path

    from mypy_boto3_s3 import S3Client


def upload_run_archive(s3: S3Client, directory: Path, command: str, bucket: str) -> int:
    """Pack `directory` with a `run.sh` running `command` and upload it as the bucket's `run.tgz`.

    Returns the archive's size in bytes.
    """
    with tempfile.SpooledTemporaryFile(max_size=SINGLE_PUT_BYTES) as spool:
        pack_directory(directory, command, spool)
        size = spool.tell()
        spool.seek(0)
        upload_fileobj(s3, spool, size, bucket, ARCHIVE_KEY)
    return size


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
        with closing(body):
            safe_extract(body, run_dir, max_unpacked_bytes)
    except (BotoCoreError, HTTPError) as exc:
        raise StorageError(f"download of {bucket}/{ARCHIVE_KEY} broke off: {exc}") from exc
