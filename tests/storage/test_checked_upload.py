"""Checked uploads (a node's stage-out): the ETag S3 must report for a file, a corrupt upload caught (fake
S3), and the real S3 agreeing with the computed ETags for single-part and multipart uploads."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path
from typing import Any

import pytest

from leruli_prefect.storage.buckets import create_bucket, delete_bucket, new_bucket_name
from leruli_prefect.storage.checked_upload import (
    CorruptUploadError,
    check_uploaded,
    digest_file,
    upload_checked,
)
from leruli_prefect.storage.job_files import upload_run_dir
from leruli_prefect.storage.s3_client import make_s3_client
from tests.storage.s3_doubles import DamagingS3

MB = 1024 * 1024


class FakeS3:
    """Stores what `put_object` is given, optionally damaged on the way (one byte flipped), as an S3 would
    that ignores `Content-MD5`, and answers the ETag of what it stored: that answer is what catches it."""

    def __init__(self, damage: str | None = None) -> None:
        self.objects: dict[str, bytes] = {}
        self.damage = damage

    def put_object(self, Bucket: str, Key: str, Body: bytes, ContentMD5: str) -> dict[str, Any]:  # noqa: N803
        if Key == self.damage:
            Body = bytes([Body[0] ^ 1]) + Body[1:]
        self.objects[Key] = Body
        return {"ETag": f'"{hashlib.md5(Body).hexdigest()}"'}

    def head_object(self, Bucket: str, Key: str) -> dict[str, Any]:  # noqa: N803 - boto3's names
        content = self.objects[Key]
        return {"ETag": f'"{hashlib.md5(content).hexdigest()}"', "ContentLength": len(content)}


class CountingS3:
    """A real S3 client that counts its `head_object` calls."""

    def __init__(self, s3: Any) -> None:
        self._s3 = s3
        self.heads = 0

    def head_object(self, **kwargs: Any) -> Any:
        self.heads += 1
        return self._s3.head_object(**kwargs)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._s3, name)


def _files(directory: Path) -> None:
    (directory / "sub").mkdir()
    (directory / "a.txt").write_text("hello")
    (directory / "sub" / "b.dat").write_bytes(b"\x00" * 1000)


def test_a_corrupt_upload_fails_with_the_key_named(tmp_path: Path) -> None:
    _files(tmp_path)
    with pytest.raises(
        CorruptUploadError, match=r"upload of sub/b.dat is corrupt: S3 stored ETag [0-9a-f]{32},"
    ):
        upload_run_dir(FakeS3(damage="sub/b.dat"), tmp_path, "bucket")  # type: ignore[arg-type]


def test_an_object_that_differs_from_the_file_fails_the_check(tmp_path: Path) -> None:
    (tmp_path / "b.dat").write_bytes(b"\x00" * 1000)
    s3 = FakeS3(damage="b.dat")
    s3.put_object(Bucket="bucket", Key="b.dat", Body=b"\x00" * 1000, ContentMD5="")
    digest = digest_file(tmp_path / "b.dat", "b.dat")
    with pytest.raises(
        CorruptUploadError, match=r"upload of b.dat is corrupt: S3 holds 1000 bytes with ETag"
    ):
        check_uploaded(s3, "bucket", digest)  # type: ignore[arg-type]


def test_an_intact_upload_gives_sizes_and_sha256(tmp_path: Path) -> None:
    _files(tmp_path)
    digests = upload_run_dir(FakeS3(), tmp_path, "bucket")  # type: ignore[arg-type]
    assert [(d.key, d.size, d.sha256) for d in digests] == [
        ("a.txt", 5, hashlib.sha256(b"hello").hexdigest()),
        ("sub/b.dat", 1000, hashlib.sha256(b"\x00" * 1000).hexdigest()),
    ]


def test_multipart_etag_is_md5_of_part_md5s(tmp_path: Path) -> None:
    path = tmp_path / "big"
    content = os.urandom(17 * MB + 3)
    path.write_bytes(content)
    parts = [content[i : i + 8 * MB] for i in range(0, len(content), 8 * MB)]
    expected = hashlib.md5(b"".join(hashlib.md5(p).digest() for p in parts)).hexdigest() + "-3"
    digest = digest_file(path, "big")
    assert digest.etag == expected
    assert digest.sha256 == hashlib.sha256(content).hexdigest()


def test_real_s3_refuses_a_damaged_part_and_nothing_is_left(tmp_path: Path, s3_env: dict[str, str]) -> None:
    path = tmp_path / "out.bin"
    path.write_bytes(os.urandom(20 * MB))
    s3 = make_s3_client(s3_env["LERULI_S3_SERVER"], s3_env["LERULI_S3_ACCESS"], s3_env["LERULI_S3_SECRET"])
    bucket = new_bucket_name()
    create_bucket(s3, bucket)
    try:
        with pytest.raises(CorruptUploadError, match="upload of out.bin is corrupt: S3 received other bytes"):
            upload_checked(DamagingS3(s3, damaged_part=2), path, bucket, "out.bin")  # type: ignore[arg-type]
        assert s3.list_objects_v2(Bucket=bucket).get("KeyCount") == 0
        assert s3.list_multipart_uploads(Bucket=bucket).get("Uploads", []) == []  # aborted, not left
        digest = upload_checked(s3, path, bucket, "out.bin")  # the same file, undamaged, goes through
        assert digest.sha256 == hashlib.sha256(path.read_bytes()).hexdigest()
        assert digest.etag == digest_file(path, "out.bin").etag and digest.etag.endswith("-3")
    finally:
        delete_bucket(s3, bucket)


def test_real_s3_is_asked_only_about_multipart_uploads(tmp_path: Path, s3_env: dict[str, str]) -> None:
    """A small file's ETag comes with S3's answer to its PUT; RGW answers a multipart completion without
    one, so a large file is checked with one `head_object`."""
    (tmp_path / "small").write_bytes(os.urandom(1000))
    (tmp_path / "large").write_bytes(os.urandom(9 * MB))
    s3 = CountingS3(
        make_s3_client(s3_env["LERULI_S3_SERVER"], s3_env["LERULI_S3_ACCESS"], s3_env["LERULI_S3_SECRET"])
    )
    bucket = new_bucket_name()
    create_bucket(s3, bucket)  # type: ignore[arg-type]
    try:
        upload_checked(s3, tmp_path / "small", bucket, "small")  # type: ignore[arg-type]
        assert s3.heads == 0
        upload_checked(s3, tmp_path / "large", bucket, "large")  # type: ignore[arg-type]
        assert s3.heads == 1  # Ceph RGW; an S3 that answers the ETag would need none
    finally:
        delete_bucket(s3, bucket)  # type: ignore[arg-type]


def test_real_s3_agrees_with_the_computed_etags(tmp_path: Path, s3_env: dict[str, str]) -> None:
    sizes = {"empty": 0, "small": 1000, "exactly-8mb": 8 * MB, "two-parts": 9 * MB + 5}
    for name, size in sizes.items():
        (tmp_path / name).write_bytes(os.urandom(size))
    s3 = make_s3_client(s3_env["LERULI_S3_SERVER"], s3_env["LERULI_S3_ACCESS"], s3_env["LERULI_S3_SECRET"])
    bucket = new_bucket_name()
    create_bucket(s3, bucket)
    try:
        digests = upload_run_dir(s3, tmp_path, bucket)  # raises if S3 disagrees on any
        assert {d.key: d.size for d in digests} == sizes
        assert {d.etag.endswith("-2") for d in digests if d.key == "two-parts"} == {True}
    finally:
        delete_bucket(s3, bucket)
