"""`sonaray transcribe`: files, folders or stdin to transcripts and subtitles, whisper-style."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.markup import escape

from sonaray_client.batch import STDIN, PlanError, plan_jobs, run_jobs, transcribe_progress
from sonaray_client.cli.app import (
    ExitCode,
    ModelOption,
    app,
    console,
    err_console,
    example,
    exit_code_for,
    given,
    read_stdin_bytes,
    reports_errors,
)
from sonaray_client.core import Engine
from sonaray_client.errors import describe_error
from sonaray_client.streaming import TranscriptDelta
from sonaray_client.subtitles import CueLayout
from sonaray_client.transcript_formats import FormatChoice, expand
from sonaray_client.types import TranscriptionOptions


@app.command(
    epilog=example(
        "sonaray transcribe talks/ -f srt --output-dir subs/ --max-line-width 42 "
        "--max-line-count 2",
        "cat a.wav | sonaray transcribe - -f json",
        "sonaray transcribe clip.mp3 -f all --word-timestamps --language en --overwrite",
        "sonaray transcribe --stream lecture.flac",
    )
)
@reports_errors
def transcribe(
    ctx: typer.Context,
    inputs: Annotated[
        list[str], typer.Argument(help="Audio files, folders (searched for audio), or - for stdin.")
    ],
    fmt: Annotated[FormatChoice, typer.Option("--format", "-f", help="Output format.")] = "txt",
    output_dir: Annotated[
        Path | None,
        typer.Option("--output-dir", "-d", file_okay=False, help="Folder for the outputs."),
    ] = None,
    output: Annotated[
        str | None, typer.Option("--output", "-o", help="- for stdout, or a file (one input).")
    ] = None,
    overwrite: Annotated[
        bool, typer.Option("--overwrite", help="Redo inputs whose outputs exist.")
    ] = False,
    concurrency: Annotated[int, typer.Option(min=1, help="Requests in flight.")] = 4,
    model: ModelOption = None,
    engine: Annotated[Engine, typer.Option(help="seq2seq (Whisper) or ctc.")] = "seq2seq",
    language: Annotated[
        str | None, typer.Option(help="ISO-639-1 code (detected when omitted).")
    ] = None,
    translate: Annotated[bool, typer.Option("--translate", help="Translate to English.")] = False,
    prompt: Annotated[str | None, typer.Option(help="Text that biases spelling and style.")] = None,
    temperature: Annotated[float | None, typer.Option(help="0 decodes greedily.")] = None,
    beam_size: Annotated[int | None, typer.Option(help="Beams for beam search.")] = None,
    word_timestamps: Annotated[
        bool, typer.Option("--word-timestamps", help="Time every word.")
    ] = False,
    max_line_width: Annotated[
        int | None, typer.Option(min=1, help="Subtitle line length in characters.")
    ] = None,
    max_line_count: Annotated[int | None, typer.Option(min=1, help="Lines per subtitle.")] = None,
    max_words_per_line: Annotated[
        int | None, typer.Option(min=1, help="Words per subtitle line.")
    ] = None,
    stream: Annotated[
        bool,
        typer.Option("--stream", help="One input: print its text to stdout as it arrives."),
    ] = False,
) -> None:
    """Transcribe files, writing NAME.txt|srt|vtt|tsv|json beside each (or in --output-dir).

    Outputs that exist already are skipped (and listed) unless --overwrite. Subtitle line
    limits regroup the words, so they turn on --word-timestamps. With --stream, the text of
    each chunk of a long recording is printed as soon as it is done.
    """
    layout = CueLayout(max_line_width, max_line_count, max_words_per_line)
    options = given(
        task="translate" if translate else None,
        language=language,
        prompt=prompt,
        temperature=temperature,
        num_beams=beam_size,
        timestamps="word" if word_timestamps or layout.regroups else None,
    )
    TranscriptionOptions(**options)  # a bad option fails here, before anything is read
    if stream:
        print_stream(ctx, inputs, model=model, engine=engine, **options)
        return
    plan = plan_jobs(
        inputs,
        expand(fmt),
        output_dir=output_dir,
        output=output,
        overwrite=overwrite,
        read_stdin=read_stdin_bytes,
    )
    if plan.skipped:
        names = ", ".join(plan.skipped[:5]) + (" ..." if len(plan.skipped) > 5 else "")
        err_console.print(
            f"skipped {len(plan.skipped)} with outputs already there "
            f"(--overwrite redoes them): {escape(names)}"
        )

    async def run_all():
        with transcribe_progress(err_console) as progress:
            async with ctx.obj.async_client() as client:
                return await run_jobs(
                    client,
                    plan.jobs,
                    concurrency=concurrency,
                    progress=progress,
                    layout=layout,
                    model=model,
                    engine=engine,
                    **options,
                )

    result = asyncio.run(run_all()) if plan.jobs else None
    if result is None:
        return
    for text in result.stdout:
        typer.echo(text, nl=False)
    if not result.stdout:
        for path in result.written:
            console.print(str(path), markup=False, highlight=False)
    for name, exc in result.failed:
        err_console.print(f"[red]failed:[/red] {escape(name)}: {escape(describe_error(exc))}")
    if result.failed:
        codes = {exit_code_for(exc) for _, exc in result.failed}
        refused = ExitCode.SERVER_UNAVAILABLE in codes
        raise typer.Exit(ExitCode.SERVER_UNAVAILABLE if refused else ExitCode.INPUTS_FAILED)


def print_stream(ctx: typer.Context, inputs: list[str], **kwargs: Any) -> None:
    """``transcribe --stream``: one input's text on stdout, delta by delta."""
    if len(inputs) != 1 or Path(inputs[0]).is_dir():
        raise PlanError("--stream takes one file (or - for stdin)")
    audio = read_stdin_bytes() if inputs[0] == STDIN else Path(inputs[0])
    with ctx.obj.client() as client, client.transcribe(audio, stream=True, **kwargs) as events:
        for event in events:
            if isinstance(event, TranscriptDelta):
                typer.echo(event.delta, nl=False)  # click flushes each echo
    typer.echo()
