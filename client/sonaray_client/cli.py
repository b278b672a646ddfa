"""The `sonaray` command line. Server-side command groups (models, k8s, ...) plug in
through the `sonaray.cli` entry-point group when the server package is installed."""

from __future__ import annotations

import asyncio
import base64
import functools
import json
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import asynccontextmanager, contextmanager
from dataclasses import dataclass
from importlib.metadata import entry_points
from pathlib import Path
from typing import Annotated, Any, TypeVar

import httpx
import typer
from pydantic import ValidationError
from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from sonaray_client.async_client import AsyncSonaray
from sonaray_client.batch import collect_audio, transcribe_files
from sonaray_client.client import Sonaray
from sonaray_client.core import Engine
from sonaray_client.errors import SonarayError, describe_error
from sonaray_client.subtitles import OutputFormat
from sonaray_client.types import TranscriptionOptions

app = typer.Typer(help="Sonaray: talk to an audio inference cluster.", no_args_is_help=True)
models_app = typer.Typer(
    help="Without a subcommand: list the models the cluster serves.",
    invoke_without_command=True,
)
app.add_typer(models_app, name="models")
console = Console()
err_console = Console(stderr=True, soft_wrap=True)
F = TypeVar("F", bound=Callable[..., Any])


@dataclass
class CliState:
    """Connection settings from the global options; tests inject ``transport``."""

    base_url: str | None = None
    api_key: str | None = None
    timeout: float | None = None
    transport: httpx.MockTransport | None = None

    @contextmanager
    def client(self) -> Iterator[Sonaray]:
        with httpx.Client(transport=self.transport) as http:
            yield Sonaray(**self._settings(), http_client=http)

    @asynccontextmanager
    async def async_client(self) -> AsyncIterator[AsyncSonaray]:
        async with httpx.AsyncClient(transport=self.transport) as http:
            yield AsyncSonaray(**self._settings(), http_client=http)

    def _settings(self) -> dict[str, Any]:
        return {"base_url": self.base_url, "api_key": self.api_key, "timeout": self.timeout}


def reports_errors(command: F) -> F:
    """Turn an SDK, option or file error into one red line and exit status 1."""

    @functools.wraps(command)
    def run(*args: Any, **kwargs: Any) -> Any:
        try:
            return command(*args, **kwargs)
        except (SonarayError, ValidationError, ValueError, OSError) as exc:
            err_console.print(f"[red]error:[/red] {escape(describe_error(exc))}")
            raise typer.Exit(1) from exc

    return run  # type: ignore[return-value]


@app.callback()
def global_options(
    ctx: typer.Context,
    base_url: Annotated[
        str | None, typer.Option(envvar="SONARAY_BASE_URL", help="Server URL.")
    ] = None,
    api_key: Annotated[
        str | None, typer.Option(envvar="SONARAY_API_KEY", help="Bearer API key.")
    ] = None,
    timeout: Annotated[float, typer.Option(help="Seconds per request.")] = 120.0,
) -> None:
    state = ctx.obj if isinstance(ctx.obj, CliState) else CliState()
    state.base_url, state.api_key, state.timeout = base_url, api_key, timeout
    ctx.obj = state


ModelOption = Annotated[str | None, typer.Option(help="Model id (server default when omitted).")]
AudioPath = Annotated[Path, typer.Argument(exists=True, dir_okay=False, help="Audio file.")]


@app.command()
@reports_errors
def transcribe(
    ctx: typer.Context,
    paths: Annotated[list[Path], typer.Argument(exists=True, help="Audio files or folders.")],
    fmt: Annotated[OutputFormat, typer.Option("--format", "-f", help="Output format.")] = "txt",
    concurrency: Annotated[int, typer.Option(min=1, help="Requests in flight.")] = 4,
    model: ModelOption = None,
    language: Annotated[str | None, typer.Option(help="ISO-639-1 code.")] = None,
    engine: Annotated[Engine, typer.Option(help="seq2seq (Whisper) or ctc.")] = "seq2seq",
    translate: Annotated[bool, typer.Option(help="Translate to English.")] = False,
) -> None:
    """Transcribe files (or every audio file in folders), writing results beside them."""
    options: dict[str, Any] = {"task": "translate" if translate else "transcribe"}
    if language:
        options["language"] = language
    TranscriptionOptions(**options)  # a bad option fails once here, not once per file
    files = collect_audio(paths)
    if not files:
        raise ValueError("no audio files found")

    async def run_all():
        columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn())
        with Progress(*columns, TimeElapsedColumn(), console=err_console) as progress:
            async with ctx.obj.async_client() as client:
                return await transcribe_files(
                    client,
                    files,
                    fmt=fmt,
                    concurrency=concurrency,
                    progress=progress,
                    model=model,
                    engine=engine,
                    **options,
                )

    result = asyncio.run(run_all())
    for path in result.written:
        console.print(str(path), markup=False, highlight=False)
    for path, reason in result.failed:
        err_console.print(f"[red]failed:[/red] {escape(str(path))}: {escape(reason)}")
    if result.failed:
        raise typer.Exit(1)


@app.command()
@reports_errors
def speak(
    ctx: typer.Context,
    text: Annotated[str, typer.Argument(help="Text to speak.")],
    output: Annotated[Path, typer.Option("--output", "-o", help="Audio file to write.")],
    model: ModelOption = None,
    voice: Annotated[str | None, typer.Option(help="Voice name or preset.")] = None,
    speed: Annotated[float | None, typer.Option(help="0.25 to 4.")] = None,
    reference: Annotated[
        Path | None, typer.Option(help="Audio clip of a voice to clone.", exists=True)
    ] = None,
) -> None:
    """Synthesize speech into a file (format from its suffix: wav, flac, mp3, ogg, pcm)."""
    options = {k: v for k, v in {"voice": voice, "speed": speed}.items() if v is not None}
    if reference is not None:
        options["reference"] = reference
    with ctx.obj.client() as client:
        path = client.speak_to_file(text, output, model=model, **options)
    console.print(str(path), markup=False, highlight=False)


@app.command()
@reports_errors
def classify(
    ctx: typer.Context,
    path: AudioPath,
    model: ModelOption = None,
    top_k: Annotated[int, typer.Option(help="Labels to show.")] = 5,
) -> None:
    """Label an audio clip."""
    with ctx.obj.client() as client:
        result = client.classify(path, model=model, top_k=top_k)
    table = Table("label", "score")
    for label in result.labels:
        table.add_row(escape(label.label), f"{label.score:.3f}")
    console.print(table)


@app.command("detect-speech")
@reports_errors
def detect_speech(ctx: typer.Context, path: AudioPath, model: ModelOption = None) -> None:
    """List the speech segments in an audio file (voice activity detection)."""
    with ctx.obj.client() as client:
        result = client.detect_speech(path, model=model)
    table = Table("start (s)", "end (s)", "label")
    for seg in result.segments:
        table.add_row(f"{seg.start:.2f}", f"{seg.end:.2f}", escape(seg.label))
    console.print(table)


@app.command()
@reports_errors
def pipeline(
    ctx: typer.Context,
    name: Annotated[str, typer.Argument(help="Pipeline name, e.g. speech-to-speech.")],
    path: AudioPath,
    options: Annotated[
        str | None, typer.Option(help="Per-step options JSON, e.g. '{\"seq2seq\": {...}}'.")
    ] = None,
    output: Annotated[
        Path | None, typer.Option("--output", "-o", help="Where to write audio output.")
    ] = None,
) -> None:
    """Run a configured pipeline and print its JSON result (audio goes to --output)."""
    step_options = json.loads(options) if options else None
    with ctx.obj.client() as client:
        result = client.run_pipeline(name, path, step_options)
    if result.audio_base64 and output is not None:
        output.write_bytes(base64.b64decode(result.audio_base64))
        err_console.print(f"audio written to {escape(str(output))}")
    elif result.audio_base64:
        err_console.print("the result holds audio: pass --output FILE to save it")
    shown = result.model_dump(mode="json", exclude_none=True, exclude={"audio_base64"})
    console.print_json(data=shown)


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


@app.command()
@reports_errors
def health(ctx: typer.Context) -> None:
    """Check that the server answers."""
    with ctx.obj.client() as client:
        answer = client.health()
        status = answer.get("status", "unknown")
        console.print(f"{escape(client.base_url)}: {escape(str(status))}")
    if status != "ok":
        raise typer.Exit(1)


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
