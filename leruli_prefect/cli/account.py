"""`leruli login`, `leruli whoami` and `leruli rotate-secret`: the user's own credential."""

from __future__ import annotations

import json
from typing import Annotated

import typer

from leruli_prefect.cli.credentials import gateway_client, require_keyring, store_api_secret
from leruli_prefect.cli.failures import fail, reports_errors
from leruli_prefect.client import GatewayClient
from leruli_prefect.errors import ConfigurationError
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


@reports_errors
def rotate_secret() -> None:
    """Replace your API secret with a new one, kept where the old one was (the keyring, unless
    LERULI_API_SECRET is set). The old one is refused at once, also in the Prefect UI signed in with it."""
    settings = load_settings()
    in_environment = settings.api_secret is not None
    if not in_environment:
        require_keyring()  # checked first: the old secret is gone once the gateway has answered
    with gateway_client(settings) as client:
        rotated = client.rotate_own_secret()
    secret = rotated["api_secret"]
    if in_environment:
        typer.echo(f"New API secret of {rotated['name']} (shown once; the old one is refused from now on):")
        typer.echo(secret)
        typer.echo("LERULI_API_SECRET is set: replace its value with the new secret.", err=True)
        return
    try:
        backend = store_api_secret(settings, secret)
    except ConfigurationError as exc:
        typer.echo(secret)  # never lose the only copy
        raise fail(f"{exc}; the new API secret is printed above (the old one is refused)") from exc
    typer.echo(f"New API secret of {rotated['name']} kept in the keyring ({backend}); the old one is refused")
    typer.echo("from now on. Shown once, to sign in to the Prefect UI with:")
    typer.echo(secret)


def register(app: typer.Typer) -> None:
    app.command("login")(login)
    app.command("whoami")(whoami)
    app.command("rotate-secret")(rotate_secret)
