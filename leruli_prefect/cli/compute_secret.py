"""`leruli compute-secret rotate`: set or rotate the group's compute secret (admins)."""

from __future__ import annotations

import typer

from leruli_prefect.cli.credentials import gateway_client
from leruli_prefect.cli.failures import reports_errors
from leruli_prefect.settings import load_settings

app = typer.Typer(help="The secret compute nodes attach with (admins only).", no_args_is_help=True)


@app.command("rotate")
@reports_errors
def rotate() -> None:
    """Make a new compute secret; the old one (and every node using it) is cut off at once."""
    with gateway_client(load_settings()) as client:
        secret = client.rotate_compute_secret()
    typer.echo("New compute secret (shown once; put it in the node.toml of every node you keep):")
    typer.echo(secret)
