"""Outputs a node keeps when S3 stays away past `storage_retry_seconds` while a job's outputs go out.

The job ends Failed (`storage unavailable; outputs kept on node HOST at PATH`), but its bytes are never lost:
its run dir moves to `<data dir>/kept/<job id>/` (one rename, same disk) with a note beside it,
`<job id>.json`, saying where they belong. The node uploads them to the job's bucket later, once S3 answers
again (`upload_kept`, tried at the node's start and every `kept_upload_seconds`), and marks the note
uploaded. It never deletes kept outputs itself: the operator removes a kept dir once its note says
`uploaded_at` (docs/adding-a-node.md). Blocking calls; the worker runs them in a thread.
"""

from __future__ import annotations

import json
import os
import socket
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from leruli_prefect.storage.job_files import FileStamp, upload_run_dir
from leruli_prefect.worker.retries import call_storage

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client

    from leruli_prefect.storage.checked_upload import FileDigest

KEPT_DIR = "kept"


@dataclass(frozen=True)
class KeptOutputs:
    """One job's kept run dir and where its outputs belong."""

    job_id: str
    bucket: str
    path: Path
    inputs: dict[str, FileStamp]

    @property
    def note(self) -> Path:
        return self.path.with_name(self.path.name + ".json")

    def where(self) -> str:
        """What the job's reason and the node's log say, so an operator can find the bytes."""
        return f"outputs kept on node {socket.gethostname()} at {self.path}"


def kept_root(data_dir: Path) -> Path:
    return data_dir / KEPT_DIR


def keep(
    data_dir: Path,
    run_dir: Path,
    job_id: str,
    attempt: int,
    bucket: str,
    inputs: dict[str, FileStamp],
) -> KeptOutputs:
    """Move a job's run dir to the kept outputs and write its note; returns where it is now."""
    name = job_id if attempt == 1 else f"{job_id}-attempt-{attempt}"
    kept = KeptOutputs(job_id, bucket, kept_root(data_dir) / name, inputs)
    kept.path.parent.mkdir(parents=True, exist_ok=True)
    run_dir.rename(kept.path)
    _write_note(
        kept,
        {
            "job_id": job_id,
            "attempt": attempt,
            "bucket": bucket,
            "node": socket.gethostname(),
            "kept_at": time.time(),
            "uploaded_at": None,
            "inputs": {key: asdict(stamp) for key, stamp in inputs.items()},
        },
    )
    return kept


def waiting(data_dir: Path) -> list[KeptOutputs]:
    """The kept outputs not uploaded yet, oldest first."""
    root = kept_root(data_dir)
    if not root.is_dir():
        return []
    found = []
    for note in sorted(root.glob("*.json"), key=lambda path: path.stat().st_mtime):
        try:
            content = json.loads(note.read_text())
        except (OSError, ValueError):
            continue  # a note cut short by a crash mid-write: its dir stays for the operator
        path = note.with_suffix("")
        if content.get("uploaded_at") is None and path.is_dir():
            inputs = {key: FileStamp(**stamp) for key, stamp in content.get("inputs", {}).items()}
            found.append(KeptOutputs(content["job_id"], content["bucket"], path, inputs))
    return found


def upload_kept(s3: S3Client, kept: KeptOutputs) -> list[FileDigest]:
    """Upload kept outputs to their bucket (each file checked), once: `StorageUnavailableError` while S3 is
    still away. On success the note says so; the files stay."""
    digests = call_storage(
        lambda: upload_run_dir(s3, kept.path, kept.bucket, kept.inputs),
        f"uploading the kept outputs of job {kept.job_id} to {kept.bucket}",
        limit_seconds=0,
    )
    content = json.loads(kept.note.read_text())
    content["uploaded_at"] = time.time()
    content["uploaded_files"] = len(digests)
    _write_note(kept, content)
    return digests


def _write_note(kept: KeptOutputs, content: dict[str, object]) -> None:
    partial = kept.note.with_suffix(".json.partial")
    partial.write_text(json.dumps(content, indent=2, sort_keys=True))
    os.replace(partial, kept.note)
