"""The product's S3 client against the real S3: small bodies go without `Expect: 100-continue`."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from leruli_prefect.storage.checked_upload import upload_checked
from leruli_prefect.storage.s3_client import EXPECT_CONTINUE_FROM_BYTES

MB = 1 << 20


def test_only_large_bodies_ask_to_continue(s3: Any, bucket: str, tmp_path: Path) -> None:
    sent: list[tuple[int, str | None]] = []

    def record(request: Any, **_: Any) -> None:
        sent.append((int(request.headers["Content-Length"]), request.headers.get("Expect")))

    s3.meta.events.register("before-send.s3.PutObject", record)
    s3.meta.events.register("before-send.s3.UploadPart", record)
    sizes = {"empty": 0, "small": 10, "large": 9 * MB}
    for name, size in sizes.items():
        (tmp_path / name).write_bytes(os.urandom(size))
        digest = upload_checked(s3, tmp_path / name, bucket, name)  # checks what S3 holds
        assert digest.size == size
    assert sorted(length for length, _ in sent) == sorted([0, 10, 8 * MB, 1 * MB])  # the large in two parts
    for length, expect in sent:
        assert expect == (b"100-continue" if length >= EXPECT_CONTINUE_FROM_BYTES else None), (length, expect)
    assert s3.head_object(Bucket=bucket, Key="empty")["ContentLength"] == 0
