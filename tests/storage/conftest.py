"""A job bucket on the real S3 for each test, reached with the product's client (`make_s3_client`)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from leruli_prefect.storage.buckets import create_bucket, delete_bucket, new_bucket_name
from leruli_prefect.storage.s3_client import make_s3_client


@pytest.fixture
def s3(s3_env: dict[str, str]) -> Any:
    return make_s3_client(s3_env["LERULI_S3_SERVER"], s3_env["LERULI_S3_ACCESS"], s3_env["LERULI_S3_SECRET"])


@pytest.fixture
def bucket(s3: Any) -> Iterator[str]:
    name = new_bucket_name()
    create_bucket(s3, name)
    yield name
    delete_bucket(s3, name)
