"""A boto3 S3 client for any S3 endpoint (Ceph RGW, MinIO, AWS)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from leruli_prefect.errors import ConfigurationError

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client


def make_s3_client(
    endpoint: str | None, access: str | None, secret: str | None, *, max_attempts: int = 5
) -> S3Client:
    """A client with path-style addressing, which every S3 server understands (virtual hosts need DNS).

    `max_attempts` bounds botocore's own quick retries; a node retries longer outages itself.
    """
    missing = [
        name
        for name, value in (
            ("LERULI_S3_SERVER", endpoint),
            ("LERULI_S3_ACCESS", access),
            ("LERULI_S3_SECRET", secret),
        )
        if not value
    ]
    if missing:
        raise ConfigurationError(f"S3 is not configured: set {', '.join(missing)}")
    import boto3
    from botocore.config import Config

    return boto3.client(
        "s3",
        endpoint_url=endpoint,
        aws_access_key_id=access,
        aws_secret_access_key=secret,
        region_name="us-east-1",
        config=Config(
            # Every upload of ours carries its Content-MD5 (storage/part_upload.py), which the signature
            # covers and S3 checks. So the payload itself is not signed (over plain http botocore would
            # hash every byte once more with SHA-256: 1.7 s of CPU per 512 MiB here), nor given a CRC32 as
            # well (0.3 s; Ceph RGW 16 ignores it).
            s3={"addressing_style": "path", "payload_signing_enabled": False},
            request_checksum_calculation="when_required",
            retries={"max_attempts": max_attempts, "mode": "standard"},
            connect_timeout=10,
            read_timeout=120,
        ),
    )
