"""``huggingface_hub.InferenceClient`` against the live cluster's ``/models/{model}`` routes."""

from __future__ import annotations

import huggingface_hub.constants
import numpy as np
import pytest
from api_fixtures import HELLO, decode, encode, speech_wav
from huggingface_hub import InferenceClient
from speech import SENTENCES, heard_as, synthesize, words

pytestmark = pytest.mark.serve


@pytest.fixture(autouse=True)
def local_endpoint_allowed(monkeypatch):
    """tests/conftest.py sets HF_HUB_OFFLINE, which blocks every huggingface_hub request;
    these go only to the local cluster (a URL as ``model`` is never looked up on the Hub)."""
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", False)


def url(serve_url: str, model: str) -> str:
    return f"{serve_url}/models/{model}"


def test_asr_with_raw_audio(serve_url):
    client = InferenceClient(model=url(serve_url, "whisper-tiny.en"), timeout=300)
    result = client.automatic_speech_recognition(speech_wav(SENTENCES[2]))
    assert words(result.text) == words(SENTENCES[2])


def test_asr_with_parameters_sends_json_and_gets_chunks(serve_url):
    client = InferenceClient(base_url=url(serve_url, "whisper-tiny.en"), timeout=300)
    audio = speech_wav()
    result = client.automatic_speech_recognition(audio, extra_body={"return_timestamps": True})
    assert words(result.text) == words(HELLO)
    seconds = decode(audio)[0].size / 16000
    assert result.chunks and words(" ".join(c.text for c in result.chunks)) == words(HELLO)
    for chunk in result.chunks:
        start, end = chunk.timestamp
        assert 0.0 <= start < end <= seconds + 0.05


def test_asr_word_chunks(serve_url):
    client = InferenceClient(model=url(serve_url, "whisper-tiny.en"), timeout=300)
    result = client.automatic_speech_recognition(
        speech_wav(), extra_body={"return_timestamps": "word"}
    )
    assert [c.text.strip(" ,.").lower() for c in result.chunks] == words(HELLO)


def test_audio_classification_top_k(serve_url):
    client = InferenceClient(model=url(serve_url, "tiny-wav2vec2-ks"), timeout=300)
    labels = client.audio_classification(speech_wav(), top_k=3)
    assert len(labels) == 3
    scores = [item.score for item in labels]
    assert scores == sorted(scores, reverse=True) and all(0.0 <= s <= 1.0 for s in scores)
    assert len({item.label for item in labels}) == 3


def test_text_to_speech_round_trip(serve_url):
    text = SENTENCES[4]
    speech = InferenceClient(model=url(serve_url, "piper-joe-medium"), timeout=300)
    wav = speech.text_to_speech(text)
    audio, rate = decode(wav)
    assert rate == 22050 and audio.size / rate > 1.0
    asr = InferenceClient(model=url(serve_url, "whisper-tiny.en"), timeout=300)
    assert heard_as(asr.automatic_speech_recognition(wav).text, text)


def test_frames_model_returns_speech_segments(http):
    rate = 16000
    speech = synthesize(HELLO, rate)
    silence = np.zeros(2 * rate, np.float32)
    audio = np.concatenate([silence, speech, silence])
    response = http.post(
        "/models/silero-vad", content=encode(audio, rate), headers={"content-type": "audio/wav"}
    )
    assert response.status_code == 200, response.text
    segments = response.json()
    assert segments and {s["label"] for s in segments} == {"speech"}
    assert segments[0]["start"] == pytest.approx(2.0, abs=0.3)
    assert segments[-1]["end"] == pytest.approx(2.0 + speech.size / rate, abs=0.4)


def test_text_to_audio_model_returns_wav(http):
    response = http.post(
        "/models/tiny-musicgen",
        json={"inputs": "calm piano", "parameters": {"duration_s": 0.5, "seed": 1}},
    )
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "audio/wav"
    audio, rate = decode(response.content)
    assert rate == int(response.headers["x-sampling-rate"]) and audio.size > 0


def test_accept_header_picks_flac(http):
    response = http.post(
        "/models/piper-joe-medium", json={"inputs": "Hi there."}, headers={"accept": "audio/flac"}
    )
    assert response.headers["content-type"] == "audio/flac"
    assert decode(response.content)[1] == 22050
