"""A node's configuration, `node.toml`: which gateway and group it serves, its S3 keys, its data dir, and
what it offers (cores, memory, slots) to the jobs it runs.

The file holds secrets (compute secret, S3 keys), so it must not be readable by others.
"""

from __future__ import annotations

import json
import os
import tomllib
from pathlib import Path

from pydantic import BaseModel, Field, SecretStr, ValidationError, field_validator

from leruli_prefect.errors import ConfigurationError
from leruli_prefect.storage.archive import DEFAULT_MAX_UNPACKED_BYTES

# `UID:GID`, numeric: a name would have to exist in every image's /etc/passwd.
CONTAINER_USER_PATTERN = r"^[0-9]{1,10}:[0-9]{1,10}$"
DEFAULT_CONTAINER_USER = "65534:65534"  # nobody:nogroup on Debian


def machine_cores() -> int:
    """The CPUs this process may run on (what a default node offers)."""
    return len(os.sched_getaffinity(0))


def machine_memory_mb() -> int:
    """The machine's total memory in MB (what a default node offers)."""
    return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") // (1024 * 1024)


class NodeConfig(BaseModel):
    """Everything a node needs; see `docs/adding-a-node.md` for an example file."""

    gateway_url: str = Field(description="The gateway, e.g. http://127.0.0.1:4300")
    group_token: SecretStr = Field(description="The group's token (lq_group_...)")
    compute_secret: SecretStr = Field(description="The group's compute secret (lq_compute_...)")
    s3_server: str = Field(description="The group's S3 endpoint URL")
    s3_access: str = Field(description="S3 access key")
    s3_secret: SecretStr = Field(description="S3 secret key")
    data_dir: Path = Field(description="Where run directories are unpacked")
    docker_host: str = Field(default="unix:///var/run/docker.sock", description="Docker engine URL")
    slots: int = Field(default=2, ge=1, le=1024, description="How many jobs run at once, at most")
    prefetch: int = Field(
        default=0,
        ge=0,
        le=1024,
        description="How many jobs beyond its slots a node holds ready (claimed, inputs staged, container"
        " made) to start the moment a slot frees; 0: none",
    )
    prefetch_hold_seconds: float = Field(
        default=30,
        gt=0,
        le=3600,
        description="How long a job held ready waits for a slot before it goes back to the queue for"
        " another node",
    )
    cores: int = Field(
        default_factory=machine_cores, ge=1, le=4096, description="Cores offered to jobs (default: all)"
    )
    memory_mb: int = Field(
        default_factory=machine_memory_mb, ge=16, description="Memory offered to jobs in MB (default: all)"
    )
    container_user: str = Field(
        default=DEFAULT_CONTAINER_USER,
        pattern=CONTAINER_USER_PATTERN,
        description="`UID:GID` every job container runs as (never root)",
    )
    max_unpacked_bytes: int = Field(default=DEFAULT_MAX_UNPACKED_BYTES, ge=1, description="run.tgz size cap")
    poll_seconds: float = Field(
        default=0.25,
        gt=0,
        le=60,
        description="How often a node with a free slot asks for jobs (a full node does not ask)",
    )
    heartbeat_seconds: int = Field(
        default=10,
        ge=1,
        le=30,
        description="How often the node tells the server it is alive; silent 3 times this long, its jobs are"
        " requeued",
    )
    storage_retry_seconds: float = Field(
        default=300,
        ge=0,
        description="How long a job's transfers wait for S3 to come back before the job fails with"
        " `storage unavailable`",
    )
    kept_upload_seconds: float = Field(
        default=60,
        gt=0,
        description="How often outputs kept on the node during an S3 outage are offered to S3 again",
    )
    api_retry_seconds: float = Field(
        default=3600,
        ge=0,
        description="How long a job's start waits for the gateway to come back (a server restart); a job's"
        " final state is never given up",
    )
    docker_retry_seconds: float = Field(
        default=120,
        ge=0,
        description="How long a running job waits for its Docker engine to come back after a restart",
    )
    cancel_poll_seconds: float = Field(
        default=0.5, gt=0, le=10, description="How often a running job's state is checked for a cancel"
    )

    @field_validator("container_user")
    @classmethod
    def _not_root(cls, value: str) -> str:
        if value.split(":")[0] == "0":
            raise ValueError("jobs must not run as root (uid 0)")
        return value


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


def write_node_config(path: Path, config: NodeConfig) -> None:
    """Write `config` as a new node.toml, readable by its owner only; never overwrite an existing file."""
    values = config.model_dump(mode="json")
    for name in ("group_token", "compute_secret", "s3_secret"):
        values[name] = getattr(config, name).get_secret_value()
    lines = ["# leruli node configuration: holds secrets, keep it mode 0600\n"]
    for name, field in NodeConfig.model_fields.items():
        # JSON's strings, numbers and booleans are valid TOML values.
        lines.append(f"# {field.description}\n{name} = {json.dumps(values[name])}\n")
    try:
        descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError as exc:
        raise ConfigurationError(f"{path} exists already: not overwriting it") from exc
    with os.fdopen(descriptor, "w") as handle:
        os.fchmod(handle.fileno(), 0o600)  # the umask may have taken bits away, never added: be exact
        handle.write("\n".join(lines))
