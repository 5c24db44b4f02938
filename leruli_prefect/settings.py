"""The one settings source of leruli-prefect: `LERULI_*` environment variables, read with pydantic-settings.

The variable names are those of the original Leruli client (`LERULI_BASEURL`, `LERULI_API_SECRET`,
`LERULI_S3_SERVER`, ...), so scripts written for it keep working.
"""

from __future__ import annotations

from pathlib import Path

from pydantic import SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    """What a researcher's machine (CLI, Python API) knows about its group's gateway and S3."""

    model_config = SettingsConfigDict(env_prefix="LERULI_", extra="ignore")

    baseurl: str = "http://127.0.0.1:4300"
    api_secret: SecretStr | None = None
    group_token: SecretStr | None = None
    s3_server: str | None = None
    s3_access: str | None = None
    s3_secret: SecretStr | None = None
    # A node started by `prefect worker start --type leruli-docker` finds its node.toml here.
    node_config: Path | None = None


def load_settings() -> Settings:
    """Read the settings afresh (tests change the environment between calls)."""
    return Settings()
