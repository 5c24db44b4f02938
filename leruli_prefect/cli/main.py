"""The root of the `leruli` command."""

from __future__ import annotations

import typer

from leruli_prefect.cli import jobs, node, server

app = typer.Typer(
    name="leruli",
    help="Leruli queue: run container jobs (psi4, xtb, ...) on your group's compute nodes.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)
jobs.register(app)
app.add_typer(server.app, name="server")
app.add_typer(node.app, name="node")
