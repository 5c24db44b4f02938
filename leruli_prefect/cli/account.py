"""`leruli login` and `leruli whoami`: the user's own credential."""

from __future__ import annotations

import json
from typing import Annotated

import typer

from leruli_prefect.cli.credentials import gateway_client, store_api_secret
from leruli_prefect.cli.failures import reports_errors
from leruli_prefect.client import GatewayClient
from leruli_prefect.settings import load_settings


@reports_errors
def login(
    api_secret: Annotated[
        str | None, typer.Option(help="The API secret; asked for (hidden) when not given", show_default=False)
    ] = None,
) -> None:
    """Check your API secret with the gateway and keep it in the OS keyring."""
    settings = load_settings()
    secret = api_secret or typer.prompt("API secret", hide_input=True)
    with GatewayClient(settings.baseurl, api_secret=secret) as client:
        identity = client.whoami(as_user=True)
    backend = store_api_secret(settings, secret)
    typer.echo(
        f"Logged in to {settings.baseurl} as {identity['user']} of group {identity['group']} ({backend})."
    )
    if settings.api_secret is not None:
        typer.echo("Note: LERULI_API_SECRET is set and wins over the keyring.", err=True)


@reports_errors
def whoami(as_json: Annotated[bool, typer.Option("--json", help="Print JSON")] = False) -> None:
    """Show whose credentials these are (your API secret if set, else the group token)."""
    settings = load_settings()
    with gateway_client(settings) as client:
        identity = client.whoami(as_user=client.api_secret is not None)
    if as_json:
        typer.echo(json.dumps(identity, indent=2))
    elif identity["user"]:
        role = "admin" if identity["is_admin"] else "user"
        typer.echo(f"{identity['user']} ({role}) of group {identity['group']} at {settings.baseurl}")
    else:
        typer.echo(f"{identity['kind']} of group {identity['group']} at {settings.baseurl}")


def register(app: typer.Typer) -> None:
    app.command("login")(login)
    app.command("whoami")(whoami)
