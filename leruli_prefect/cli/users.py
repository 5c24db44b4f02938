"""`leruli user ...`: the group's users (listing for members; adding, disabling and roles for admins)."""

from __future__ import annotations

import json
from typing import Annotated, Literal

import typer

from leruli_prefect.cli.credentials import gateway_client
from leruli_prefect.cli.failures import reports_errors
from leruli_prefect.settings import load_settings

app = typer.Typer(
    help="Manage your group's users (adding, disabling and roles need an admin).", no_args_is_help=True
)


@app.command("add")
@reports_errors
def add(
    name: Annotated[str, typer.Argument(help="A handle to revoke the secret later, e.g. alice-laptop")],
    admin: Annotated[bool, typer.Option("--admin", help="Make the user an admin")] = False,
) -> None:
    """Add a user; prints their API secret once (it cannot be read again)."""
    with gateway_client(load_settings()) as client:
        created = client.add_user(name, admin=admin)
    role = "admin" if created["is_admin"] else "user"
    typer.echo(f"Added {role} {created['name']}. Their API secret (shown once, store it now):")
    typer.echo(created["api_secret"])


@app.command("list")
@reports_errors
def list_users(as_json: Annotated[bool, typer.Option("--json", help="Print JSON")] = False) -> None:
    """List the group's users."""
    with gateway_client(load_settings()) as client:
        users = client.users()
    if as_json:
        typer.echo(json.dumps(users, indent=2))
        return
    for user in users:
        flags = ["admin" if user["is_admin"] else "user"] + (["disabled"] if user["disabled"] else [])
        typer.echo(f"{user['name']:<24} {', '.join(flags)}")


@app.command("disable")
@reports_errors
def disable(name: Annotated[str, typer.Argument(help="The user to disable")]) -> None:
    """Disable a user at once; their jobs and data are kept."""
    with gateway_client(load_settings()) as client:
        client.disable_user(name)
    typer.echo(f"Disabled {name}: their API secret is refused from now on; their jobs and data are kept.")


@app.command("role")
@reports_errors
def role(
    name: Annotated[str, typer.Argument(help="The user")],
    new_role: Annotated[Literal["admin", "regular"], typer.Argument(metavar="ROLE", help="admin or regular")],
) -> None:
    """Promote a user to admin or make an admin a regular user (never the last admin)."""
    with gateway_client(load_settings()) as client:
        client.set_role(name, admin=new_role == "admin")
    typer.echo(f"{name} is now {'an admin' if new_role == 'admin' else 'a regular user'}.")
