"""A run directory through its bucket (real S3): unchanged inputs stay in run.tgz, `get` gives them back."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest

from leruli_prefect.storage.archive import INPUTS_MANIFEST, pack_directory, safe_extract
from leruli_prefect.storage.job_files import download_run_dir, stamp_inputs, upload_run_dir
from leruli_prefect.storage.transfer import ARCHIVE_KEY, list_keys, upload_file
from tests import stack


@pytest.fixture
def s3(s3_env: dict[str, str]) -> Any:
    """A plain boto3 client (signed payloads): the bucket's files are the same either way."""
    return stack.s3_client(s3_env)


def _ran_job(s3: Any, bucket: str, tmp_path: Path) -> tuple[Path, Path, bytes]:
    """Submit a directory, unpack it as a node does, let a 'job' change one input and write an output."""
    submitted = tmp_path / "submitted"
    (submitted / "sub").mkdir(parents=True)
    big = os.urandom(2 * 1024 * 1024)
    (submitted / "big.bin").write_bytes(big)
    (submitted / "sub" / "kept.txt").write_text("kept")
    (submitted / "changed.txt").write_text("before")
    pack_directory(submitted, "true", tmp_path / "run.tgz")
    upload_file(s3, tmp_path / "run.tgz", bucket, ARCHIVE_KEY)

    run_dir = tmp_path / "node-run"
    run_dir.mkdir()
    safe_extract(tmp_path / "run.tgz", run_dir)
    inputs = stamp_inputs(run_dir)
    (run_dir / "changed.txt").write_text("after!")  # same name, new content
    (run_dir / "out.txt").write_text("result")
    (run_dir / "joblog.txt").write_text("")
    upload_run_dir(s3, run_dir, bucket, inputs)
    return submitted, run_dir, big


def test_unchanged_inputs_are_not_uploaded_again(s3: Any, bucket: str, tmp_path: Path) -> None:
    _ran_job(s3, bucket, tmp_path)

    keys = set(list_keys(s3, bucket))
    assert keys == {ARCHIVE_KEY, INPUTS_MANIFEST, "run.sh", "changed.txt", "out.txt", "joblog.txt"}


def test_get_in_the_submitted_directory_keeps_the_local_inputs(s3: Any, bucket: str, tmp_path: Path) -> None:
    submitted, _, big = _ran_job(s3, bucket, tmp_path)
    s3.delete_object(Bucket=bucket, Key=ARCHIVE_KEY)  # proves the archive is not needed here

    keys = download_run_dir(s3, bucket, submitted)

    assert set(keys) == {"run.sh", "changed.txt", "out.txt", "joblog.txt", "big.bin", "sub/kept.txt"}
    assert (submitted / "changed.txt").read_text() == "after!"
    assert (submitted / "out.txt").read_text() == "result"
    assert (submitted / "big.bin").read_bytes() == big
    assert not (submitted / INPUTS_MANIFEST).exists()


def test_get_elsewhere_takes_the_inputs_out_of_the_archive(s3: Any, bucket: str, tmp_path: Path) -> None:
    submitted, run_dir, big = _ran_job(s3, bucket, tmp_path)
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    (elsewhere / "big.bin").write_bytes(b"a stale local copy")  # differs from the input: replaced

    download_run_dir(s3, bucket, elsewhere)

    got = {path.relative_to(elsewhere).as_posix() for path in elsewhere.rglob("*") if path.is_file()}
    assert got == {"run.sh", "changed.txt", "out.txt", "joblog.txt", "big.bin", "sub/kept.txt"}
    assert (elsewhere / "big.bin").read_bytes() == big
    assert (elsewhere / "sub" / "kept.txt").read_text() == "kept"
    assert (elsewhere / "changed.txt").read_text() == "after!"
    assert not any(path.name.startswith(".leruli-restore-") for path in elsewhere.iterdir())


def test_a_bucket_without_the_list_is_downloaded_whole(s3: Any, bucket: str, tmp_path: Path) -> None:
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    (run_dir / "input.txt").write_text("in")
    (run_dir / "out.txt").write_text("out")
    upload_run_dir(s3, run_dir, bucket)  # no stamps: everything uploaded, as before

    target = tmp_path / "got"
    target.mkdir()
    assert sorted(download_run_dir(s3, bucket, target)) == ["input.txt", "out.txt"]
    assert INPUTS_MANIFEST not in list_keys(s3, bucket)
