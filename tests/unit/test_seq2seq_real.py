"""WhisperEngine on real weights (tiny.en, base) with real Piper speech."""

from __future__ import annotations

import re

import numpy as np
import pytest
from sonaray_client.types import TranscriptionOptions

from deployments.protocol import AudioItem
from deployments.tasks.seq2seq import WhisperEngine
from tests.speech import SENTENCES, long_clip, synthesize

pytestmark = pytest.mark.slow

SR = 16000
DECODINGS = [
    pytest.param({}, id="greedy"),
    pytest.param({"num_beams": 4}, id="beams"),
    pytest.param({"temperature": 0.5}, id="temperature"),
    pytest.param({"prompt": "Hello world, this is a test of speech recognition."}, id="prompt"),
]


def normalized(text: str) -> str:
    return " ".join(re.sub(r"[^a-z0-9' ]+", " ", text.lower()).split())


@pytest.fixture(scope="module")
def tiny_en(model_path):
    return WhisperEngine(model_path("whisper-tiny.en"), name="whisper-tiny.en")


@pytest.fixture(scope="module")
def base(model_path):
    return WhisperEngine(model_path("whisper-base"), name="whisper-base")


def request(audio, **options):
    return AudioItem(audio, SR, TranscriptionOptions(**options))


def test_sentences_word_for_word_in_one_batch(tiny_en):
    sentences = SENTENCES[:5]
    out = tiny_en.forward([request(synthesize(s)) for s in sentences])
    assert [normalized(r.text) for r in out] == [normalized(s) for s in sentences]
    assert all((r.language, r.language_probability) == ("en", 1.0) for r in out)


def test_long_clip_transcribed_completely_with_sentence_timestamps(tiny_en):
    audio, truth = long_clip(90.0)
    result = tiny_en.forward([request(audio, timestamps="segment")])[0]
    assert normalized(result.text) == normalized(" ".join(text for _, _, text in truth))
    starts = np.array([start for start, _, _ in truth])
    ends = np.array([end for _, end, _ in truth])
    tokenizer = tiny_en.decoder.tokenizer
    for seg in result.segments:
        assert np.abs(starts - seg.start).min() <= 0.5, seg
        assert np.abs(ends - seg.end).min() <= 0.5, seg
        # the segment's tokens are the ones its text was decoded from
        assert tokenizer.decode(seg.tokens, skip_special_tokens=True).strip() == seg.text
        assert seg.seek <= round(seg.start * 100)


def test_word_timestamps_follow_the_speech(tiny_en):
    audio, truth = long_clip(40.0)
    result = tiny_en.forward([request(audio, timestamps="word")])[0]
    assert [normalized(w.word) for w in result.words] == normalized(
        " ".join(t for _, _, t in truth)
    ).split()
    first_words = [w for w in result.words if normalized(w.word) == "hello"]
    assert abs(first_words[0].start - truth[0][0]) <= 0.5


@pytest.mark.parametrize("options", DECODINGS)
def test_silence_and_low_noise_give_empty_text(tiny_en, options):
    rng = np.random.default_rng(0)
    clips = [
        np.zeros(5 * SR, np.float32),
        rng.normal(0, 0.002, 5 * SR).astype(np.float32),  # -54 dBFS hiss: under the gate
        rng.normal(0, 0.02, 5 * SR).astype(np.float32),  # -34 dBFS hiss: Whisper's own rule
    ]
    out = tiny_en.forward([request(c, **options) for c in clips])
    assert [(r.text, r.segments) for r in out] == [("", [])] * 3


def test_speech_survives_the_no_speech_gate_with_every_decoding(tiny_en):
    speech = synthesize(SENTENCES[1])
    for options in ({}, {"num_beams": 4}, {"temperature": 0.5}, {"prompt": "A fox."}):
        text = tiny_en.forward([request(speech, **options)])[0].text
        assert normalized(text) == normalized(SENTENCES[1]), options


def test_base_detects_english_with_its_probability(base):
    result = base.forward([request(synthesize(SENTENCES[0]))])[0]
    assert result.language == "en"
    assert 0.5 < result.language_probability <= 1.0
    assert normalized(result.text) == normalized(SENTENCES[0])


def test_base_translates(base):
    result = base.forward([request(synthesize(SENTENCES[1]), task="translate")])[0]
    assert result.language == "en"
    assert "fox" in normalized(result.text)
