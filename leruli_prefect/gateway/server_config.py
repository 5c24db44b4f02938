"""How a server runs: where it listens, where it keeps its data, and the Prefect settings that follow.

Prefect reads its settings from the environment, so `prefect_environment` must be applied before Prefect's
server is imported.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from pydantic import BaseModel, Field

from leruli_prefect.errors import ConfigurationError
from leruli_prefect.gateway.security import SecretKind, new_secret

OPERATOR_SECRET_FILE = "operator-secret"
SERVER_INFO_FILE = "server.json"

# Prefect services a job queue does not want. The late-runs marker rewrites every queued run that waits
# longer than its start time ("Late"), which floods SQLite with writes on a deep queue; we have no schedules,
# pauses or automations.
_SERVICES_OFF = ("LATE_RUNS", "SCHEDULER", "PAUSE_EXPIRATIONS", "TRIGGERS", "EVENT_LOGGER")


class ServerConfig(BaseModel):
    host: str = "127.0.0.1"
    port: int = 4300
    data_dir: Path
    database_url: str | None = None
    # The lost-node sweeper (see lost_nodes.py): how often it looks, how many heartbeats a node may miss
    # before its jobs are written off, and how many attempts a job gets before it stays Crashed.
    sweep_seconds: float = Field(default=2.0, gt=0, le=3600)
    lost_after_heartbeats: int = Field(default=3, ge=1, le=1000)
    max_attempts: int = Field(default=3, ge=1, le=100)
    # Load shedding (see load_shedding.py): `/v1` requests in flight at once; the next get 503 + Retry-After.
    max_in_flight: int = Field(default=64, ge=1, le=100_000)  # load_shedding.MAX_IN_FLIGHT
    # Messaging between several server processes on one PostgreSQL database (prefect-redis).
    redis_url: str | None = None

    def check(self) -> None:
        """Refuse settings that cannot work together, with a one-line reason."""
        if self.database_url and not self.database_url.startswith("postgresql+asyncpg://"):
            raise ConfigurationError(
                "--database-url must be a postgresql+asyncpg://USER:PASSWORD@HOST:PORT/DB URL"
            )
        if self.redis_url and not self.database_url:
            raise ConfigurationError(
                "--redis-url is for several server processes, which need a shared --database-url (PostgreSQL)"
            )
        if self.redis_url and not self.redis_url.startswith(("redis://", "rediss://")):
            raise ConfigurationError("--redis-url must be a redis://HOST:PORT/DB URL")

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    @property
    def prefect_database_url(self) -> str:
        return self.database_url or f"sqlite+aiosqlite:///{self.data_dir / 'prefect.db'}"

    @property
    def gateway_database_url(self) -> str:
        # On PostgreSQL our tables sit beside Prefect's (prefixed `leruli_`); on SQLite they get their own
        # file so that Prefect's migrations never see them.
        return self.database_url or f"sqlite+aiosqlite:///{self.data_dir / 'gateway.db'}"


def load_or_create_operator_secret(data_dir: Path) -> str:
    """The server operator's secret: made once, kept in `<data dir>/operator-secret` (mode 0600)."""
    path = data_dir / OPERATOR_SECRET_FILE
    if path.exists():
        return path.read_text().strip()
    data_dir.mkdir(parents=True, exist_ok=True)
    secret = new_secret(SecretKind.operator)
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(descriptor, "w") as handle:
        handle.write(secret + "\n")
    return secret


def write_server_info(config: ServerConfig) -> None:
    """Tell operator commands on this machine (`leruli server init-group`) where the server listens."""
    (config.data_dir / SERVER_INFO_FILE).write_text(json.dumps({"url": config.url}))


def read_server_url(data_dir: Path) -> str | None:
    path = data_dir / SERVER_INFO_FILE
    return json.loads(path.read_text())["url"] if path.exists() else None


EVENT_PERSISTER_BATCH_SIZE = 500


def prefect_environment(config: ServerConfig, operator_secret: str) -> dict[str, str]:
    """The PREFECT_* settings of the embedded Prefect server."""
    environment = {
        "PREFECT_HOME": str(config.data_dir / "prefect"),
        "PREFECT_API_DATABASE_CONNECTION_URL": config.prefect_database_url,
        # Prefect checks this itself too: a second lock behind the gateway's.
        "PREFECT_SERVER_API_AUTH_STRING": operator_secret,
        "PREFECT_API_AUTH_STRING": operator_secret,
        "PREFECT_API_URL": f"{config.url}/prefect/api",
        "PREFECT_UI_API_URL": f"{config.url}/prefect/api",
        "PREFECT_UI_SERVE_BASE": "/prefect",
        "PREFECT_UI_URL": f"{config.url}/prefect",
        # No traffic leaves this machine.
        "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
        "PREFECT_SERVER_UI_SHOW_PROMOTIONAL_CONTENT": "false",
        # A batch of 1,000 jobs makes 1,000 Scheduled events at once: Prefect's persister writes them 20 per
        # transaction by default, which on SQLite kept the server busy for minutes after a 10,000-job fill
        # (bench/RESULTS.md, row 6). Events still reach the database within its 5 s flush interval.
        "PREFECT_SERVER_SERVICES_EVENT_PERSISTER_BATCH_SIZE": str(EVENT_PERSISTER_BATCH_SIZE),
    }
    for service in _SERVICES_OFF:
        environment[f"PREFECT_SERVER_SERVICES_{service}_ENABLED"] = "false"
    if config.redis_url:
        environment.update(redis_messaging_environment(config.redis_url))
    return environment


def redis_messaging_environment(redis_url: str) -> dict[str, str]:
    """What Prefect needs so that several server processes act as one (its "Scale self-hosted Prefect" guide).

    Events, the event cache and causal ordering, concurrency leases, background task scheduling (docket) and
    the worker cleanup queue go through Redis instead of each process's memory: an event a node sends to one
    process (a run's Cancelling, say) reaches the subscribers of every other.
    """
    return {
        "PREFECT_MESSAGING_BROKER": "prefect_redis.messaging",
        "PREFECT_MESSAGING_CACHE": "prefect_redis.messaging",
        "PREFECT_SERVER_EVENTS_CAUSAL_ORDERING": "prefect_redis.ordering",
        "PREFECT_SERVER_CONCURRENCY_LEASE_STORAGE": "prefect_redis.lease_storage",
        "PREFECT_SERVER_WORKER_CHANNEL_CLEANUP_QUEUE_STORAGE": "prefect_redis.cleanup_queue",
        "PREFECT_REDIS_MESSAGING_URL": redis_url,
        "PREFECT_REDIS_WORKER_CLEANUP_QUEUE_URL": redis_url,
        "PREFECT_SERVER_DOCKET_URL": redis_url,
    }
