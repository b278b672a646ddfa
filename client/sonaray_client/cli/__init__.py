"""The `sonaray` command line. Server-side command groups (models, k8s, ...) plug in
through the `sonaray.cli` entry-point group when the server package is installed."""

from __future__ import annotations

from importlib.metadata import entry_points

# Importing a command module registers its commands on ``app``.
from sonaray_client.cli import analysis, cluster, listen, synthesis, transcribe  # noqa: F401
from sonaray_client.cli.app import CliState, ExitCode, app, err_console, models_app

__all__ = ["CliState", "ExitCode", "app", "main"]


def _add_plugins() -> None:
    groups = {"models": models_app}
    for ep in entry_points(group="sonaray.cli"):
        try:
            plugin = ep.load()
        except Exception as exc:  # a broken server install must not take the SDK's CLI down
            err_console.print(f"[yellow]warning:[/yellow] plugin {ep.name!r} failed: {exc}")
            continue
        # A plugin named like a built-in group adds its commands to it (`models build`).
        if ep.name in groups:
            groups[ep.name].add_typer(plugin)
        else:
            app.add_typer(plugin, name=ep.name)


def main() -> None:
    _add_plugins()
    app()
