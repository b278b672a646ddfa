"""Streaming routes without Ray: SSE transcripts, chunked and SSE speech, errors, auth.

The app is the real ``create_app()`` with every router over stand-in task handles: the
stand-in ASR says which chunk it heard, the stand-in TTS speaks each sentence as a tone
as long as its text, so order and seams are visible.
"""

from __future__ import annotations

import base64
import io
import json

import numpy as np
import pytest
import soundfile as sf
from fastapi.testclient import TestClient
from sonaray_client.types import SpeechSegment, SpeechSegments, Transcription, TranscriptSegment

from deployments.config import SonarayArgs
from deployments.errors import InvalidAudio
from deployments.protocol import Waveform
from deployments.router import hf_api, http, native, openai_api
from deployments.router.service import SonarayService

RATE = 8000
TTS_RATE = 16000
GAP_S = 0.1
KEY = "stream-key"
ARGS = SonarayArgs.model_validate(
    {
        "models": [
            {"name": "whisper-tiny.en", "task": "seq2seq"},
            {"name": "silero-vad", "task": "frames"},
            {"name": "piper-joe-medium", "task": "tts"},
        ],
        "limits": {"long_audio_seconds": 3, "chunk_seconds": 2},
    }
)
# Speech at 1-2 s, 4-5 s and 7-8 s of a 9 s file: three chunks, each heard by its level.
SPEECH = [(1.0, 2.0), (4.0, 5.0), (7.0, 8.0)]


def tone(seconds: float, level: float) -> np.ndarray:
    return np.full(int(seconds * TTS_RATE), level, np.float32)


class StandInTask:
    """A task handle: ``.options(...).remote(item)`` is an awaitable, cancellable future."""

    def __init__(self, task: str, fail_on: str | None = None, method: str = "__call__"):
        self.task, self.method, self.fail_on = task, method, fail_on
        self.model_cards = self

    def options(self, method_name: str = "__call__", multiplexed_model_id: str = ""):
        return StandInTask(self.task, self.fail_on, method_name)

    def remote(self, *args):
        import asyncio

        return asyncio.ensure_future(self._reply(*args))

    async def _reply(self, item=None):
        if self.method == "sampling_rate":
            return TTS_RATE if self.task == "tts" else RATE
        if self.task == "frames":
            segments = [SpeechSegment(start=s, end=e) for s, e in SPEECH]
            return SpeechSegments(segments=segments, duration=len(item.audio) / item.sampling_rate)
        if self.task == "tts":
            text = item.options.input
            return Waveform(
                tone(len(text) / 100, len(text) / 1000), TTS_RATE, {"sentence_gap_s": GAP_S}
            )
        level = round(float(np.abs(item.audio).max()) * 10)
        if self.fail_on == f"level {level}":
            raise InvalidAudio("the stand-in cannot hear this chunk")
        heard = f"level {level}"
        return Transcription(
            text=heard,
            duration=len(item.audio) / item.sampling_rate,
            segments=[TranscriptSegment(id=0, start=0.0, end=0.5, text=heard)],
        )


def make_client(monkeypatch, keys: set[str] = frozenset(), fail_on: str | None = None):
    handles = {task: StandInTask(task, fail_on) for task in ("seq2seq", "frames", "tts")}
    monkeypatch.setattr(http, "_service", SonarayService(ARGS, handles, set(keys)))
    app = http.create_app()
    for module in (native, openai_api, hf_api):
        app.include_router(module.router)
    return TestClient(app, raise_server_exceptions=False)


@pytest.fixture
def client(monkeypatch) -> TestClient:
    return make_client(monkeypatch)


def long_wav() -> bytes:
    audio = np.zeros(9 * RATE, np.float32)
    for level, (start, end) in enumerate(SPEECH, start=1):
        audio[int(start * RATE) : int(end * RATE)] = level / 10
    buf = io.BytesIO()
    sf.write(buf, audio, RATE, format="WAV")
    return buf.getvalue()


def events(response) -> list[tuple[str | None, dict]]:
    """(event name, data) of each SSE event in the body."""
    out = []
    for block in response.text.strip().split("\n\n"):
        lines = dict(line.split(": ", 1) for line in block.splitlines())
        out.append((lines.get("event"), json.loads(lines["data"])))
    return out


def transcribe(client, stream: bool, **headers):
    return client.post(
        "/v1/audio/transcriptions",
        files={"file": ("long.wav", long_wav())},
        data={"model": "whisper-1", **({"stream": "true"} if stream else {})},
        headers=headers,
    )


def test_long_audio_streams_one_delta_per_chunk_in_order(client):
    response = transcribe(client, stream=True)
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/event-stream")
    got = events(response)
    assert [data["type"] for _, data in got] == ["transcript.text.delta"] * 3 + [
        "transcript.text.done"
    ]
    deltas = [data["delta"] for _, data in got[:-1]]
    assert deltas == ["level 1", " level 2", " level 3"]
    done = got[-1][1]
    assert done["text"] == "".join(deltas) == transcribe(client, stream=False).json()["text"]
    assert done["usage"] == {"type": "duration", "seconds": 9.0}


def test_errors_before_the_stream_are_json_and_during_it_an_error_event(monkeypatch, client):
    missing = client.post(
        "/v1/audio/transcriptions",
        files={"file": ("x.wav", long_wav())},
        data={"model": "no-such-model", "stream": "true"},
    )
    assert missing.status_code == 404 and missing.json()["error"]["code"] == "model_not_found"
    first_fails = transcribe(make_client(monkeypatch, fail_on="level 1"), stream=True)
    assert first_fails.status_code == 400
    assert first_fails.json()["error"]["code"] == "invalid_audio"
    later_fails = transcribe(make_client(monkeypatch, fail_on="level 2"), stream=True)
    assert later_fails.status_code == 200
    got = events(later_fails)
    assert got[0][1] == {"type": "transcript.text.delta", "delta": "level 1"}
    assert got[-1][0] == "error" and got[-1][1]["type"] == "error"
    assert got[-1][1]["error"]["code"] == "invalid_audio"
    assert "transcript.text.done" not in [data["type"] for _, data in got]


FIVE = "One. Two two. Three three three. Four four four four. Five five five five five."


def expected_speech() -> np.ndarray:
    """The stand-in's sentences with the engine's gap between them, as 16-bit samples."""
    sentences = ["One.", "Two two.", "Three three three.", "Four four four four."]
    sentences.append("Five five five five five.")
    parts = []
    for i, text in enumerate(sentences):
        if i:
            parts.append(np.zeros(round(GAP_S * TTS_RATE), np.float32))
        parts.append(tone(len(text) / 100, len(text) / 1000))
    return np.concatenate(parts)


@pytest.mark.parametrize("fmt", ["wav", "mp3", "opus", "pcm"])
def test_openai_speech_streams_a_whole_file_sentence_by_sentence(client, fmt):
    with client.stream(
        "POST", "/v1/audio/speech", json={"input": FIVE, "response_format": fmt}
    ) as response:
        assert response.status_code == 200
        assert "content-length" not in response.headers
        data = b"".join(response.iter_bytes())
    if fmt == "pcm":  # OpenAI's pcm: 16-bit at 24 kHz
        audio, rate = np.frombuffer(data, "<i2").astype(np.float32) / 32767, 24000
    else:
        audio, rate = sf.read(io.BytesIO(data), dtype="float32")
    expected = expected_speech()
    assert len(audio) / rate == pytest.approx(len(expected) / TTS_RATE, abs=0.08)
    if fmt == "wav":
        assert data[4:8] == data[40:44] == b"\xff\xff\xff\xff"  # sizes unknown: streamed
        np.testing.assert_allclose(audio, expected, atol=1e-4)


def test_speech_sse_events_decode_to_the_chunked_body(client):
    body = {"input": FIVE, "response_format": "wav"}
    whole = client.post("/v1/audio/speech", json=body).content
    got = events(client.post("/v1/audio/speech", json={**body, "stream_format": "sse"}))
    assert [d["type"] for _, d in got] == ["speech.audio.delta"] * (len(got) - 1) + [
        "speech.audio.done"
    ]
    assert len(got) - 1 >= 5  # at least one delta per sentence
    assert b"".join(base64.b64decode(d["audio"]) for _, d in got[:-1]) == whole
    assert got[-1][1]["usage"]["seconds"] == pytest.approx(len(expected_speech()) / TTS_RATE)


def test_native_tts_streams_when_asked_and_not_by_default(client):
    plain = client.post("/v1/tts", json={"input": FIVE})
    assert plain.headers["content-length"] == str(len(plain.content))
    streamed = client.post(
        "/v1/tts", json={"input": FIVE, "stream": True, "response_format": "pcm"}
    )
    assert "content-length" not in streamed.headers
    assert streamed.headers["x-sampling-rate"] == str(TTS_RATE)
    pcm = np.frombuffer(streamed.content, "<i2").astype(np.float32) / 32767
    np.testing.assert_allclose(pcm, expected_speech(), atol=1e-4)
    assert len(sf.read(io.BytesIO(plain.content))[0]) == len(tone(len(FIVE) / 100, 0))  # one call
    sse = client.post("/v1/tts", json={"input": FIVE, "stream_format": "sse"})
    assert events(sse)[-1][1]["type"] == "speech.audio.done"


def test_formats_that_cannot_stream_and_empty_text_are_400_before_any_byte(client):
    flac = client.post(
        "/v1/audio/speech", json={"input": FIVE, "response_format": "flac", "stream_format": "sse"}
    )
    assert flac.status_code == 400 and flac.json()["error"]["param"] == "response_format"
    whole_flac = client.post("/v1/audio/speech", json={"input": FIVE, "response_format": "flac"})
    assert (
        whole_flac.status_code == 200 and sf.info(io.BytesIO(whole_flac.content)).format == "FLAC"
    )
    nothing = client.post("/v1/audio/speech", json={"input": "... !"})
    assert nothing.status_code == 400 and nothing.json()["error"]["param"] == "input"


def test_api_keys_guard_streams(monkeypatch):
    keyed = make_client(monkeypatch, keys={KEY})
    assert transcribe(keyed, stream=True).status_code == 401
    denied = keyed.post("/v1/audio/speech", json={"input": FIVE, "stream_format": "sse"})
    assert denied.status_code == 401
    allowed = transcribe(keyed, stream=True, authorization=f"Bearer {KEY}")
    assert allowed.status_code == 200 and events(allowed)[-1][1]["type"] == "transcript.text.done"
