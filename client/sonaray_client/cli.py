"""The `sonaray` command line. Server-side command groups (models, k8s, ...) plug in
through the `sonaray.cli` entry-point group when the server package is installed."""

from __future__ import annotations

from importlib.metadata import entry_points

import typer

app = typer.Typer(help="Sonaray: talk to an audio inference cluster.", no_args_is_help=True)


def _add_plugins() -> None:
    for ep in entry_points(group="sonaray.cli"):
        app.add_typer(ep.load(), name=ep.name)


def main() -> None:
    _add_plugins()
    app()
