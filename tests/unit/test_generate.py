"""MusicgenEngine on the tiny random MusicGen: batching, seeds, durations, prompts, errors."""

from __future__ import annotations

import numpy as np
import pytest
from sonaray_client.types import GenerationOptions

from deployments.errors import InvalidAudio, InvalidRequest, PayloadTooLarge
from deployments.protocol import TextItem
from deployments.tasks.generate import MusicgenEngine


@pytest.fixture(scope="module")
def engine(model_path) -> MusicgenEngine:
    return MusicgenEngine(model_path("tiny-musicgen"), name="tiny-musicgen", max_prompt_chars=200)


def item(prompt: str = "lofi beat", audio: np.ndarray | None = None, rate=None, **options):
    options = {"duration_s": 0.2, "seed": 7, **options}
    return TextItem(GenerationOptions(prompt=prompt, **options), audio=audio, sampling_rate=rate)


def noise(seconds: float, rate: int = 32000) -> np.ndarray:
    return np.random.default_rng(3).uniform(-0.5, 0.5, int(seconds * rate)).astype(np.float32)


def test_output_is_float32_mono_at_32khz_and_duration_s_long(engine):
    waves = engine.forward([item(duration_s=0.2), item(duration_s=0.33)])
    assert engine.sampling_rate == 32000
    for wave, seconds in zip(waves, (0.2, 0.33), strict=True):
        assert wave.sampling_rate == 32000
        assert wave.audio.dtype == np.float32 and wave.audio.ndim == 1
        assert wave.audio.size == round(seconds * 32000)
        assert np.abs(wave.audio).max() <= 1.0
        assert np.abs(wave.audio).max() > 0.0


def test_batched_equals_one_at_a_time_with_seeds(engine):
    items = [
        item("80s pop track with bassy drums", seed=1),
        item("jazz", seed=2, guidance_scale=1.0, temperature=0.7),
        item("rain on a tin roof", seed=3, guidance_scale=5.0),
    ]
    batched = engine.forward(items)
    for one, wave in zip(items, batched, strict=True):
        alone = engine.forward([one])[0]
        np.testing.assert_allclose(wave.audio, alone.audio, atol=1e-4)


def test_seed_reproduces_and_different_seeds_differ(engine):
    first, again, other = engine.forward([item(seed=5), item(seed=5), item(seed=6)])
    np.testing.assert_allclose(first.audio, again.audio, atol=1e-4)
    assert np.abs(first.audio - other.audio).max() > 1e-3


def test_unseeded_item_reports_a_seed_that_reproduces_it(engine):
    wave = engine.forward([item(seed=None)])[0]
    seed = wave.extras["seed"]
    np.testing.assert_allclose(engine.forward([item(seed=seed)])[0].audio, wave.audio, atol=1e-4)


def test_audio_prompt_is_continued_and_stripped(engine):
    prompt = noise(0.25)
    plain, continued = engine.forward([item(), item(audio=prompt, rate=32000)])
    assert continued.audio.size == plain.audio.size == round(0.2 * 32000)
    # 0.25 s is 12.5 codec frames: the codec pads it to 13 frames (0.26 s), stripped.
    assert continued.extras["prompt_stripped_s"] == pytest.approx(0.26)
    assert np.abs(continued.audio - plain.audio).max() > 1e-3


def test_errors_are_typed(engine):
    with pytest.raises(InvalidRequest):
        engine.forward([item("   ")])
    with pytest.raises(PayloadTooLarge):
        engine.forward([item("x" * 201)])
    with pytest.raises(InvalidAudio):
        engine.forward([item(audio=noise(0.25, 16000), rate=16000)])
    with pytest.raises(InvalidAudio):
        engine.forward([item(audio=np.zeros(0, np.float32), rate=32000)])
