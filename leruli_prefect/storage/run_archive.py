"""Putting a submitted directory into its bucket as `run.tgz`, the one step every way of submitting shares.

The archive is packed into memory and sent as one PUT when it is small (the usual molecule-sized job: no
temporary file, no transfer manager), and spills to a temporary file for a multipart upload when it is not.
"""

from __future__ import annotations

import tempfile
from typing import TYPE_CHECKING

from leruli_prefect.storage.archive import pack_directory
from leruli_prefect.storage.transfer import ARCHIVE_KEY, SINGLE_PUT_BYTES, upload_fileobj

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
