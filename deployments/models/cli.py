"""`sonaray models ...`: build and list the offline model store."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.progress import BarColumn, Progress, SpinnerColumn, TextColumn, TimeElapsedColumn
from rich.table import Table

from deployments.models import store
from deployments.models.catalog import CATALOG, REAL_MODELS, TINY_MODELS

app = typer.Typer(help="Build and list the offline model store.", no_args_is_help=True)
console = Console(stderr=True)

DirOption = Annotated[
    Path | None, typer.Option("--dir", help="Store directory (default $SONARAY_MODEL_STORE).")
]


@app.command("build")
def build_command(
    only: Annotated[
        list[str] | None, typer.Option("--only", help="Build just this model (repeatable).")
    ] = None,
    subset: Annotated[
        str, typer.Option("--set", help="all | real | tiny", case_sensitive=False)
    ] = "all",
    directory: DirOption = None,
    force: Annotated[bool, typer.Option(help="Rebuild even when up to date.")] = False,
) -> None:
    """Build model directories; models already built are skipped."""
    sets = {"all": list(CATALOG), "real": REAL_MODELS, "tiny": TINY_MODELS}
    if subset not in sets:
        raise typer.BadParameter(f"--set must be one of {', '.join(sets)}")
    names = only or sets[subset]
    unknown = [n for n in names if n not in CATALOG]
    if unknown:
        raise typer.BadParameter(f"unknown model(s) {unknown}; known: {', '.join(CATALOG)}")
    root = store.store_root(directory)
    started = time.perf_counter()
    with Progress(
        SpinnerColumn(),
        TextColumn("{task.description}"),
        BarColumn(),
        TextColumn("{task.completed}/{task.total}"),
        TimeElapsedColumn(),
        console=console,
    ) as progress:
        bar = progress.add_task("model store", total=len(names))

        def report(name: str, state: str) -> None:
            if state == "building":
                progress.update(bar, description=f"building {name}")
            else:
                progress.console.print(f"  {name:<24} {state}")
                progress.advance(bar)

        try:
            store.build(names, root, force=force, on_progress=report)
        except store.BuildError as exc:
            progress.stop()
            console.print(f"[red]error:[/red] {exc}")
            raise typer.Exit(1) from exc
    seconds = time.perf_counter() - started
    console.print(f"model store ready in {root} ({len(names)} models, {seconds:.1f}s)")


@app.command("list")
def list_command(directory: DirOption = None) -> None:
    """List every store model, its task, whether it is built, and a trained one's accuracy."""
    root = store.store_root(directory)
    built_models = store.manifest(root)
    table = Table("name", "task", "engine", "kind", "built", "accuracy", "description")
    for name, spec in CATALOG.items():
        built = "yes" if store.is_built(name, root) else "no"
        kind = "real" if spec.real else "tiny"
        metrics = built_models.get(name, {}).get("metrics", {}) if built == "yes" else {}
        accuracy = metrics.get("held_out_accuracy")
        shown = f"{accuracy:.1%} held-out" if accuracy is not None else ""
        table.add_row(name, spec.task, spec.engine, kind, built, shown, spec.description)
    Console().print(table)
