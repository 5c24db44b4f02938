"""`leruli server ...`: the operator's commands on the central server machine."""

from __future__ import annotations

import json
import logging
import os
from pathlib import Path
from typing import Annotated

import typer

from leruli_prefect.cli.failures import reports_errors
from leruli_prefect.errors import ConfigurationError

app = typer.Typer(help="Run the central server and manage its groups (operators only).", no_args_is_help=True)

DEFAULT_DATA_DIR = Path.home() / ".leruli" / "server"
DataDirOption = Annotated[Path, typer.Option(help="Where the server keeps its databases and secrets")]


@app.command()
@reports_errors
def start(
    host: Annotated[str, typer.Option(help="Address to listen on")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port to listen on")] = 4300,
    data_dir: DataDirOption = DEFAULT_DATA_DIR,
    database_url: Annotated[
        str | None,
        typer.Option(help="PostgreSQL URL (postgresql+asyncpg://...); default SQLite in the data dir"),
    ] = None,
    sweep_seconds: Annotated[
        float, typer.Option(help="How often the server looks for jobs of lost nodes (seconds)")
    ] = 2.0,
    lost_after_heartbeats: Annotated[
        int, typer.Option(help="Heartbeats a node may miss before its jobs are written off and requeued")
    ] = 3,
    max_attempts: Annotated[
        int, typer.Option(help="Attempts a job gets when its nodes are lost; after the last it stays Crashed")
    ] = 3,
    max_in_flight: Annotated[
        int,
        typer.Option(help="REST requests (/v1) served at once; the next are answered 503 with Retry-After"),
    ] = 64,
    redis_url: Annotated[
        str | None,
        typer.Option(
            help="Redis URL (redis://HOST:PORT/DB) shared by several server processes on one --database-url"
        ),
    ] = None,
) -> None:
    """Serve the gateway (/v1), the Prefect API (/prefect/api) and UI (/prefect/) in one process."""
    from leruli_prefect.gateway.server_config import (
        ServerConfig,
        load_or_create_operator_secret,
        prefect_environment,
        write_server_info,
    )

    config = ServerConfig(  # out-of-range settings: one line naming them (`reports_errors`)
        host=host,
        port=port,
        data_dir=data_dir.resolve(),
        database_url=database_url,
        redis_url=redis_url,
        sweep_seconds=sweep_seconds,
        lost_after_heartbeats=lost_after_heartbeats,
        max_attempts=max_attempts,
        max_in_flight=max_in_flight,
    )
    config.check()
    config.data_dir.mkdir(parents=True, exist_ok=True)
    operator_secret = load_or_create_operator_secret(config.data_dir)
    # Prefect reads its settings when it is imported: set them first.
    os.environ.update(prefect_environment(config, operator_secret))

    import uvicorn

    from leruli_prefect.gateway.app import create_app
    from leruli_prefect.worker.leruli_worker import LeruliWorker

    app_ = create_app(
        config,
        operator_secret=operator_secret,
        base_job_template=LeruliWorker.get_default_base_job_template(),
    )
    write_server_info(config)
    typer.echo(f"leruli server on {config.url}  (REST API {config.url}/v1, Prefect UI {config.url}/prefect/)")
    typer.echo(f"Prefect UI password: the operator secret in {config.data_dir / 'operator-secret'}")
    _show_gateway_logs()
    uvicorn.run(app_, host=host, port=port, log_level="info", timeout_graceful_shutdown=10)


def _show_gateway_logs() -> None:
    """Print the gateway's own INFO lines (ready, node sockets closed at a rotation) beside uvicorn's;
    without a handler Python shows only warnings."""
    handler = logging.StreamHandler()
    handler.setFormatter(logging.Formatter("%(levelname)-9s %(message)s"))  # uvicorn's `INFO:     ...` look
    gateway = logging.getLogger("leruli_prefect.gateway")
    gateway.addHandler(handler)
    gateway.setLevel(logging.INFO)


@app.command("init-group")
@reports_errors
def init_group(
    name: Annotated[str, typer.Argument(help="The group's name: lowercase letters, digits, dashes")],
    admin_name: Annotated[str, typer.Option(help="Name of the group's first admin user")] = "admin",
    data_dir: DataDirOption = DEFAULT_DATA_DIR,
    url: Annotated[str | None, typer.Option(help="The server's URL; default: read from the data dir")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the secrets as JSON")] = False,
) -> None:
    """Create a group with its work pool, deployment and first admin; prints its secrets once."""
    from leruli_prefect.client import GatewayClient
    from leruli_prefect.gateway.server_config import OPERATOR_SECRET_FILE, read_server_url

    secret_path = data_dir / OPERATOR_SECRET_FILE
    if not secret_path.exists():
        raise ConfigurationError(
            f"no operator secret at {secret_path}: start the server with this --data-dir first"
        )
    url = url or read_server_url(data_dir)
    if url is None:
        raise ConfigurationError(f"no server URL known in {data_dir}: pass --url")
    with GatewayClient(url) as client:
        created = client.create_group(
            name, operator_secret=secret_path.read_text().strip(), admin_name=admin_name
        )
    if as_json:
        typer.echo(json.dumps(created, indent=2))
        return
    typer.echo(f"Group {created['group']} created (work pool {created['work_pool']}).")
    typer.echo("These secrets are shown once and cannot be read again: store them now.")
    typer.echo(f"  group token                 {created['group_token']}")
    typer.echo(f"  API secret of {created['admin_name']:<13} {created['api_secret']}")
    typer.echo(f"  compute secret              {created['compute_secret']}")
