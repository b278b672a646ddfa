"""The HTTP layer without Ray: auth, the error envelope and the OpenAI/HF response shapes.

The app is the real ``create_app()`` with every router; task deployments are stand-in
handles that answer with fixed results, so only what the router does is under test.
"""

from __future__ import annotations

import base64
import io

import numpy as np
import openai
import pytest
import soundfile as sf
from fastapi.testclient import TestClient
from sonaray_client.types import (
    Classification,
    LabelScore,
    ModelCard,
    SpeechSegment,
    SpeechSegments,
    Transcription,
    TranscriptSegment,
    VadOptions,
    WordTiming,
)

from deployments.config import SonarayArgs
from deployments.protocol import Waveform
from deployments.router import hf_api, http, native, openai_api
from deployments.router.service import SonarayService

KEY = "s3cret-key"
RATE = 16000

TRANSCRIPT = Transcription(
    text="hello world",
    language="en",
    duration=1.0,
    segments=[
        TranscriptSegment(
            id=0, start=0.0, end=0.5, text="hello", avg_logprob=-0.2, tokens=[15496], seek=0
        ),
        TranscriptSegment(id=1, start=0.5, end=1.0, text="world", no_speech_prob=0.01),
    ],
    words=[
        WordTiming(word="hello", start=0.0, end=0.4),
        WordTiming(word="world", start=0.5, end=0.9),
    ],
)
RESULTS = {
    "seq2seq": TRANSCRIPT,
    "classify": Classification(labels=[LabelScore(label="yes", score=0.9)]),
    "frames": SpeechSegments(segments=[SpeechSegment(start=0.1, end=0.8, score=0.7)], duration=1.0),
    "tts": Waveform(np.zeros(2205, np.float32), 22050),
}


class StandInHandle:
    """Answers like a task deployment's handle: ``.options(...).remote(...)`` is awaitable."""

    def __init__(self, task: str, method: str = "__call__"):
        self.task, self.method = task, method
        self.model_cards = self if method == "model_cards" else StandInHandle(task, "model_cards")
        self.calls: list = []

    def options(self, method_name: str = "__call__", multiplexed_model_id: str = ""):
        handle = StandInHandle(self.task, method_name)
        handle.calls = self.calls
        return handle

    async def remote(self, *args):
        if self.method == "sampling_rate":
            return 22050 if self.task == "tts" else RATE
        if self.method == "model_cards":
            return [ModelCard(id=m.name, task=self.task) for m in ARGS.models_for(self.task)]
        self.calls.extend(args)
        return RESULTS[self.task]


ARGS = SonarayArgs.model_validate(
    {
        "models": [
            {"name": "whisper-tiny.en", "task": "seq2seq"},
            {"name": "tiny-wav2vec2-ks", "task": "classify"},
            {"name": "silero-vad", "task": "frames"},
            {"name": "piper-joe-medium", "task": "tts"},
        ],
        # audio over 1.5 s is cut at VAD segments first
        "limits": {"max_upload_bytes": 100_000, "max_text_chars": 50, "long_audio_seconds": 1.5},
    }
)


def make_client(monkeypatch, api_keys: set[str]) -> TestClient:
    """The app over stand-in handles; ``client.handles`` shows what each task was sent."""
    handles = {task: StandInHandle(task) for task in ("seq2seq", "classify", "frames", "tts")}
    monkeypatch.setattr(http, "_service", SonarayService(ARGS, handles, api_keys))
    app = http.create_app()
    for module in (native, openai_api, hf_api):
        app.include_router(module.router)
    client = TestClient(app, raise_server_exceptions=False)
    client.handles = handles
    return client


@pytest.fixture
def client(monkeypatch) -> TestClient:
    return make_client(monkeypatch, set())


@pytest.fixture
def keyed(monkeypatch) -> TestClient:
    return make_client(monkeypatch, {KEY, "other-key"})


def wav_bytes(seconds: float = 1.0) -> bytes:
    buf = io.BytesIO()
    sf.write(buf, np.zeros(int(seconds * RATE), np.float32), RATE, format="WAV")
    return buf.getvalue()


def assert_envelope(response, status: int, code: str) -> dict:
    assert response.status_code == status, response.text
    body = response.json()
    assert body["error"]["code"] == code
    assert body["error"]["message"]
    assert body["request_id"] == response.headers["x-request-id"]
    return body["error"]


# --- auth ---------------------------------------------------------------------------


def test_missing_key_is_401_with_envelope(keyed):
    error = assert_envelope(keyed.get("/v1/models"), 401, "invalid_api_key")
    assert error["type"] == "authentication_error"


def test_wrong_key_and_wrong_scheme_are_401(keyed):
    assert_envelope(
        keyed.get("/v1/models", headers={"authorization": "Bearer nope"}), 401, "invalid_api_key"
    )
    assert_envelope(
        keyed.get("/v1/models", headers={"authorization": f"Basic {KEY}"}), 401, "invalid_api_key"
    )


def test_any_configured_key_is_accepted(keyed):
    for key in (KEY, "other-key"):
        response = keyed.get("/v1/models", headers={"authorization": f"Bearer {key}"})
        assert response.status_code == 200
        assert {m["id"] for m in response.json()["data"]} >= {"whisper-tiny.en", "piper-joe-medium"}


def test_auth_guards_openai_and_hf_routes(keyed):
    files = {"file": ("a.wav", wav_bytes())}
    assert (
        keyed.post("/v1/audio/transcriptions", files=files, data={"model": "whisper-1"}).status_code
        == 401
    )
    assert keyed.post("/models/tiny-wav2vec2-ks", content=wav_bytes()).status_code == 401


def test_healthz_and_docs_stay_open(keyed):
    assert keyed.get("/healthz").json() == {"status": "ok"}
    assert keyed.get("/openapi.json").status_code == 200


def test_no_keys_configured_means_open(client):
    assert client.get("/v1/models").status_code == 200


def test_request_id_is_echoed_or_minted(client):
    assert (
        client.get("/healthz", headers={"x-request-id": "abc123"}).headers["x-request-id"]
        == "abc123"
    )
    assert len(client.get("/healthz").headers["x-request-id"]) == 32


# --- OpenAI shapes ------------------------------------------------------------------


def transcribe(client, **fields):
    files = {"file": ("clip.wav", wav_bytes(), "audio/wav")}
    return client.post(
        "/v1/audio/transcriptions", files=files, data={"model": "whisper-1", **fields}
    )


def test_openai_json_is_text_and_usage(client):
    assert transcribe(client).json() == {
        "text": "hello world",
        "usage": {"type": "duration", "seconds": 1.0},
    }


def test_openai_verbose_json_shape(client):
    body = transcribe(
        client, response_format="verbose_json", **{"timestamp_granularities[]": ["word", "segment"]}
    ).json()
    assert body["task"] == "transcribe"
    assert body["language"] == "english"
    assert body["usage"] == {"type": "duration", "seconds": 1.0}
    assert [s["start"] for s in body["segments"]] == [0.0, 0.5]
    assert set(body["segments"][0]) == {
        "id", "seek", "start", "end", "text", "tokens", "temperature",
        "avg_logprob", "compression_ratio", "no_speech_prob",
    }  # fmt: skip
    # the engine's tokens and seek; a segment without them (CTC) gets [] and its start
    assert [(s["tokens"], s["seek"]) for s in body["segments"]] == [([15496], 0), ([], 50)]
    assert body["words"][1] == {"word": "world", "start": 0.5, "end": 0.9}


def test_openai_translations_carry_no_usage(client):
    files = {"file": ("clip.wav", wav_bytes(), "audio/wav")}
    body = client.post("/v1/audio/translations", files=files, data={"model": "whisper-1"}).json()
    assert body == {"text": "hello world"}


def test_openai_word_granularity_asks_the_model_for_words(client):
    sent = client.handles["seq2seq"].calls
    transcribe(client, response_format="verbose_json", **{"timestamp_granularities[]": ["word"]})
    assert sent[-1].options.timestamps == "word"
    transcribe(client, language="en", prompt="Hello.", temperature="0.2")
    assert (sent[-1].options.timestamps, sent[-1].options.language) == ("segment", "en")
    assert (sent[-1].options.prompt, sent[-1].options.temperature) == ("Hello.", 0.2)


def test_openai_srt_vtt_text(client):
    srt = transcribe(client, response_format="srt").text
    assert srt.startswith("1\n00:00:00,000 --> 00:00:00,500\nhello\n")
    vtt = transcribe(client, response_format="vtt")
    assert vtt.headers["content-type"].startswith("text/vtt")
    assert vtt.text.startswith("WEBVTT\n") and "00:00:00.500 --> 00:00:01.000\nworld" in vtt.text
    assert transcribe(client, response_format="text").text == "hello world\n"


def test_openai_unknown_model_is_404(client):
    assert_envelope(transcribe(client, model="no-such-model"), 404, "model_not_found")


def test_openai_model_of_wrong_task_is_400(client):
    error = assert_envelope(transcribe(client, model="piper-joe-medium"), 400, "invalid_request")
    assert error["param"] == "model"


def test_openai_json_where_multipart_expected_is_400(client):
    response = client.post("/v1/audio/transcriptions", json={"model": "whisper-1"})
    assert assert_envelope(response, 400, "invalid_field")["param"] == "file"


def test_malformed_fields_are_400_naming_the_field_on_every_surface(client):
    bad_format = transcribe(client, response_format="docx")
    error = assert_envelope(bad_format, 400, "invalid_field")
    assert error["param"] == "response_format" and error["type"] == "invalid_request_error"
    speech = client.post("/v1/audio/speech", json={"model": "tts-1", "input": "hi", "speed": 9})
    assert assert_envelope(speech, 400, "invalid_field")["param"] == "speed"
    native = client.post("/v1/tts", json={"input": "hi", "response_format": "docx"})
    assert assert_envelope(native, 400, "invalid_field")["param"] == "response_format"


@pytest.fixture
def openai_client(client) -> openai.OpenAI:
    """The real openai package, sending through the test app (TestClient is an httpx.Client)."""
    return openai.OpenAI(
        base_url="http://testserver/v1", api_key="x", max_retries=0, http_client=client
    )


@pytest.mark.parametrize(
    ("fields", "param"),
    [
        ({"include": ["logprobs"]}, "include"),
        ({"known_speaker_names": ["agent"]}, "known_speaker_names"),
        ({"known_speaker_references": ["data:audio/wav;base64,AAAA"]}, "known_speaker_references"),
        ({"keywords": ["Sonaray"]}, "keywords"),
        ({"languages": ["en", "de"]}, "languages"),
        (
            {"chunking_strategy": {"type": "server_vad", "eagerness": 1}},
            "chunking_strategy[eagerness]",
        ),
        ({"chunking_strategy": {"type": "semantic_vad"}}, "chunking_strategy[type]"),
        ({"extra_body": {"temprature": "0.2"}}, "temprature"),
    ],
)
def test_openai_fields_sonaray_cannot_honour_are_refused_by_name(openai_client, fields, param):
    with pytest.raises(openai.BadRequestError) as caught:
        openai_client.audio.transcriptions.create(
            model="whisper-1", file=("clip.wav", wav_bytes()), **fields
        )
    assert caught.value.status_code == 400 and caught.value.param == param


def test_openai_chunking_strategy_sets_the_long_audio_vad(client, openai_client):
    sent = client.handles["frames"].calls
    openai_client.audio.transcriptions.create(
        model="whisper-1", file=("clip.wav", wav_bytes(2.0)), chunking_strategy="auto"
    )
    assert sent[-1].options == VadOptions()
    openai_client.audio.transcriptions.create(
        model="whisper-1",
        file=("clip.wav", wav_bytes(2.0)),
        chunking_strategy={
            "type": "server_vad",
            "threshold": 0.7,
            "silence_duration_ms": 300,
            "prefix_padding_ms": 100,
        },
    )
    assert sent[-1].options == VadOptions(
        threshold=0.7, min_silence_duration_s=0.3, speech_pad_s=0.1
    )


def test_openai_client_reads_usage(openai_client):
    result = openai_client.audio.transcriptions.create(
        model="whisper-1", file=("clip.wav", wav_bytes())
    )
    assert result.text == "hello world"
    assert (result.usage.type, result.usage.seconds) == ("duration", 1.0)
    verbose = openai_client.audio.transcriptions.create(
        model="whisper-1", file=("clip.wav", wav_bytes()), response_format="verbose_json"
    )
    assert verbose.usage.seconds == 1.0 and verbose.segments[0].tokens == [15496]


def test_openai_speech_instructions_are_refused(openai_client):
    with pytest.raises(openai.BadRequestError) as caught:
        openai_client.audio.speech.create(
            model="tts-1", voice="alloy", input="hi", instructions="Speak like a pirate."
        )
    assert caught.value.param == "instructions"


def test_models_retrieve_and_unknown_id(openai_client):
    card = openai_client.models.retrieve("piper-joe-medium")
    assert (card.id, card.object, card.owned_by) == ("piper-joe-medium", "model", "sonaray")
    assert isinstance(card.created, int)
    with pytest.raises(openai.NotFoundError) as caught:
        openai_client.models.retrieve("no-such-model")
    assert caught.value.code == "model_not_found"


def test_openai_speech_formats(client):
    ok = client.post("/v1/audio/speech", json={"model": "tts-1", "input": "hi", "voice": "alloy"})
    assert ok.headers["content-type"] == "audio/mpeg" and len(ok.content) > 0
    pcm = client.post(
        "/v1/audio/speech", json={"model": "tts-1", "input": "hi", "response_format": "pcm"}
    )
    # 0.1 s at 22050 Hz comes back at OpenAI's 24 kHz, 2 bytes a sample.
    assert len(pcm.content) == 2 * 2400
    aac = client.post(
        "/v1/audio/speech", json={"model": "tts-1", "input": "hi", "response_format": "aac"}
    )
    assert aac.headers["content-type"] == "audio/aac" and len(aac.content) > 0
    error = assert_envelope(
        client.post(
            "/v1/audio/speech", json={"model": "tts-1", "input": "hi", "response_format": "ogg"}
        ),
        400,
        "invalid_field",
    )
    assert "wav" in error["message"] and error["param"] == "response_format"


def test_openai_speech_text_limits(client):
    empty = client.post("/v1/audio/speech", json={"model": "tts-1", "input": "  "})
    assert_envelope(empty, 400, "invalid_request")
    long = client.post("/v1/audio/speech", json={"model": "tts-1", "input": "a" * 51})
    assert assert_envelope(long, 413, "limit_exceeded")["param"] == "input"


# --- Hugging Face shapes ------------------------------------------------------------


def test_hf_raw_audio_and_base64_json_agree(client):
    raw = client.post("/models/whisper-tiny.en", content=wav_bytes())
    payload = {"inputs": base64.b64encode(wav_bytes()).decode(), "parameters": {}}
    as_json = client.post("/models/whisper-tiny.en", json=payload)
    assert raw.json() == as_json.json()
    assert raw.json()["chunks"][1] == {"text": "world", "timestamp": [0.5, 1.0]}


def test_hf_classification_and_frames(client):
    labels = client.post(
        "/models/tiny-wav2vec2-ks", content=wav_bytes(), headers={"content-type": "audio/wav"}
    )
    assert labels.json() == [{"label": "yes", "score": 0.9}]
    segments = client.post("/models/silero-vad", content=wav_bytes())
    assert segments.json() == [{"start": 0.1, "end": 0.8, "label": "speech", "score": 0.7}]


def test_hf_tts_returns_wav(client):
    response = client.post(
        "/models/piper-joe-medium", json={"inputs": "hi", "parameters": {"top_k": 3}}
    )
    assert response.headers["content-type"] == "audio/wav"
    audio, rate = sf.read(io.BytesIO(response.content))
    assert rate == 22050 and len(audio) == 2205


def test_hf_wrong_content_type_is_415(client):
    response = client.post(
        "/models/whisper-tiny.en", content=b"hello", headers={"content-type": "text/plain"}
    )
    assert_envelope(response, 415, "unsupported_media_type")
    raw_to_tts = client.post("/models/piper-joe-medium", content=wav_bytes())
    assert_envelope(raw_to_tts, 415, "unsupported_media_type")


def test_hf_bad_json_and_unknown_parameters_are_400(client):
    assert_envelope(
        client.post(
            "/models/whisper-tiny.en", content=b"{", headers={"content-type": "application/json"}
        ),
        400,
        "invalid_request",
    )
    assert_envelope(
        client.post("/models/whisper-tiny.en", json={"inputs": "!!notb64"}), 400, "invalid_request"
    )
    bad = client.post("/models/tiny-wav2vec2-ks", json={"inputs": "", "parameters": {"bogus": 1}})
    assert "bogus" in assert_envelope(bad, 400, "invalid_request")["message"]


def test_hf_unknown_model_is_404(client):
    assert_envelope(client.post("/models/nope", content=wav_bytes()), 404, "model_not_found")


def test_hf_body_over_limit_is_413(client):
    assert_envelope(
        client.post("/models/whisper-tiny.en", content=b"\0" * 200_000), 413, "limit_exceeded"
    )
