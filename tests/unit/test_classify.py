"""AudioClassificationEngine on tiny AST and wav2vec2-ks: top-k, batching, windowing, errors."""

from __future__ import annotations

import numpy as np
import pytest
from audio_task_fixtures import BAD_AUDIO, SR, clips, items
from sonaray_client.types import Classification, ClassificationOptions

from deployments.errors import ConfigError
from deployments.models.builders.tiny_audio import KS_LABELS, SOUND_EVENTS
from deployments.protocol import AudioItem
from deployments.tasks.base import Engine
from deployments.tasks.classify import AudioClassificationEngine
from deployments.tasks.registry import load_engine

ALL = ClassificationOptions(top_k=100)


@pytest.fixture(scope="module")
def ast(model_path) -> AudioClassificationEngine:
    return AudioClassificationEngine(model_path("tiny-ast"), name="tiny-ast", max_audio_seconds=2.5)


@pytest.fixture(scope="module")
def ks(model_path) -> AudioClassificationEngine:
    return AudioClassificationEngine(model_path("tiny-wav2vec2-ks"), name="ks", window_s=0.5)


def scores(result: Classification) -> dict[str, float]:
    return {s.label: s.score for s in result.labels}


def test_loads_through_the_registry(model_path):
    engine = load_engine("classify", "transformers", model_path("tiny-ast"), name="a")
    assert isinstance(engine, Engine)
    assert (engine.task, engine.sampling_rate, engine.name) == ("classify", SR, "a")


@pytest.mark.parametrize("engine", ["ast", "ks"])
def test_batched_equals_one_at_a_time(request, engine):
    engine = request.getfixturevalue(engine)
    audios = clips(0.4, 1.0, 0.8, 2.3)
    batched = engine.forward(items(audios, ALL))
    single = [engine.forward(items([audio], ALL))[0] for audio in audios]
    for b, s in zip(batched, single, strict=True):
        assert [x.label for x in b.labels] == [x.label for x in s.labels]
        np.testing.assert_allclose(list(scores(b).values()), list(scores(s).values()), atol=1e-6)


@pytest.mark.parametrize(("engine", "labels"), [("ast", SOUND_EVENTS), ("ks", KS_LABELS)])
def test_top_k_labels_with_softmax_scores(request, engine, labels):
    engine = request.getfixturevalue(engine)
    audio = clips(0.6)
    top3_options = ClassificationOptions(top_k=3)
    full, top3 = engine.forward(items(audio, ALL) + items(audio, top3_options))
    assert isinstance(full, Classification) and full.model == engine.name
    assert sorted(scores(full)) == sorted(labels)
    assert sum(scores(full).values()) == pytest.approx(1.0, abs=1e-5)
    values = [s.score for s in full.labels]
    assert values == sorted(values, reverse=True)
    assert top3.labels == full.labels[:3]


def test_ast_window_is_its_max_length_frames(ast):
    # 100 fbank frames of 10 ms hop and 25 ms width.
    assert ast.window == 99 * 160 + 400
    spans = ast.windows(round(2.5 * SR))
    assert spans[0][0] == 0 and spans[-1][1] == round(2.5 * SR)
    assert all(end - start == ast.window for start, end in spans)


@pytest.mark.parametrize(("engine", "windows"), [("ast", 3), ("ks", 5)])
def test_long_clip_scores_are_the_mean_over_its_windows(request, engine, windows):
    engine = request.getfixturevalue(engine)
    audio = clips(2.5)[0]
    spans = engine.windows(len(audio))
    assert len(spans) == windows
    whole = scores(engine.forward(items([audio], ALL))[0])
    per_window = [scores(r) for r in engine.forward(items([audio[s:e] for s, e in spans], ALL))]
    for label, score in whole.items():
        assert score == pytest.approx(np.mean([w[label] for w in per_window]), abs=1e-6)


def test_multi_label_scores_are_sigmoids(model_path):
    engine = AudioClassificationEngine(model_path("tiny-ast"), name="a", multi_label=True)
    audio = clips(0.8)
    (logits,) = engine.logits(audio)
    result = scores(engine.forward(items(audio, ALL))[0])
    expected = 1 / (1 + np.exp(-logits))
    for i, label in enumerate(SOUND_EVENTS):
        assert result[label] == pytest.approx(expected[i], abs=1e-6)


@pytest.mark.parametrize(("audio", "rate", "error"), BAD_AUDIO)
def test_bad_audio_raises_typed_errors(ast, audio, rate, error):
    with pytest.raises(error):
        ast.forward([*items(clips(0.5), ALL), AudioItem(audio, rate, ALL)])


def test_windows_that_would_skip_audio_are_config_errors(model_path):
    with pytest.raises(ConfigError, match="longer than tiny-ast"):
        AudioClassificationEngine(model_path("tiny-ast"), name="tiny-ast", window_s=5.0)
    with pytest.raises(ConfigError, match="skipped"):
        AudioClassificationEngine(model_path("tiny-ast"), name="a", window_s=0.5, hop_s=0.8)


def test_overlapping_windows_cover_the_clip(model_path):
    engine = AudioClassificationEngine(model_path("tiny-ast"), name="a", window_s=0.5, hop_s=0.25)
    spans = engine.windows(round(1.6 * SR))
    assert spans[0] == (0, 8000) and spans[-1] == (17600, 25600)
    assert all(b[0] - a[0] <= 4000 for a, b in zip(spans, spans[1:], strict=False))
