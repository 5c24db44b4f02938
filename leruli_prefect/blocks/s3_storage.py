"""`LeruliS3Storage`: the group's own S3 endpoint and keys, where job inputs go and outputs come back."""

from __future__ import annotations

from typing import TYPE_CHECKING

from prefect.blocks.core import Block
from pydantic import Field, SecretStr

from leruli_prefect.settings import Settings
from leruli_prefect.storage.s3_client import make_s3_client

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client


class LeruliS3Storage(Block):
    """Your group's S3 storage: each job gets a bucket there holding its inputs (`run.tgz`) and outputs.

    Example:
        Load the stored S3 keys and fetch a job's outputs with them:
        ```python
        from leruli_prefect import get
        from leruli_prefect.blocks import LeruliS3Storage

        storage = LeruliS3Storage.load("BLOCK_NAME")
        get(job, "results/", storage=storage)
        ```
    """

    _block_type_name = "Leruli S3 Storage"

    endpoint_url: str = Field(
        description="The S3 endpoint, as in LERULI_S3_SERVER, e.g. http://127.0.0.1:7480.",
    )
    access_key: str = Field(description="The S3 access key id, as in LERULI_S3_ACCESS.")
    secret_key: SecretStr = Field(description="The S3 secret access key, as in LERULI_S3_SECRET.")

    @classmethod
    def from_settings(cls, settings: Settings) -> LeruliS3Storage:
        """The S3 storage the `LERULI_S3_*` environment names (what the CLI would use)."""
        return cls(
            endpoint_url=settings.s3_server or "",
            access_key=settings.s3_access or "",
            secret_key=settings.s3_secret or SecretStr(""),
        )

    def s3_client(self) -> S3Client:
        """A boto3 client for this storage (path-style addressing, retries)."""
        return make_s3_client(self.endpoint_url, self.access_key, self.secret_key.get_secret_value())
