"""Moving a job's files: `run.tgz` from its bucket into a fresh run dir, and the run dir back to the bucket.

Blocking calls; the worker runs them in a thread. Transfers ride out an S3 outage of up to `retry_seconds`
(then `StorageUnavailableError`): both are safe to repeat from their start.
"""

from __future__ import annotations

import os
import shutil
import threading
from pathlib import Path
from typing import TYPE_CHECKING

from leruli_prefect.errors import UnsafeArchiveError
from leruli_prefect.storage.archive import RUN_SCRIPT, STDERR_FILE, STDOUT_FILE
from leruli_prefect.storage.checked_upload import FileDigest
from leruli_prefect.storage.job_files import FileStamp, stamp_inputs, upload_run_dir
from leruli_prefect.storage.run_archive import unpack_run_archive
from leruli_prefect.worker.retries import call_storage

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client


def stage_in(
    s3: S3Client,
    bucket: str,
    run_dir: Path,
    max_unpacked_bytes: int,
    retry_seconds: float = 0.0,
    stop: threading.Event | None = None,
) -> None:
    """Make `run_dir` afresh and unpack the job's `run.tgz` into it as it downloads; `stop` ends a wait for
    S3 at once."""
    if run_dir.exists():
        shutil.rmtree(run_dir)
    run_dir.mkdir(parents=True)
    fetch = lambda: unpack_run_archive(s3, bucket, run_dir, max_unpacked_bytes)  # noqa: E731
    call_storage(fetch, f"fetching {bucket}/run.tgz", retry_seconds, stop=stop)
    if not (run_dir / RUN_SCRIPT).is_file():
        raise UnsafeArchiveError("run.tgz has no run.sh")
    clashes = [name for name in (STDOUT_FILE, STDERR_FILE) if (run_dir / name).exists()]
    if clashes:
        raise UnsafeArchiveError(f"inputs use the reserved name(s) {', '.join(clashes)}")


def hand_over(run_dir: Path, user: str) -> None:
    """Make `run_dir` and its inputs the container user's (`UID:GID`), so a non-root job can write there.

    A node running as root hands them over; an unprivileged node (rootless Docker maps users itself) can
    only open them up to everyone. Inside the container the mount point alone is checked, so the node's
    own private data dir above it stays closed.
    """
    uid, gid = (int(part) for part in user.split(":"))
    can_chown = os.geteuid() == 0
    for path in [run_dir, *run_dir.rglob("*")]:
        if path.is_symlink():
            continue
        if can_chown:
            os.chown(path, uid, gid)
        else:
            path.chmod(0o777 if path.is_dir() else path.stat().st_mode | 0o666)


def input_stamps(run_dir: Path) -> dict[str, FileStamp]:
    """The inputs as handed over to the job: stage out skips those still the same."""
    return stamp_inputs(run_dir)


def stage_out(
    s3: S3Client,
    run_dir: Path,
    bucket: str,
    inputs: dict[str, FileStamp] | None = None,
    retry_seconds: float = 0.0,
) -> list[FileDigest]:
    """Upload every file the job wrote or changed in `run_dir` to its bucket, each checked against what S3
    received (`CorruptUploadError` otherwise); returns their keys, sizes and SHA-256.

    Inputs still as in `inputs` are in run.tgz already: they are listed, not uploaded again.
    """
    return call_storage(
        lambda: upload_run_dir(s3, run_dir, bucket, inputs), f"uploading outputs to {bucket}", retry_seconds
    )


def is_disk_full(path: Path, reserve_bytes: int = 1 << 20) -> bool:
    """Whether the filesystem holding `path` has (nearly) no space left for a job to write to."""
    stats = os.statvfs(path)
    return stats.f_bavail * stats.f_frsize < reserve_bytes


def remove_run_dir(run_dir: Path) -> None:
    shutil.rmtree(run_dir, ignore_errors=True)
