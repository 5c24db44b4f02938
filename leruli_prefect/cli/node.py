"""`leruli node ...`: attach this machine to a group as a compute node."""

from __future__ import annotations

import asyncio
import json
import os
import stat
from pathlib import Path
from typing import Annotated

import typer

from leruli_prefect.cli.failures import reports_errors
from leruli_prefect.client import COMPUTE_SECRET_HEADER, GROUP_TOKEN_HEADER, GatewayClient
from leruli_prefect.worker.node_config import (
    DEFAULT_CONTAINER_USER,
    NodeConfig,
    load_node_config,
    machine_cores,
    machine_memory_mb,
    write_node_config,
)

app = typer.Typer(help="Run a compute node that takes its group's jobs.", no_args_is_help=True)


@app.command()
@reports_errors
def init(
    gateway_url: Annotated[str, typer.Option(help="The gateway, e.g. https://leruli.example.org")],
    s3_server: Annotated[str, typer.Option(help="The group's S3 endpoint URL")],
    s3_access: Annotated[str, typer.Option(help="The group's S3 access key")],
    data_dir: Annotated[Path, typer.Option(help="Where run directories are unpacked")],
    group_token: Annotated[
        str, typer.Option(prompt=True, hide_input=True, help="The group token (asked when not given)")
    ],
    compute_secret: Annotated[
        str, typer.Option(prompt=True, hide_input=True, help="The compute secret (asked when not given)")
    ],
    s3_secret: Annotated[
        str, typer.Option(prompt=True, hide_input=True, help="The S3 secret key (asked when not given)")
    ],
    docker_host: Annotated[
        str, typer.Option(help="Docker engine URL; rootless Docker: unix:///run/user/UID/docker.sock")
    ] = "unix:///var/run/docker.sock",
    cores: Annotated[int | None, typer.Option(help="Cores offered to jobs [default: all]")] = None,
    memory: Annotated[int | None, typer.Option(help="Memory offered to jobs in MB [default: all]")] = None,
    slots: Annotated[int, typer.Option(help="Jobs at once, at most")] = 2,
    container_user: Annotated[str, typer.Option(help="UID:GID jobs run as")] = DEFAULT_CONTAINER_USER,
    config: Annotated[Path, typer.Option("--config", help="The file to write")] = Path("node.toml"),
) -> None:
    """Write a new node.toml (mode 0600) for `leruli node start`; an existing file is never overwritten."""
    node = NodeConfig(
        gateway_url=gateway_url,
        group_token=group_token,
        compute_secret=compute_secret,
        s3_server=s3_server,
        s3_access=s3_access,
        s3_secret=s3_secret,
        data_dir=data_dir.absolute(),
        docker_host=docker_host,
        cores=cores if cores is not None else machine_cores(),
        memory_mb=memory if memory is not None else machine_memory_mb(),
        slots=slots,
        container_user=container_user,
    )
    write_node_config(config, node)
    typer.echo(
        f"Wrote {config} (mode 0600): {node.cores} core(s), {node.memory_mb} MB, {node.slots} slot(s)."
        f" Start the node with: leruli node start --config {config}"
    )


@app.command()
@reports_errors
def start(
    config: Annotated[Path, typer.Option("--config", help="The node's node.toml")] = Path("node.toml"),
) -> None:
    """Start taking the group's jobs and running them in Docker (until interrupted)."""
    node = load_node_config(config)
    if config.stat().st_mode & (stat.S_IRWXG | stat.S_IRWXO):
        typer.echo(f"Warning: {config} holds secrets but others may read it: chmod 600 {config}", err=True)
    with GatewayClient(node.gateway_url) as client:
        identity = client.node_identity(
            group_token=node.group_token.get_secret_value(),
            compute_secret=node.compute_secret.get_secret_value(),
        )
    pool = identity["work_pool"]
    node.data_dir.mkdir(parents=True, exist_ok=True)
    os.environ.update(_prefect_environment(node))
    for name in ("PREFECT_API_KEY", "PREFECT_API_AUTH_STRING"):
        os.environ.pop(name, None)  # the node speaks for its group only, with the group's secrets
    typer.echo(
        f"Node for group {identity['group']} (pool {pool}) via {node.gateway_url}, {node.slots} slot(s)"
    )
    asyncio.run(_run_worker(node, pool))


def _prefect_environment(node: NodeConfig) -> dict[str, str]:
    headers = {
        GROUP_TOKEN_HEADER: node.group_token.get_secret_value(),
        COMPUTE_SECRET_HEADER: node.compute_secret.get_secret_value(),
    }
    return {
        "PREFECT_API_URL": f"{node.gateway_url.rstrip('/')}/prefect/api",
        "PREFECT_CLIENT_CUSTOM_HEADERS": json.dumps(headers),
        "PREFECT_WORKER_QUERY_SECONDS": str(node.poll_seconds),
        # The server writes a node off (and requeues its jobs) after 3 silent intervals: 30 s by default.
        "PREFECT_WORKER_HEARTBEAT_SECONDS": str(node.heartbeat_seconds),
        "PREFECT_HOME": str(node.data_dir / "prefect"),
        # Prefect's client would hide a server restart in up to a minute of silent retries; two short ones,
        # then the node's own backoff (worker/retries.py) takes over and says so in the node's log.
        "PREFECT_CLIENT_MAX_RETRIES": "2",
    }


async def _run_worker(node: NodeConfig, pool: str) -> None:
    from leruli_prefect.worker.leruli_worker import LeruliWorker

    # The worker sets Prefect's limit on runs in hand from the node's slots.
    worker = LeruliWorker(work_pool_name=pool, create_pool_if_not_found=False, node_config=node)
    await worker.start()
