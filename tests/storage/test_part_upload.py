"""Uploads with a `Content-MD5` on every request: the real S3 refuses a body damaged on the way, whether one
PUT or one part of a multipart upload, and nothing is left of it; the payload itself is not signed."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest

from leruli_prefect.errors import StorageError
from leruli_prefect.storage.part_upload import send_parts
from leruli_prefect.storage.transfer import upload_file
from tests.storage.s3_doubles import DamagingS3

MB = 1024 * 1024


@pytest.mark.parametrize(
    ("size", "damage"),
    [(1000, {"damage_puts": True}), (20 * MB, {"damaged_part": 2})],
    ids=["one-put", "multipart"],
)
def test_a_damaged_upload_is_refused_and_an_intact_one_lands(
    s3,  # noqa: ANN001
    bucket: str,
    tmp_path: Path,
    size: int,
    damage: dict[str, Any],
) -> None:
    path = tmp_path / "input.bin"
    path.write_bytes(os.urandom(size))
    with pytest.raises(StorageError, match="BadDigest"):
        upload_file(DamagingS3(s3, **damage), path, bucket, "input.bin")  # type: ignore[arg-type]
    assert s3.list_objects_v2(Bucket=bucket).get("KeyCount") == 0
    assert s3.list_multipart_uploads(Bucket=bucket).get("Uploads", []) == []
    upload_file(s3, path, bucket, "input.bin")
    assert s3.get_object(Bucket=bucket, Key="input.bin")["Body"].read() == path.read_bytes()


def test_requests_carry_the_md5_and_nothing_else_hashes_the_payload(s3, bucket: str, tmp_path: Path) -> None:  # noqa: ANN001
    sent: list[dict[str, str]] = []

    def record(request: Any, **_: Any) -> None:
        sent.append({name.lower(): _text(value) for name, value in request.headers.items()})

    s3.meta.events.register("before-send.s3.PutObject", record)
    s3.meta.events.register("before-send.s3.UploadPart", record)
    for name, size in (("small", 10), ("large", 9 * MB)):
        (tmp_path / name).write_bytes(os.urandom(size))
        upload_file(s3, tmp_path / name, bucket, name)
    assert len(sent) == 3  # one PUT, two parts
    assert all("content-md5" in headers for headers in sent)
    assert {headers["x-amz-content-sha256"] for headers in sent} == {"UNSIGNED-PAYLOAD"}
    assert not [name for headers in sent for name in headers if name.startswith("x-amz-checksum-")]


def _text(value: str | bytes) -> str:
    return value.decode() if isinstance(value, bytes) else value


def test_a_short_part_before_others_is_refused() -> None:
    with pytest.raises(ValueError, match="a short part"):
        send_parts(None, [b"short", b"more"], "leruli-x", "key")  # type: ignore[arg-type]
