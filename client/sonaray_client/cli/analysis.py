"""`sonaray classify`, `detect-speech` and `pipeline`: audio in, labels, segments or JSON out."""

from __future__ import annotations

import base64
from pathlib import Path
from typing import Annotated

import typer
from rich.markup import escape
from rich.table import Table

from sonaray_client.batch import STDIN
from sonaray_client.cli.app import (
    AudioPath,
    ModelOption,
    app,
    console,
    err_console,
    example,
    read_stdin_bytes,
    reports_errors,
)
from sonaray_client.step_options import parse_step_options


@app.command(
    epilog=example(
        "sonaray classify dog.wav --top-k 3",
    )
)
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


@app.command("detect-speech", epilog=example("sonaray detect-speech meeting.wav"))
@reports_errors
def detect_speech(ctx: typer.Context, path: AudioPath, model: ModelOption = None) -> None:
    """List the speech segments in an audio file (voice activity detection)."""
    with ctx.obj.client() as client:
        result = client.detect_speech(path, model=model)
    table = Table("start (s)", "end (s)", "label")
    for seg in result.segments:
        table.add_row(f"{seg.start:.2f}", f"{seg.end:.2f}", escape(seg.label))
    console.print(table)


@app.command(
    epilog=example(
        "sonaray pipeline speech-to-speech in.wav -o out.wav -s tts.voice=joe "
        "-s seq2seq.language=en",
        'sonaray pipeline transcribe-long talk.flac --options \'{"frames": {"threshold": 0.6}}\'',
    )
)
@reports_errors
def pipeline(
    ctx: typer.Context,
    name: Annotated[str, typer.Argument(help="Pipeline name, e.g. speech-to-speech.")],
    path: Annotated[str, typer.Argument(help="Audio file, or - for stdin.")],
    step: Annotated[
        list[str] | None,
        typer.Option("--set", "-s", help="One step option, STEP.FIELD=VALUE (repeatable)."),
    ] = None,
    options: Annotated[
        str | None, typer.Option(help="Per-step options JSON, e.g. '{\"seq2seq\": {...}}'.")
    ] = None,
    output: Annotated[
        Path | None, typer.Option("--output", "-o", help="Where to write audio output.")
    ] = None,
) -> None:
    """Run a configured pipeline and print its JSON result (audio goes to --output)."""
    step_options = parse_step_options(options, step or [])
    audio = read_stdin_bytes() if path == STDIN else Path(path)
    with ctx.obj.client() as client:
        result = client.run_pipeline(name, audio, step_options or None)
    if result.audio_base64 and output is not None:
        output.write_bytes(base64.b64decode(result.audio_base64))
        err_console.print(f"audio written to {escape(str(output))}")
    elif result.audio_base64:
        err_console.print("the result holds audio: pass --output FILE to save it")
    shown = result.model_dump(mode="json", exclude_none=True, exclude={"audio_base64"})
    console.print_json(data=shown)
