"""A node configuration for tests that reach no gateway or S3: every address is a closed local port."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from leruli_prefect.worker.node_config import NodeConfig


def offline_node_config(data_dir: Path, **overrides: Any) -> NodeConfig:
    settings: dict[str, Any] = {
        "gateway_url": "http://127.0.0.1:9",
        "group_token": "lq_group_x",
        "compute_secret": "lq_compute_x",
        "s3_server": "http://127.0.0.1:9",
        "s3_access": "a",
        "s3_secret": "s",
        "data_dir": data_dir,
    }
    return NodeConfig(**{**settings, **overrides})
