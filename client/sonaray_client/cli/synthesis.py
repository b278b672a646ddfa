"""`sonaray speak` and `sonaray generate`: text to speech, text (and audio) to music."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from sonaray_client.batch import STDOUT
from sonaray_client.cli.app import (
    FormatOption,
    ModelOption,
    OutputOption,
    app,
    audio_format,
    example,
    given,
    reports_errors,
    text_or_stdin,
    write_audio,
)

# The formats the server can send before the whole audio exists.
STREAMED_FORMATS = ("wav", "pcm", "mp3", "ogg")


@app.command(
    epilog=example(
        'sonaray speak "Hello there." -o hello.flac --voice joe --speed 1.2',
        "cat note.txt | sonaray speak -o - -f mp3 --seed 7 > note.mp3",
        'sonaray speak "Hi. Playing while it speaks." -o - -f pcm | aplay -f S16_LE -r 22050',
    )
)
@reports_errors
def speak(
    ctx: typer.Context,
    output: OutputOption,
    text: Annotated[str | None, typer.Argument(help="Text to speak (default: read stdin).")] = None,
    fmt: FormatOption = None,
    model: ModelOption = None,
    voice: Annotated[str | None, typer.Option(help="Voice name or preset.")] = None,
    speed: Annotated[float | None, typer.Option(help="0.25 to 4.")] = None,
    seed: Annotated[int | None, typer.Option(help="Seed, for a repeatable voice.")] = None,
    reference: Annotated[
        Path | None,
        typer.Option(exists=True, dir_okay=False, help="Audio clip of a voice to clone."),
    ] = None,
) -> None:
    """Synthesize speech into a file (or stdout) in wav, flac, mp3, ogg or pcm.

    To stdout (-o -) the audio streams: each sentence is written as soon as it is
    synthesized (flac, which needs the whole, comes at the end; a cloned voice comes whole).
    """
    options = given(voice=voice, speed=speed, seed=seed, reference=reference)
    words = text_or_stdin(text)
    response_format = audio_format(fmt, output)
    with ctx.obj.client() as client:
        if output == STDOUT and response_format in STREAMED_FORMATS and reference is None:
            out = typer.get_binary_stream("stdout")
            with client.speak(
                words, model=model, response_format=response_format, stream=True, **options
            ) as chunks:
                for chunk in chunks:
                    out.write(chunk)
                    out.flush()
            return
        audio = client.speak(words, model=model, response_format=response_format, **options)
    write_audio(audio, output)


@app.command(
    epilog=example(
        'sonaray generate "lofi beat with soft piano" -o beat.wav --duration 8 --seed 3',
        'sonaray generate "the same, faster" --audio-prompt beat.wav -o more.flac',
    )
)
@reports_errors
def generate(
    ctx: typer.Context,
    output: OutputOption,
    prompt: Annotated[
        str | None, typer.Argument(help="What to play (default: read stdin).")
    ] = None,
    audio_prompt: Annotated[
        Path | None,
        typer.Option(exists=True, dir_okay=False, help="Audio to continue from."),
    ] = None,
    fmt: FormatOption = None,
    model: ModelOption = None,
    duration: Annotated[float | None, typer.Option(help="Seconds to generate.")] = None,
    seed: Annotated[int | None, typer.Option(help="Seed, for repeatable output.")] = None,
    guidance_scale: Annotated[
        float | None, typer.Option(help="How closely to follow the prompt.")
    ] = None,
    temperature: Annotated[float | None, typer.Option(help="Sampling temperature.")] = None,
) -> None:
    """Generate music or sound from a text prompt (and optionally an audio prompt)."""
    options = given(
        duration_s=duration, seed=seed, guidance_scale=guidance_scale, temperature=temperature
    )
    words = text_or_stdin(prompt)
    with ctx.obj.client() as client:
        audio = client.generate_audio(
            words,
            model=model,
            audio_prompt=audio_prompt,
            response_format=audio_format(fmt, output),
            **options,
        )
    write_audio(audio, output)
