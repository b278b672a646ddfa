"""`sonaray listen`: a recording played into a live realtime session, each turn printed
as the server transcribes it (what a live caption or phone bot would see)."""

from __future__ import annotations

import asyncio
import time
from typing import Annotated

import typer
from rich.markup import escape

from sonaray_client.cli.app import (
    AudioPath,
    ModelOption,
    app,
    err_console,
    example,
    given,
    reports_errors,
)
from sonaray_client.pcm import read_pcm16, to_bytes
from sonaray_client.realtime import AsyncRealtimeSession
from sonaray_client.realtime_events import (
    ErrorEvent,
    SpeechStarted,
    SpeechStopped,
    TranscriptionCompleted,
    TranscriptionFailed,
)

CHUNK_S = 0.1  # what a microphone sends per append
# After the file, silence long enough for the server's turn detection to end the last turn.
TAIL_SILENCE_S = 1.5
# Once everything is sent and every turn is done, the session ends after this long quiet.
IDLE_S = 2.0
SESSION_RATES = (16000, 24000)


@app.command(
    epilog=example(
        "sonaray listen call.wav",
        "sonaray listen meeting.flac --speed 4 --language en",
        "sonaray listen talk.wav --speed 0 --silence-ms 800",
    )
)
@reports_errors
def listen(
    ctx: typer.Context,
    file: AudioPath,
    speed: Annotated[
        float, typer.Option(min=0, help="Times real time to send at; 0 sends at once.")
    ] = 1.0,
    model: ModelOption = None,
    language: Annotated[str | None, typer.Option(help="ISO-639-1 code of the speech.")] = None,
    silence_ms: Annotated[
        int | None, typer.Option(min=0, help="Silence that ends a turn (server default 500).")
    ] = None,
    threshold: Annotated[
        float | None, typer.Option(min=0, max=1, help="Speech probability of a turn.")
    ] = None,
) -> None:
    """Stream FILE through a realtime session at real-time pace; print each turn live.

    Every turn the server's voice activity detection finds is printed when its text
    arrives, as `[start - end] text` (times into the file).
    """
    samples, rate = read_pcm16(file)
    turns = given(silence_duration_ms=silence_ms, threshold=threshold)

    async def run() -> None:
        async with ctx.obj.async_client() as client:
            session = client.realtime(
                model=model,
                sampling_rate=rate if rate in SESSION_RATES else 24000,
                language=language,
                turn_detection=turns or "server_vad",
            )
            async with session:
                feeding = asyncio.create_task(feed(session, samples, rate, speed))
                try:
                    await print_turns(session, feeding)
                finally:
                    feeding.cancel()

    asyncio.run(run())


async def feed(session: AsyncRealtimeSession, samples, rate: int, speed: float) -> None:
    """Append the file in microphone-sized chunks, paced at ``speed`` times real time."""
    step = int(CHUNK_S * rate)
    started = time.monotonic()
    for index, start in enumerate(range(0, len(samples), step)):
        await session.append(to_bytes(samples[start : start + step]), rate)
        if speed:
            ahead = started + (index + 1) * CHUNK_S / speed - time.monotonic()
            await asyncio.sleep(max(0.0, ahead))
    await session.append(bytes(2 * int(TAIL_SILENCE_S * rate)), rate)


async def print_turns(session: AsyncRealtimeSession, feeding: asyncio.Task) -> None:
    """Print each turn's text as it completes, until the file is sent and all is quiet."""
    starts: dict[str, int] = {}
    ends: dict[str, int] = {}
    quiet_since = time.monotonic()
    while True:
        if feeding.done():
            feeding.result()  # a failed send ends the session with its error
            if not starts and time.monotonic() - quiet_since > IDLE_S:
                return
        try:
            event = await session.recv(timeout=0.25)
        except TimeoutError:
            continue
        quiet_since = time.monotonic()
        if isinstance(event, SpeechStarted):
            starts[event.item_id] = event.audio_start_ms
        elif isinstance(event, SpeechStopped):
            ends[event.item_id] = event.audio_end_ms
        elif isinstance(event, TranscriptionCompleted | TranscriptionFailed):
            start = starts.pop(event.item_id, None)
            when = f"[{clock(start)} - {clock(ends.pop(event.item_id, None))}]"
            if isinstance(event, TranscriptionFailed):
                message = event.error.get("message", "failed")
                err_console.print(f"{when} [red]not transcribed:[/red] {escape(str(message))}")
            elif event.transcript:
                typer.echo(f"{when} {event.transcript}")
        elif isinstance(event, ErrorEvent):
            err_console.print(f"[red]error:[/red] {escape(event.message)}")


def clock(ms: int | None) -> str:
    """``mm:ss.s`` of a time into the file; ``--:--.-`` when the server did not say."""
    if ms is None:
        return "--:--.-"
    minutes, seconds = divmod(ms / 1000, 60)
    return f"{int(minutes):02d}:{seconds:04.1f}"
