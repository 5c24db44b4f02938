"""An S3 client that damages what it sends, to show that S3 (checking each `Content-MD5`) refuses it."""

from __future__ import annotations

from typing import Any


def _flip_first_byte(body: bytes) -> bytes:
    return bytes([body[0] ^ 1]) + body[1:]


class DamagingS3:
    """A real S3 client whose multipart uploads have one byte of part `damaged_part` flipped on the way, and
    whose `put_object` bodies too when `damage_puts`."""

    def __init__(self, s3: Any, damaged_part: int = 0, damage_puts: bool = False) -> None:
        self._s3 = s3
        self.damaged_part = damaged_part
        self.damage_puts = damage_puts

    def upload_part(self, **kwargs: Any) -> Any:
        if kwargs["PartNumber"] == self.damaged_part:
            kwargs["Body"] = _flip_first_byte(kwargs["Body"])
        return self._s3.upload_part(**kwargs)

    def put_object(self, **kwargs: Any) -> Any:
        if self.damage_puts:
            kwargs["Body"] = _flip_first_byte(kwargs["Body"])
        return self._s3.put_object(**kwargs)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._s3, name)
