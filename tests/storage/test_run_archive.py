"""`run.tgz` between a directory and its bucket: packed into the upload (one PUT when small, multipart when
not), and unpacked as it downloads, on the real S3; a download cut short leaves nothing behind and is an
outage the node retries."""

from __future__ import annotations

import os
import socket
import threading
from pathlib import Path
from typing import Any

import pytest

from leruli_prefect.errors import StorageError
from leruli_prefect.storage import run_archive
from leruli_prefect.storage.archive import pack_directory
from leruli_prefect.storage.run_archive import unpack_run_archive, upload_run_archive
from leruli_prefect.storage.s3_client import make_s3_client
from leruli_prefect.worker.retries import is_transient_storage_error
from tests.storage.s3_doubles import DamagingS3

MB = 1024 * 1024


@pytest.mark.parametrize("big_bytes", [0, 20 * MB], ids=["one-put", "multipart"])
def test_a_directory_goes_up_and_comes_down_unpacked(s3, bucket: str, tmp_path: Path, big_bytes: int) -> None:  # noqa: ANN001
    submitted = tmp_path / "submitted"
    (submitted / "sub").mkdir(parents=True)
    (submitted / "mol.xyz").write_text("3\nwater\n")
    (submitted / "sub" / "big.bin").write_bytes(os.urandom(big_bytes))
    size = upload_run_archive(s3, submitted, "cat mol.xyz", bucket)
    head = s3.head_object(Bucket=bucket, Key="run.tgz")
    assert head["ContentLength"] == size and ("-" in head["ETag"]) == (big_bytes > 0)
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    unpack_run_archive(s3, bucket, run_dir, max_unpacked_bytes=100 * MB)
    assert (run_dir / "mol.xyz").read_text() == "3\nwater\n"
    assert (run_dir / "sub" / "big.bin").read_bytes() == (submitted / "sub" / "big.bin").read_bytes()
    assert (run_dir / "run.sh").read_text() == "#!/bin/bash\ncat mol.xyz\n"


def test_a_missing_archive_is_named(s3, bucket: str, tmp_path: Path) -> None:  # noqa: ANN001
    with pytest.raises(StorageError, match=f"{bucket}/run.tgz does not exist") as refused:
        unpack_run_archive(s3, bucket, tmp_path, max_unpacked_bytes=MB)
    assert not is_transient_storage_error(refused.value)


def test_a_download_cut_short_leaves_nothing_and_is_retried(tmp_path: Path) -> None:
    """An S3 that sends half of the archive and hangs up (as one that crashes mid-transfer does)."""
    source = tmp_path / "source"
    source.mkdir()
    (source / "input.bin").write_bytes(os.urandom(4 * MB))
    pack_directory(source, "true", tmp_path / "run.tgz")
    with _half_answering_s3((tmp_path / "run.tgz").read_bytes()) as url:
        s3 = make_s3_client(url, "access", "secret", max_attempts=1)
        run_dir = tmp_path / "run"
        run_dir.mkdir()
        with pytest.raises(StorageError, match="download of leruli-x/run.tgz broke off") as broken:
            unpack_run_archive(s3, "leruli-x", run_dir, max_unpacked_bytes=100 * MB)
    assert is_transient_storage_error(broken.value)  # the node retries it within storage_retry_seconds
    assert list(run_dir.iterdir()) == []  # the half-unpacked input is gone: a retry starts clean


class _half_answering_s3:  # noqa: N801 - used as a context manager
    """A one-connection HTTP server that promises `body` and sends half of it."""

    def __init__(self, body: bytes) -> None:
        self._body = body
        self._listener = socket.create_server(("127.0.0.1", 0))
        self._thread = threading.Thread(target=self._serve, daemon=True)

    def __enter__(self) -> str:
        self._thread.start()
        return f"http://127.0.0.1:{self._listener.getsockname()[1]}"

    def __exit__(self, *exc_info: object) -> None:
        self._listener.close()

    def _serve(self) -> None:
        connection, _ = self._listener.accept()
        with connection:
            request = b""
            while b"\r\n\r\n" not in request:
                request += connection.recv(65536)
            head = f"HTTP/1.1 200 OK\r\nContent-Length: {len(self._body)}\r\n\r\n".encode()
            connection.sendall(head + self._body[: len(self._body) // 2])


def test_a_packing_failure_leaves_nothing_in_the_bucket(
    s3,  # noqa: ANN001
    bucket: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Packed into the upload: an archive that breaks off is not completed as a shorter one."""
    (tmp_path / "input.bin").write_bytes(os.urandom(9 * MB))  # past one PUT: packed through the pipe

    def fail_midway(directory: Path, command: str, archive: Any) -> int:
        archive.write(os.urandom(20 * MB))
        raise OSError("input.bin: read error")

    monkeypatch.setattr(run_archive, "pack_directory", fail_midway)
    with pytest.raises(OSError, match="read error"):
        upload_run_archive(s3, tmp_path, "true", bucket)
    assert s3.list_objects_v2(Bucket=bucket).get("KeyCount") == 0
    assert s3.list_multipart_uploads(Bucket=bucket).get("Uploads", []) == []


@pytest.mark.timeout(120)
def test_a_failed_upload_ends_the_packing(s3, bucket: str, tmp_path: Path) -> None:  # noqa: ANN001
    """The packer, blocked on a full pipe once the upload gave up, is not waited for forever."""
    (tmp_path / "input.bin").write_bytes(os.urandom(64 * MB))
    with pytest.raises(StorageError, match="BadDigest"):
        upload_run_archive(DamagingS3(s3, damaged_part=1), tmp_path, "true", bucket)
    assert s3.list_multipart_uploads(Bucket=bucket).get("Uploads", []) == []
