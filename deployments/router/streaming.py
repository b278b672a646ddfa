"""What the streaming routes do: transcript deltas as chunks finish, speech as sentences do.

Both surfaces (OpenAI and native) call these. The router consumes the task deployments'
results as they come, through the bounded windows of ``graph.streams``; nothing waits for
the whole result, and a client that goes away cancels what is still pending.

Serve passes a replica's streamed output to its HTTP proxy without backpressure, so a
slow reader does not slow synthesis: what it has not read yet waits in the proxy. The
window bounds the work in flight; ``limits.max_text_chars`` bounds what can wait (4096
characters are about 4-5 minutes of speech, ~13 MB of 24 kHz pcm).
"""

from __future__ import annotations

import base64
from collections.abc import AsyncIterator, Callable
from contextlib import aclosing
from typing import Literal

import numpy as np
from fastapi.responses import StreamingResponse
from sonaray_client.types import SpeechOptions, Transcription, TranscriptionOptions, VadOptions

from deployments.audio import DecodedAudio
from deployments.audio_stream import StreamEncoder, check_stream_format, stream_encoder
from deployments.graph.streams import speak_sentences
from deployments.protocol import Target
from deployments.router.service import SonarayService
from deployments.router.sse import chunked_response, sse_response

StreamFormat = Literal["audio", "sse"]


def usage(seconds: float) -> dict:
    """OpenAI's usage of an audio-priced request: seconds of audio."""
    return {"type": "duration", "seconds": round(seconds, 3)}


async def transcript_events(
    parts: AsyncIterator[Transcription], duration: float
) -> AsyncIterator[dict]:
    """``transcript.text.delta`` per chunk with text, then ``transcript.text.done``.

    The deltas join to the done text, which is the text of the same request unstreamed.
    """
    text = ""
    async with aclosing(parts):
        async for part in parts:
            piece = part.text.strip()
            if piece:
                delta = f" {piece}" if text else piece
                text += delta
                yield {"type": "transcript.text.delta", "delta": delta}
    yield {"type": "transcript.text.done", "text": text, "usage": usage(duration)}


async def transcript_stream(
    service: SonarayService,
    audio: DecodedAudio,
    options: TranscriptionOptions,
    target: Target,
    *,
    vad: VadOptions | None = None,
) -> StreamingResponse:
    """The SSE response of a streamed transcription of decoded ``audio``."""
    parts = service.transcribe_stream(audio, options, target, vad=vad)
    return await sse_response(transcript_events(parts, audio.duration))


async def speech_chunks(
    service: SonarayService,
    target: Target,
    options: SpeechOptions,
    encoder_for: Callable[[int], StreamEncoder],
) -> AsyncIterator[tuple[bytes, float]]:
    """Each sentence's encoded bytes as it is spoken, with the seconds of audio they hold.

    Sentences after the first start with the pause the engine puts between sentences, so
    the stream is as long as the same text spoken in one piece.
    """
    service.check_text(options.input)
    encoder: StreamEncoder | None = None
    waves = speak_sentences(service.call, target, options)
    async with aclosing(waves):
        async for wave in waves:
            audio = wave.audio
            if encoder is None:
                encoder = encoder_for(wave.sampling_rate)
            else:
                gap = round(wave.extras.get("sentence_gap_s", 0.0) * wave.sampling_rate)
                audio = np.concatenate([np.zeros(gap, np.float32), audio])
            yield encoder.encode(audio), len(audio) / wave.sampling_rate
    if encoder is not None:
        yield encoder.finish(), 0.0


async def _audio_body(chunks: AsyncIterator[tuple[bytes, float]]) -> AsyncIterator[bytes]:
    async with aclosing(chunks):
        async for data, _ in chunks:
            if data:
                yield data


async def _speech_events(chunks: AsyncIterator[tuple[bytes, float]]) -> AsyncIterator[dict]:
    seconds = 0.0
    async with aclosing(chunks):
        async for data, piece in chunks:
            seconds += piece
            if data:
                yield {"type": "speech.audio.delta", "audio": base64.b64encode(data).decode()}
    yield {"type": "speech.audio.done", "usage": usage(seconds)}


async def speech_stream(
    service: SonarayService,
    target: Target,
    options: SpeechOptions,
    fmt: str,
    stream_format: StreamFormat,
    out_rate: int | None = None,
    headers: dict[str, str] | None = None,
) -> StreamingResponse:
    """Speech streamed sentence by sentence: a chunked ``fmt`` body, or SSE events of it.

    ``out_rate`` resamples (OpenAI's pcm is 24 kHz); ``headers`` go on a chunked body.
    """
    media_type = check_stream_format(fmt)
    chunks = speech_chunks(
        service, target, options, lambda rate: stream_encoder(fmt, rate, out_rate)
    )
    if stream_format == "sse":
        return await sse_response(_speech_events(chunks))
    return await chunked_response(_audio_body(chunks), media_type, headers)
