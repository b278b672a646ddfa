"""The store's keyword spotter (whisper-tiny-kws): real trained weights, served by the engine.

The model is trained once by the store (scripts/setup --test builds it, or the recipe
cache under ~/.cache/sonaray supplies it); these tests only load it. The words are spoken
by espeak-ng voices that training never heard.
"""

from __future__ import annotations

import json

import numpy as np
import pytest
from sonaray_client.types import ClassificationOptions
from typer.testing import CliRunner

from deployments.models import cli, store
from deployments.models.builders import keyword_speech as speech
from deployments.models.builders import keyword_spotter
from deployments.protocol import AudioItem
from deployments.tasks.classify import AudioClassificationEngine

MODEL = "whisper-tiny-kws"
# Variants and a base voice the training set leaves out (see keyword_speech).
UNHEARD = [speech.Voice("espeak", "en-us+f3"), speech.Voice("espeak", "en-gb-x-gbcwmd+m4")]


@pytest.fixture(scope="module")
def kws(model_path) -> AudioClassificationEngine:
    return AudioClassificationEngine(model_path(MODEL), name=MODEL)


def top(engine: AudioClassificationEngine, clips: list[np.ndarray]) -> list[str]:
    items = [AudioItem(clip, speech.RATE, ClassificationOptions(top_k=1)) for clip in clips]
    return [result.labels[0].label for result in engine.forward(items)]


def spoken(voice: speech.Voice, word: str) -> np.ndarray:
    """The word with 0.1 s of silence either side, as a VAD segment would cut it."""
    pad = np.zeros(speech.RATE // 10, dtype=np.float32)
    return np.concatenate([pad, 0.5 * speech.trim(speech.say_espeak(voice, word)), pad])


def test_the_store_records_its_held_out_accuracy_and_models_list_prints_it(model_path):
    model_path(MODEL)
    metrics = store.manifest()[MODEL]["metrics"]
    assert metrics["held_out_accuracy"] >= 0.9
    assert any("en-gb-x-gbcwmd" in voice for voice in metrics["held_out_voices"])
    listing = CliRunner().invoke(cli.app, ["list"], env={"COLUMNS": "250"})
    assert f"{metrics['held_out_accuracy']:.1%} held-out" in listing.output


def test_it_has_the_speech_commands_labels_and_a_one_second_window(kws):
    assert kws.labels == list(speech.LABELS)
    assert kws.window == speech.RATE
    assert kws.model.config.max_source_positions == 50


@pytest.mark.parametrize("voice", UNHEARD, ids=lambda v: v.name)
def test_keywords_from_unheard_voices_are_recognized(kws, voice):
    heard = top(kws, [spoken(voice, word) for word in speech.KEYWORDS])
    assert sum(h == w for h, w in zip(heard, speech.KEYWORDS, strict=True)) >= 9, heard


def test_other_words_are_unknown_and_noise_is_silence(kws):
    voice = UNHEARD[0]
    others = ["cat", "house", "seven", "happy", "tree"]
    heard = top(kws, [spoken(voice, word) for word in others])
    assert heard.count(speech.UNKNOWN) >= 4, heard
    rng = np.random.default_rng(1)
    quiet = [level * speech.noise(rng, speech.RATE) for level in (0.001, 0.003, 0.01)]
    assert top(kws, quiet) == [speech.SILENCE] * 3


def test_batched_equals_one_at_a_time_and_long_clips_are_windowed(kws):
    voice = UNHEARD[1]
    clips = [spoken(voice, "stop"), spoken(voice, "left")]
    long = np.concatenate([np.zeros(speech.RATE, np.float32), clips[0]])
    items = [AudioItem(c, speech.RATE, ClassificationOptions(top_k=3)) for c in [*clips, long]]
    together = kws.forward(items)
    alone = [kws.forward([item])[0] for item in items]
    for a, b in zip(together, alone, strict=True):
        assert [s.label for s in a.labels] == [s.label for s in b.labels]
        np.testing.assert_allclose([s.score for s in a.labels], [s.score for s in b.labels], 1e-4)
    assert kws.windows(len(long)) == [(0, speech.RATE), (len(long) - speech.RATE, len(long))]


def test_a_fresh_store_copies_the_cached_build(model_path, tmp_path, monkeypatch):
    model_path(MODEL)
    monkeypatch.setattr(keyword_spotter, "train", lambda *a: pytest.fail("it trained again"))
    assert store.build_one(MODEL, tmp_path)
    built = json.loads((tmp_path / MODEL / store.METRICS).read_text())
    assert built == store.manifest()[MODEL]["metrics"]


def test_without_espeak_ng_the_build_names_what_is_missing(tmp_path, monkeypatch):
    monkeypatch.setattr(keyword_spotter, "CACHE", tmp_path / "cache")
    monkeypatch.setattr(speech.shutil, "which", lambda name: None)
    with pytest.raises(store.BuildError, match="apt-get install -y espeak-ng"):
        store.build_one(MODEL, tmp_path / "store")
