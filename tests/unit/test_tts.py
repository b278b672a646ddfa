"""TTS engines (VITS, SpeechT5, Bark) on tiny random models: batching, seeds, voices, errors."""

from __future__ import annotations

import numpy as np
import pytest
from sonaray_client.types import SpeechOptions

from deployments.errors import ConfigError, InvalidAudio, InvalidRequest, PayloadTooLarge
from deployments.protocol import TextItem
from deployments.tasks.speech_engine import split_sentences
from deployments.tasks.tts import load_tts_engine
from deployments.tasks.tts_bark import BarkEngine
from deployments.tasks.tts_speecht5 import SpeechT5Engine
from deployments.tasks.tts_vits import VitsEngine

LONG = "Hello world. This is a test of speech synthesis! Is it long enough? Yes."


def say(text: str = "hello there", audio=None, rate=None, **options) -> TextItem:
    return TextItem(SpeechOptions(input=text, **options), audio=audio, sampling_rate=rate)


def clip(seconds: float, rate: int = 16000, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).uniform(-0.5, 0.5, int(seconds * rate)).astype(np.float32)


@pytest.fixture(scope="module")
def vits(model_path) -> VitsEngine:
    return load_tts_engine(model_path("tiny-vits"), name="tiny-vits", max_chars=500, num_threads=1)


@pytest.fixture(scope="module")
def vits_deterministic(model_path) -> VitsEngine:
    return load_tts_engine(
        model_path("tiny-vits"),
        name="tiny-vits",
        noise_scale=0.0,
        noise_scale_duration=0.0,
        max_piece_chars=30,
        num_threads=1,
    )


@pytest.fixture(scope="module")
def speecht5(model_path) -> SpeechT5Engine:
    model_path("tiny-xvector")
    # A random model's stop head fires at once: minlenratio forces audible lengths.
    return load_tts_engine(
        model_path("tiny-speecht5"),
        name="tiny-speecht5",
        xvector_model="tiny-xvector",
        minlenratio=2.0,
        maxlenratio=3.0,
        max_chars=500,
        num_threads=1,
    )


@pytest.fixture(scope="module")
def bark(model_path) -> BarkEngine:
    return load_tts_engine(model_path("tiny-bark"), name="tiny-bark", max_chars=500, num_threads=1)


def assert_same(batched, items, engine, atol=1e-5):
    for item, wave in zip(items, batched, strict=True):
        alone = engine.forward([item])[0]
        assert alone.audio.shape == wave.audio.shape
        np.testing.assert_allclose(wave.audio, alone.audio, atol=atol)


def test_split_sentences_keeps_every_word_and_bounds_pieces():
    pieces = split_sentences(LONG + " " + "word " * 30, 40)
    assert pieces[:3] == [
        "Hello world.",
        "This is a test of speech synthesis!",
        "Is it long enough?",
    ]
    assert all(len(p) <= 40 for p in pieces)
    assert " ".join(pieces).split() == (LONG + " " + "word " * 30).split()


def test_loader_picks_engine_by_model_type(vits, speecht5, bark, model_path):
    assert isinstance(vits, VitsEngine) and vits.task == "tts"
    assert isinstance(speecht5, SpeechT5Engine) and speecht5.task == "tts"
    assert isinstance(bark, BarkEngine) and bark.task == "tts"
    with pytest.raises(ConfigError):
        load_tts_engine(model_path("tiny-xvector"), name="x")


@pytest.mark.parametrize(
    ("fixture", "rate"), [("vits", 16000), ("speecht5", 16000), ("bark", 24000)]
)
def test_output_is_float32_mono_at_the_model_rate(fixture, rate, request):
    engine = request.getfixturevalue(fixture)
    waves = engine.forward([say(LONG, seed=1), say("hi", seed=2)])
    assert engine.sampling_rate == rate
    for wave in waves:
        assert wave.sampling_rate == rate
        assert wave.audio.dtype == np.float32 and wave.audio.ndim == 1
        assert 0 < np.abs(wave.audio).max() <= 1.0
    assert waves[0].extras["sentences"] == 4 and waves[0].duration > waves[1].duration


@pytest.mark.parametrize("fixture", ["vits", "speecht5", "bark"])
def test_seeded_items_batched_equal_one_at_a_time(fixture, request):
    engine = request.getfixturevalue(fixture)
    speed = 1.0 if fixture == "bark" else 1.5
    items = [say(LONG, seed=1), say("hi", seed=2), say("hi there", seed=2, speed=speed)]
    assert_same(engine.forward(items), items, engine, atol=0.0)


@pytest.mark.parametrize("fixture", ["vits", "speecht5", "bark"])
def test_seed_reproduces_and_different_seeds_differ(fixture, request):
    engine = request.getfixturevalue(fixture)
    first, again, other = engine.forward([say(LONG, seed=5), say(LONG, seed=5), say(LONG, seed=6)])
    np.testing.assert_array_equal(first.audio, again.audio)
    assert first.audio.shape != other.audio.shape or np.abs(first.audio - other.audio).max() > 1e-3


def test_deterministic_vits_batches_unseeded_items_exactly(vits_deterministic):
    # Several sentences of different lengths share one padded batch; each must be trimmed.
    items = [say(LONG), say("hi"), say("a somewhat longer line of text here")]
    assert_same(vits_deterministic.forward(items), items, vits_deterministic)


def test_speed_shortens_speech(vits, speecht5):
    for engine in (vits, speecht5):
        normal, fast = engine.forward([say(LONG, seed=3), say(LONG, seed=3, speed=2.0)])
        assert fast.duration < 0.75 * normal.duration


def test_named_voice_and_cloned_voice_change_the_output(speecht5):
    reference = clip(1.0)
    default, alice, cloned, cloned_other = speecht5.forward(
        [
            say(seed=9),
            say(seed=9, voice="alice"),
            say(seed=9, audio=reference, rate=16000),
            say(seed=9, audio=clip(1.0, seed=1), rate=16000),
        ]
    )
    assert speecht5.voices == ["alice", "bob", "default"]
    for a, b in ((default, alice), (default, cloned), (cloned, cloned_other)):
        assert a.audio.shape == b.audio.shape
        assert np.abs(a.audio - b.audio).max() > 1e-3


@pytest.mark.parametrize("fixture", ["vits", "speecht5", "bark"])
def test_errors_are_typed(fixture, request):
    engine = request.getfixturevalue(fixture)
    with pytest.raises(InvalidRequest):
        engine.forward([say("  \n ")])
    with pytest.raises(PayloadTooLarge):
        engine.forward([say("word " * 101)])
    with pytest.raises(InvalidRequest, match="unknown voice"):
        engine.forward([say(voice="nobody")])


def test_reference_audio_errors_are_typed(speecht5, vits):
    with pytest.raises(InvalidAudio):
        speecht5.forward([say(audio=clip(1.0, rate=22050), rate=22050)])
    with pytest.raises(InvalidAudio):
        speecht5.forward([say(audio=clip(0.1), rate=16000)])
    with pytest.raises(InvalidRequest):
        vits.forward([say(audio=clip(1.0), rate=16000)])


def test_vits_rejects_text_it_cannot_pronounce(vits):
    with pytest.raises(InvalidRequest, match="cannot pronounce"):
        vits.forward([say("日本語")])


def test_bark_voice_preset_changes_output_and_speed_is_refused(bark):
    assert bark.voices == ["v2/en_speaker_0", "v2/en_speaker_1"]
    first, second = bark.forward(
        [say(seed=4, voice="v2/en_speaker_0"), say(seed=4, voice="v2/en_speaker_1")]
    )
    assert (
        first.audio.shape != second.audio.shape or np.abs(first.audio - second.audio).max() > 1e-3
    )
    with pytest.raises(InvalidRequest, match="speed"):
        bark.forward([say(speed=1.5)])
