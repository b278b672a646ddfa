"""The SDK's streams against a fake server (SSE parsing, chunks, errors) and the pcm16
resampling of realtime appends."""

from __future__ import annotations

import asyncio
import base64
import json
from array import array

import httpx
import numpy as np
import pytest
from client_fixtures import FakeServer, error_response, form_fields, json_body
from sonaray_client import APIStreamError, BadRequestError, encode_wav
from sonaray_client.pcm import Resampler
from sonaray_client.realtime import AudioSender, RealtimeOptions
from sonaray_client.realtime_events import ResponseAudioDelta, TranscriptionCompleted, parse_event
from sonaray_client.streaming import TranscriptDelta, TranscriptDone

WAV = encode_wav([0.0, 0.5, -0.5, 1.0], 16000)


def sse(*events: dict) -> bytes:
    return b"".join(f"data: {json.dumps(e)}\n\n".encode() for e in events)


class Chunked(httpx.SyncByteStream, httpx.AsyncByteStream):
    """A body that arrives in the given pieces, cut anywhere."""

    def __init__(self, data: bytes, size: int) -> None:
        self.pieces = [data[i : i + size] for i in range(0, len(data), size)]

    def __iter__(self):
        yield from self.pieces

    async def __aiter__(self):
        for piece in self.pieces:
            yield piece


TRANSCRIPT = sse(
    {"type": "transcript.text.delta", "delta": "Hello"},
    {"type": "transcript.text.delta", "delta": " world."},
    {"type": "transcript.text.done", "text": "Hello world.", "usage": {"seconds": 2.0}},
)


@pytest.mark.parametrize("size", [1, 7, 1000])
def test_transcript_stream_parses_events_however_the_body_is_cut(size):
    body = httpx.Response(200, stream=Chunked(TRANSCRIPT, size))
    server = FakeServer().reply("POST", "/v1/seq2seq", body)
    with server.client() as client, client.transcribe(WAV, stream=True, language="en") as events:
        received = list(events)
    assert [type(e) for e in received] == [TranscriptDelta, TranscriptDelta, TranscriptDone]
    assert "".join(e.delta for e in received[:2]) == received[2].text
    fields = form_fields(server.requests[0])
    assert fields["stream"] == "true" and json.loads(fields["options"]) == {"language": "en"}


def test_an_error_event_mid_stream_raises_and_one_before_it_is_a_status_error():
    failing = sse(
        {"type": "transcript.text.delta", "delta": "Hello"},
        {"type": "error", "error": {"type": "server_error", "message": "replica lost"}},
    )
    server = FakeServer().reply(
        "POST",
        "/v1/seq2seq",
        httpx.Response(200, content=failing),
        error_response(400, "not audio", param="file"),
    )
    with server.client() as client:
        events = client.transcribe(WAV, stream=True)
        with pytest.raises(APIStreamError) as err:
            list(events)
        assert err.value.message == "replica lost" and err.value.status_code == 500
        with pytest.raises(BadRequestError):
            client.transcribe(WAV, stream=True)


def test_speech_stream_gives_the_chunks_and_their_rate():
    audio = b"".join(bytes([i]) * 100 for i in range(5))
    headers = {"x-sampling-rate": "22050", "content-type": "audio/pcm"}
    server = FakeServer().reply(
        "POST", "/v1/tts", httpx.Response(200, headers=headers, stream=Chunked(audio, 100))
    )

    async def run():
        async with server.async_client() as client:
            stream = await client.speak("Hi. There.", response_format="pcm", stream=True)
            async with stream:
                return stream, [chunk async for chunk in stream]

    stream, chunks = asyncio.run(run())
    assert stream.sampling_rate == 22050 and stream.response_format == "pcm"
    assert len(chunks) == 5 and b"".join(chunks) == audio
    assert json_body(server.requests[0])["stream"] is True


def test_resampling_in_chunks_matches_resampling_whole():
    tone = (np.sin(np.arange(4800) * 2 * np.pi * 440 / 48000) * 20000).astype("<i2")
    whole = Resampler(48000, 24000)(array("h", tone.tobytes()))
    pieces = Resampler(48000, 24000)
    chunked = array("h")
    for start in range(0, len(tone), 333):
        chunked += pieces(array("h", tone[start : start + 333].tobytes()))
    assert len(whole) == pytest.approx(2400, abs=1)
    assert list(chunked) == list(whole)


def test_appends_are_pcm16_at_the_session_rate_in_pieces():
    sender = AudioSender(24000)
    events = sender.append_events(np.zeros(48000, np.float32), 16000)  # 3 s at 16 kHz
    sizes = [len(base64.b64decode(e["audio"])) // 2 for e in events]
    assert all(e["type"] == "input_audio_buffer.append" for e in events)
    assert sizes[:2] == [24000, 24000] and sum(sizes) == pytest.approx(72000, abs=2)


def test_session_options_make_the_url_and_the_update():
    options = RealtimeOptions(model="whisper-tiny.en", language="en", turn_detection=None)
    assert (
        options.url("https://h:1")
        == "wss://h:1/v1/realtime?intent=transcription&model=whisper-tiny.en"
    )
    session = options.update()["session"]
    assert session["type"] == "transcription"
    assert session["audio"]["input"]["turn_detection"] is None
    assert session["audio"]["input"]["transcription"]["language"] == "en"
    talk = RealtimeOptions("conversation", sampling_rate=16000).update()["session"]
    assert talk["type"] == "realtime" and "turn_detection" not in talk["audio"]["input"]


def test_server_events_parse_to_their_types():
    done = parse_event(
        json.dumps(
            {
                "type": "conversation.item.input_audio_transcription.completed",
                "event_id": "e1",
                "item_id": "i1",
                "content_index": 0,
                "transcript": "Hi.",
            }
        )
    )
    assert isinstance(done, TranscriptionCompleted) and done.content_index == 0
    delta = parse_event(
        json.dumps(
            {
                "type": "response.output_audio.delta",
                "response_id": "r",
                "item_id": "i",
                "delta": base64.b64encode(b"\x01\x00").decode(),
            }
        )
    )
    assert isinstance(delta, ResponseAudioDelta) and delta.audio == b"\x01\x00"
    assert parse_event('{"type": "rate_limits.updated"}').type == "rate_limits.updated"
