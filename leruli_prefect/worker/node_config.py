"""A node's configuration, `node.toml`: which gateway and group it serves, its S3 keys, its data dir.

The file holds secrets (compute secret, S3 keys), so it must not be readable by others.
"""

from __future__ import annotations

import tomllib
from pathlib import Path

from pydantic import BaseModel, Field, SecretStr, ValidationError

from leruli_prefect.errors import ConfigurationError
from leruli_prefect.storage.archive import DEFAULT_MAX_UNPACKED_BYTES


class NodeConfig(BaseModel):
    """Everything a node needs; see `docs/` for an example file."""

    gateway_url: str = Field(description="The gateway, e.g. http://127.0.0.1:4300")
    group_token: SecretStr = Field(description="The group's token (lq_group_...)")
    compute_secret: SecretStr = Field(description="The group's compute secret (lq_compute_...)")
    s3_server: str = Field(description="The group's S3 endpoint URL")
    s3_access: str = Field(description="S3 access key")
    s3_secret: SecretStr = Field(description="S3 secret key")
    data_dir: Path = Field(description="Where run directories are unpacked")
    docker_host: str = Field(default="unix:///var/run/docker.sock", description="Docker engine URL")
    slots: int = Field(default=2, ge=1, le=1024, description="How many jobs run at once")
    max_unpacked_bytes: int = Field(default=DEFAULT_MAX_UNPACKED_BYTES, ge=1, description="run.tgz size cap")
    poll_seconds: float = Field(default=1.0, gt=0, le=60, description="How often the node asks for jobs")


def load_node_config(path: Path) -> NodeConfig:
    try:
        raw = tomllib.loads(path.read_text())
    except FileNotFoundError as exc:
        raise ConfigurationError(f"no node config at {path}") from exc
    except tomllib.TOMLDecodeError as exc:
        raise ConfigurationError(f"{path} is not valid TOML: {exc}") from exc
    try:
        return NodeConfig.model_validate(raw)
    except ValidationError as exc:
        problems = "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors())
        raise ConfigurationError(f"{path}: {problems}") from exc
