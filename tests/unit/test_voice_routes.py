"""Voice routes and cloning requests at the HTTP layer, without Ray.

The real app and routers over a stand-in tts handle (it records the item it was sent) and
a VoiceStore held in-process behind the same ``.method.remote`` calls the actor answers.
"""

from __future__ import annotations

import io

import numpy as np
import pytest
import soundfile as sf
from fastapi.testclient import TestClient
from sonaray_client.types import ModelCard

from deployments.config import SonarayArgs
from deployments.protocol import Waveform
from deployments.router import http, native, openai_api, voices
from deployments.router.service import SonarayService
from deployments.serving.voice_store import VOICE_RATE, VoiceStore

MODEL_VOICES = ["alice", "default"]


class TtsHandle:
    """Answers like the tts deployment's handle; ``sent`` holds the items it got."""

    def __init__(self, method: str = "__call__", sent: list | None = None):
        self.method, self.sent = method, sent if sent is not None else []
        self.model_cards = self

    def options(self, method_name: str = "__call__", multiplexed_model_id: str = ""):
        return TtsHandle(method_name, self.sent)

    async def remote(self, *args):
        if self.method == "voices":
            return MODEL_VOICES
        if self.method == "sampling_rate":
            return 16000
        if self.method == "model_cards":
            return [ModelCard(id="t5", task="tts", voices=MODEL_VOICES)]
        self.sent.extend(args)
        return Waveform(np.zeros(1600, np.float32), 16000)


class InProcess:
    """An object's methods behind ``.name.remote(...)``, as a Ray actor handle offers them."""

    def __init__(self, target):
        self.target = target

    def __getattr__(self, name):
        method = getattr(self.target, name)

        class Remote:
            @staticmethod
            async def remote(*args):
                return method(*args)

        return Remote


@pytest.fixture
def client(monkeypatch) -> TestClient:
    args = SonarayArgs.model_validate(
        {
            "models": [{"name": "piper-joe-medium", "task": "tts"}],
            "voices": {"max_seconds": 3.0, "max_voices": 1},
        }
    )
    handle = TtsHandle()
    monkeypatch.setattr(http, "_service", SonarayService(args, {"tts": handle}, set()))
    store = VoiceStore(max_voices=args.voices.max_voices)
    monkeypatch.setattr(voices, "_store", InProcess(store))
    app = http.create_app()
    for module in (native, openai_api, voices):
        app.include_router(module.router)
    client = TestClient(app, raise_server_exceptions=False)
    client.sent = handle.sent
    return client


def wav(seconds: float, rate: int = 22050) -> bytes:
    buf = io.BytesIO()
    tone = np.sin(np.arange(int(seconds * rate)) / 10).astype(np.float32) * 0.3
    sf.write(buf, tone, rate, format="WAV")
    return buf.getvalue()


def test_a_reference_clip_reaches_the_engine_at_16_khz(client):
    response = client.post(
        "/v1/tts",
        files={"reference_audio": ("me.wav", wav(1.0))},
        data={"input": "hi", "voice": "alice", "speed": "1.5"},
    )
    assert response.status_code == 200, response.text
    (item,) = client.sent
    assert item.sampling_rate == VOICE_RATE and item.audio.size == VOICE_RATE
    assert item.options.voice is None and item.options.speed == 1.5


def test_saved_voices_are_created_used_listed_and_deleted(client):
    created = client.post(
        "/v1/audio/voices",
        files={"audio_sample": ("me.wav", wav(1.0))},
        data={"name": "me", "consent": "consent_1"},
    ).json()
    assert set(created) == {"id", "created_at", "name", "object", "type"}
    speech = {"model": "tts-1", "input": "hi", "voice": {"id": created["id"]}}
    assert client.post("/v1/audio/speech", json=speech).status_code == 200
    assert client.sent[-1].audio.size == VOICE_RATE
    listed = client.get("/v1/audio/voices").json()
    assert [v["id"] for v in listed["data"]] == [created["id"], *MODEL_VOICES]
    full = client.post(
        "/v1/audio/voices",
        files={"audio_sample": ("me.wav", wav(1.0))},
        data={"name": "two", "consent": "c"},
    )
    assert full.status_code == 413
    assert client.delete(f"/v1/audio/voices/{created['id']}").json()["deleted"] is True
    assert client.post("/v1/audio/speech", json=speech).status_code == 404
    assert client.delete(f"/v1/audio/voices/{created['id']}").status_code == 404


def test_openai_voice_names_map_onto_the_model_voices(client):
    for name, voice in (("alloy", "default"), ("ash", "alice"), ("ballad", "default")):
        body = {"model": "tts-1", "input": "hi", "voice": name}
        assert client.post("/v1/audio/speech", json=body).status_code == 200
        assert client.sent[-1].options.voice == voice


def test_bad_speech_requests_keep_their_status(client):
    missing = client.post("/v1/tts", json={"voice": "alice"})
    assert missing.status_code == 400 and missing.json()["error"]["param"] == "input"
    long_clip = client.post(
        "/v1/audio/speech",
        files={"reference_audio": ("long.wav", wav(4.0))},
        data={"model": "tts-1", "input": "hi"},
    )
    assert long_clip.status_code == 413
    assert long_clip.json()["error"]["param"] == "reference_audio"
