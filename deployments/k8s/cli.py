"""`sonaray k8s ...`: render the KubeRay RayService manifests from a Serve config."""

from __future__ import annotations

import difflib
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from deployments.errors import ConfigError
from deployments.k8s.render import manifest_path, render_text

app = typer.Typer(help="Kubernetes (KubeRay) manifests.", no_args_is_help=True)
console = Console(stderr=True)


@app.callback()
def k8s() -> None:
    """Kubernetes (KubeRay) manifests."""


@app.command("render")
def render_command(
    config: Annotated[Path, typer.Option("--config", help="Ray Serve config to serve.")] = Path(
        "serve_config.yaml"
    ),
    gpu: Annotated[
        bool | None,
        typer.Option("--gpu/--cpu", help="Render only the GPU or the CPU variant (default both)."),
    ] = None,
    out_dir: Annotated[Path, typer.Option("--out-dir", help="Where the manifests live.")] = Path(
        "k8s"
    ),
    stdout: Annotated[bool, typer.Option("--stdout", help="Print instead of writing.")] = False,
    check: Annotated[
        bool, typer.Option("--check", help="Exit 1 when the files in --out-dir differ.")
    ] = False,
) -> None:
    """Write k8s/rayservice-cpu.yaml and k8s/rayservice-gpu.yaml from the Serve config."""
    variants = [False, True] if gpu is None else [gpu]
    stale = []
    for variant in variants:
        try:
            text = render_text(config, gpu=variant)
        except (ConfigError, OSError) as exc:
            console.print(f"[red]error:[/red] {exc}")
            raise typer.Exit(2) from exc
        path = manifest_path(out_dir, gpu=variant)
        if stdout:
            typer.echo(text, nl=False)
        elif check:
            current = path.read_text() if path.is_file() else ""
            if current != text:
                stale.append(path)
                diff = difflib.unified_diff(
                    current.splitlines(keepends=True), text.splitlines(keepends=True),
                    str(path), f"render of {config}",
                )  # fmt: skip
                typer.echo("".join(diff), nl=False)
        else:
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(text)
            console.print(f"wrote {path}")
    if stale:
        console.print(
            f"[red]out of date:[/red] {', '.join(map(str, stale))}; run `sonaray k8s render`"
        )
        raise typer.Exit(1)
