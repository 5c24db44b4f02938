"""Where the Python API finds the gateway and S3: a block the caller passes, a saved block's name, or else
the `LERULI_*` environment (the same variables the CLI reads).

Prefect is imported only when a block is named, so plain-Python use stays light.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, TypeAlias

from leruli_prefect.client import GatewayClient
from leruli_prefect.settings import load_settings
from leruli_prefect.storage.s3_client import make_s3_client

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client

    from leruli_prefect.blocks import LeruliCredentials, LeruliS3Storage

# A block, the name of a saved block, or None for the environment.
CredentialsSource: TypeAlias = "LeruliCredentials | str | None"
StorageSource: TypeAlias = "LeruliS3Storage | str | None"


def gateway_client_for(credentials: CredentialsSource) -> GatewayClient:
    if credentials is None:
        settings = load_settings()
        return GatewayClient(
            settings.baseurl,
            api_secret=settings.api_secret.get_secret_value() if settings.api_secret else None,
            group_token=settings.group_token.get_secret_value() if settings.group_token else None,
        )
    if isinstance(credentials, str):
        from leruli_prefect.blocks import LeruliCredentials

        credentials = LeruliCredentials.load(credentials)
    return credentials.gateway_client()


def s3_client_for(storage: StorageSource) -> S3Client:
    if storage is None:
        settings = load_settings()
        secret = settings.s3_secret.get_secret_value() if settings.s3_secret else None
        return make_s3_client(settings.s3_server, settings.s3_access, secret)
    if isinstance(storage, str):
        from leruli_prefect.blocks import LeruliS3Storage

        storage = LeruliS3Storage.load(storage)
    return storage.s3_client()
