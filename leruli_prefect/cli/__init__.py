"""The `leruli` command: typer app, one module per command group; the root (`main`) imports the groups."""
