"""`sonaray models` and `sonaray health`: what the cluster serves, and whether it answers."""

from __future__ import annotations

import typer
from rich.markup import escape
from rich.table import Table

from sonaray_client.cli.app import (
    ExitCode,
    app,
    console,
    example,
    models_app,
    reports_errors,
)


@models_app.callback()
@reports_errors
def models(ctx: typer.Context) -> None:
    if ctx.invoked_subcommand is not None:
        return
    with ctx.obj.client() as client:
        listing = client.models()
    table = Table("id", "task", "default", "sampling rate")
    for card in listing.data:
        rate = str(card.sampling_rate) if card.sampling_rate else "-"
        table.add_row(escape(card.id), card.task, "yes" if card.default else "", rate)
    console.print(table)


@app.command(epilog=example("sonaray --base-url http://my-cluster:8000 health"))
@reports_errors
def health(ctx: typer.Context) -> None:
    """Check that the server answers."""
    with ctx.obj.client() as client:
        answer = client.health()
        status = answer.get("status", "unknown")
        console.print(f"{escape(client.base_url)}: {escape(str(status))}")
    if status != "ok":
        raise typer.Exit(ExitCode.SERVER_UNAVAILABLE)
