"""A boto3 S3 client for any S3 endpoint (Ceph RGW, MinIO, AWS)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from leruli_prefect.errors import ConfigurationError

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client

# botocore asks every PUT of a body `Expect: 100-continue` and waits for the server's go-ahead before sending
# it: worth a round trip for a large part that S3 might refuse, pure cost for a small body. For an empty one
# (an empty joberr.txt, in most jobs) Ceph RGW gives no go-ahead and botocore waits it out: 44 ms per empty
# PutObject here against 3.3 ms without the header (boto/botocore#3124, #3755: with other servers an empty
# body's 100-continue can even leave the pooled connection unusable). Bodies below this go without it.
EXPECT_CONTINUE_FROM_BYTES = 1 << 20


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

    client = boto3.client(
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
    for operation in ("PutObject", "UploadPart"):
        client.meta.events.register_first(f"before-send.s3.{operation}", _no_continue_for_small_bodies)
    return client


def _no_continue_for_small_bodies(request: Any, **_: Any) -> None:
    """Drop `Expect: 100-continue` from a request whose body is below `EXPECT_CONTINUE_FROM_BYTES` (the
    header is not signed, so the signature holds). Returns None: anything else would stand for the reply."""
    length = request.headers.get("Content-Length")
    if length is not None and int(length) < EXPECT_CONTINUE_FROM_BYTES:
        request.headers.pop("Expect", None)
