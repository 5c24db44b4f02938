"""Prefect blocks for researchers: how to reach the gateway (`LeruliCredentials`) and the group's S3 storage.

Register them once per Prefect API with `prefect block register -m leruli_prefect.blocks`.
"""

from __future__ import annotations

from leruli_prefect.blocks.credentials import LeruliCredentials
from leruli_prefect.blocks.s3_storage import LeruliS3Storage

__all__ = ["LeruliCredentials", "LeruliS3Storage"]
