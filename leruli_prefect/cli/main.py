"""The root of the `leruli` command."""

from __future__ import annotations

import typer

from leruli_prefect.cli import account, codes, compute_secret, doctor, job_control, jobs, node, server, users

app = typer.Typer(
    name="leruli",
    help="Leruli queue: run container jobs (psi4, xtb, ...) on your group's compute nodes.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)
jobs.register(app)
job_control.register(app)
codes.register(app)
account.register(app)
app.command("doctor")(doctor.doctor)
app.add_typer(users.app, name="user")
app.add_typer(compute_secret.app, name="compute-secret")
app.add_typer(server.app, name="server")
app.add_typer(node.app, name="node")
