"""The SDK's streams against the live cluster: transcript deltas, speech chunks, and
realtime sessions (sync and async twins)."""

from __future__ import annotations

import asyncio
import io
import time

import numpy as np
import pytest
import soundfile as sf
from sonaray_client import AsyncSonaray, BadRequestError, Sonaray
from sonaray_client.realtime_events import (
    ResponseAudioDelta,
    ResponseDone,
    ResponseTranscriptDone,
    SpeechStarted,
    TranscriptionCompleted,
)
from sonaray_client.streaming import TranscriptDelta, TranscriptDone
from speech import SENTENCES, heard_as, long_clip, synthesize, words

pytestmark = pytest.mark.serve
FIVE_SENTENCES = " ".join(SENTENCES[:5])


def pause(seconds: float, rate: int = 16000) -> np.ndarray:
    return np.zeros(int(seconds * rate), np.float32)


def spoken_turns(*sentences: str) -> np.ndarray:
    """The sentences at 16 kHz with pauses long enough to end each turn."""
    parts = [pause(0.5)]
    for sentence in sentences:
        parts += [synthesize(sentence), pause(1.2)]
    return np.concatenate(parts)


def test_transcribe_stream_yields_deltas_that_join_to_the_whole_text(serve_url):
    audio, _ = long_clip(60.0)
    with Sonaray(base_url=serve_url) as sonaray:
        whole = sonaray.transcribe((audio, 16000))
        with sonaray.transcribe((audio, 16000), stream=True) as events:
            received = list(events)
    deltas = [e for e in received if isinstance(e, TranscriptDelta)]
    done = received[-1]
    assert isinstance(done, TranscriptDone) and len(deltas) > 1, "long audio comes in chunks"
    assert "".join(d.delta for d in deltas) == done.text
    assert words(done.text) == words(whole.text)
    assert done.usage["seconds"] == pytest.approx(60.0, abs=0.1)


def test_async_transcribe_stream_and_errors_before_the_stream(serve_url):
    async def run():
        async with AsyncSonaray(base_url=serve_url) as sonaray:
            stream = await sonaray.transcribe((synthesize(SENTENCES[1]), 16000), stream=True)
            events = [event async for event in stream]
            with pytest.raises(BadRequestError):
                await sonaray.transcribe(b"not audio at all", stream=True)
            return events

    events = asyncio.run(run())
    assert words(events[-1].text) == words(SENTENCES[1])
    assert [type(e) for e in events] == [TranscriptDelta, TranscriptDone]


def test_speak_stream_gives_chunks_that_make_the_whole_speech(serve_url):
    with Sonaray(base_url=serve_url) as sonaray:
        whole = sonaray.speak(FIVE_SENTENCES, response_format="pcm")
        with sonaray.speak(FIVE_SENTENCES, response_format="pcm", stream=True) as stream:
            chunks = list(stream)
        assert stream.sampling_rate == whole.sampling_rate == 22050
        heard = sonaray.transcribe((np.frombuffer(b"".join(chunks), "<i2"), 22050)).text
    assert len(chunks) >= 5, "one chunk per sentence at least"
    streamed = np.frombuffer(b"".join(chunks), "<i2").astype(np.float32)
    assert len(streamed) == pytest.approx(len(whole) // 2, rel=0.02)
    assert heard_as(heard, FIVE_SENTENCES)


def test_async_speak_stream_as_wav(serve_url):
    async def run() -> bytes:
        async with AsyncSonaray(base_url=serve_url) as sonaray:
            stream = await sonaray.speak(" ".join(SENTENCES[:2]), stream=True)
            async with stream:
                return b"".join([chunk async for chunk in stream])

    data = asyncio.run(run())
    audio, rate = sf.read(io.BytesIO(data))
    assert rate == 22050 and len(audio) / rate > 2.0


def test_realtime_session_transcribes_each_turn(serve_url):
    audio = spoken_turns(SENTENCES[0], SENTENCES[3])
    with (
        Sonaray(base_url=serve_url) as sonaray,
        sonaray.realtime(language="en", turn_detection={"silence_duration_ms": 500}) as session,
    ):
        assert session.session["audio"]["input"]["format"]["rate"] == 24000
        # 16 kHz float chunks, resampled to the session's 24 kHz as they go
        for start in range(0, len(audio), 1600):
            session.append(audio[start : start + 1600], sampling_rate=16000)
        completed, started = [], []
        deadline = time.monotonic() + 60
        while len(completed) < 2 and time.monotonic() < deadline:
            event = session.recv(timeout=60)
            started += [event] if isinstance(event, SpeechStarted) else []
            completed += [event] if isinstance(event, TranscriptionCompleted) else []
    assert [words(c.transcript) for c in completed] == [words(SENTENCES[0]), words(SENTENCES[3])]
    assert [s.item_id for s in started] == [c.item_id for c in completed]
    assert 200 <= started[0].audio_start_ms <= 600  # 0.5 s in, less the prefix padding


def test_async_realtime_conversation_speaks_the_reply(serve_url):
    audio = spoken_turns(SENTENCES[5])

    async def run() -> list:
        events = []
        async with (
            AsyncSonaray(base_url=serve_url) as sonaray,
            sonaray.realtime("conversation", sampling_rate=16000) as session,
        ):
            await session.append(pcm16_bytes(audio))
            async for event in session:
                events.append(event)
                if isinstance(event, ResponseDone):
                    break
        return events

    events = asyncio.run(asyncio.wait_for(run(), 120))
    (turn,) = [e for e in events if isinstance(e, TranscriptionCompleted)]
    (said,) = [e for e in events if isinstance(e, ResponseTranscriptDone)]
    reply = b"".join(e.audio for e in events if isinstance(e, ResponseAudioDelta))
    assert words(turn.transcript) == words(SENTENCES[5])
    assert words(said.transcript) == words(SENTENCES[5]), "the echo responder repeats the turn"
    assert events[-1].status == "completed"
    assert len(reply) / 2 / 24000 > 1.0, "a second or more of spoken reply at 24 kHz"


def pcm16_bytes(audio: np.ndarray) -> bytes:
    return (np.clip(audio, -1, 1) * 32767).astype("<i2").tobytes()
