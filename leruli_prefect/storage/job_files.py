"""A job's files in its bucket after it ran: the outputs, and the inputs it left as they were.

The inputs are in `run.tgz` already, so a node uploads only what the job wrote or changed, and lists the
inputs it left unchanged in `leruli.inputs` (name, size, mtime). `leruli get` still gives the whole run
directory, as the original Leruli client did: it downloads the uploaded files, keeps a local input that
matches the list (the usual case: `leruli get` runs in the submitted directory), and takes any other listed
input out of `run.tgz`. A bucket without the list (written before it existed) holds every file itself.
"""

from __future__ import annotations

import json
import shutil
import tempfile
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from botocore.exceptions import BotoCoreError, ClientError

from leruli_prefect.errors import StorageError
from leruli_prefect.storage.archive import INPUTS_MANIFEST, RUN_SCRIPT, safe_extract
from leruli_prefect.storage.checked_upload import FileDigest, upload_checked
from leruli_prefect.storage.part_upload import put_bytes
from leruli_prefect.storage.transfer import ARCHIVE_KEY, download_bucket, download_file

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client

PARALLEL_UPLOADS = 8


@dataclass(frozen=True)
class FileStamp:
    """What tells an unchanged file: the container cannot reset ctime, nor keep it while writing."""

    size: int
    mtime_ns: int
    ctime_ns: int
    inode: int

    @classmethod
    def of(cls, path: Path) -> FileStamp:
        info = path.lstat()
        return cls(info.st_size, info.st_mtime_ns, info.st_ctime_ns, info.st_ino)


def regular_files(directory: Path) -> list[tuple[str, Path]]:
    """Every regular file below `directory` (no symlinks), as (relative key, path), in key order."""
    return [
        (path.relative_to(directory).as_posix(), path)
        for path in sorted(directory.rglob("*"))
        if path.is_file() and not path.is_symlink()
    ]


def stamp_inputs(run_dir: Path) -> dict[str, FileStamp]:
    """The stamps of the unpacked inputs, taken right before the job starts."""
    return {key: FileStamp.of(path) for key, path in regular_files(run_dir)}


def upload_run_dir(
    s3: S3Client, run_dir: Path, bucket: str, inputs: dict[str, FileStamp] | None = None
) -> list[FileDigest]:
    """Upload what the job wrote or changed, each checked (`checked_upload`); list the unchanged `inputs`
    in `leruli.inputs`.

    Returns the uploaded files' digests, in key order. `run.sh` is always uploaded (a user's directory
    never has it, and fetching `run.tgz` for it alone would cost the whole archive).
    """
    inputs = inputs or {}
    uploads: list[tuple[str, Path]] = []
    unchanged: dict[str, dict[str, int]] = {}
    for key, path in regular_files(run_dir):
        stamp = inputs.get(key)
        if key != RUN_SCRIPT and key != INPUTS_MANIFEST and stamp is not None and stamp == FileStamp.of(path):
            unchanged[key] = {"size": stamp.size, "mtime": stamp.mtime_ns // 1_000_000_000}
        else:
            uploads.append((key, path))
    # Side by side: a job leaves several small files (run.sh, joblog.txt, joberr.txt, ...), each one
    # round trip; boto3 clients may be shared by threads.
    with ThreadPoolExecutor(max_workers=min(PARALLEL_UPLOADS, len(uploads) or 1)) as pool:
        digests = list(pool.map(lambda item: upload_checked(s3, item[1], bucket, item[0]), uploads))
    if unchanged:
        body = json.dumps({"archive": ARCHIVE_KEY, "inputs": unchanged}, sort_keys=True).encode()
        try:
            put_bytes(s3, bucket, INPUTS_MANIFEST, body, content_type="application/json")
        except (ClientError, BotoCoreError) as exc:
            raise StorageError(f"cannot upload {bucket}/{INPUTS_MANIFEST}: {exc}") from exc
    return digests


def download_run_dir(s3: S3Client, bucket: str, directory: Path) -> list[str]:
    """Give `directory` the job's run directory: its outputs and its inputs; returns every key it holds.

    A local file that matches an unchanged input (same size and mtime) is kept, not downloaded again.
    """
    fetched = download_bucket(s3, bucket, directory, skip=frozenset({ARCHIVE_KEY, INPUTS_MANIFEST}))
    unchanged = _unchanged_inputs(s3, bucket)
    root = directory.resolve()
    missing: dict[str, Path] = {}
    for key, entry in unchanged.items():
        target = (root / key).resolve()
        if not target.is_relative_to(root) or target == root:
            raise StorageError(f"refusing to write {key!r} outside {directory}")
        if not _matches(target, entry):
            missing[key] = target
    if missing:
        _restore_from_archive(s3, bucket, root, missing)
    return sorted({*fetched, *unchanged})


def _unchanged_inputs(s3: S3Client, bucket: str) -> dict[str, dict[str, int]]:
    try:
        body = s3.get_object(Bucket=bucket, Key=INPUTS_MANIFEST)["Body"].read()
    except ClientError as exc:
        if exc.response.get("Error", {}).get("Code") in {"NoSuchKey", "404"}:
            return {}  # every file was uploaded (a bucket from before the list, or no input unchanged)
        raise StorageError(f"cannot read {bucket}/{INPUTS_MANIFEST}: {exc}") from exc
    except BotoCoreError as exc:
        raise StorageError(f"cannot read {bucket}/{INPUTS_MANIFEST}: {exc}") from exc
    try:
        inputs = json.loads(body)["inputs"]
        return {str(key): {"size": int(e["size"]), "mtime": int(e["mtime"])} for key, e in inputs.items()}
    except (ValueError, KeyError, TypeError, AttributeError) as exc:
        raise StorageError(f"{bucket}/{INPUTS_MANIFEST} is not a list of inputs: {exc}") from exc


def _matches(path: Path, entry: dict[str, int]) -> bool:
    try:
        info = path.lstat()
    except OSError:
        return False
    return path.is_file() and info.st_size == entry["size"] and int(info.st_mtime) == entry["mtime"]


def _restore_from_archive(s3: S3Client, bucket: str, root: Path, targets: dict[str, Path]) -> None:
    """Take the inputs out of the job's run.tgz (unpacked safely inside `root`, then moved into place)."""
    with tempfile.TemporaryDirectory(dir=root, prefix=".leruli-restore-") as scratch:
        archive = Path(scratch) / ARCHIVE_KEY
        unpacked = Path(scratch) / "run"
        unpacked.mkdir()
        download_file(s3, bucket, ARCHIVE_KEY, archive)
        safe_extract(archive, unpacked)
        for key, target in targets.items():
            source = unpacked / key
            if not source.is_file() or source.is_symlink():
                raise StorageError(f"{bucket}/{ARCHIVE_KEY} lacks the input {key!r} the job left unchanged")
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.move(source, target)
