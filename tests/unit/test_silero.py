"""Silero VAD engine on the real weights, with Piper speech whose boundaries are known."""

from __future__ import annotations

import numpy as np
import pytest
from sonaray_client.types import SpeechSegments, VadOptions
from speech import SENTENCES, long_clip, synthesize

from deployments.errors import InvalidAudio, PayloadTooLarge
from deployments.protocol import AudioItem
from deployments.tasks.base import Engine
from deployments.tasks.registry import load_engine
from deployments.tasks.silero_vad import SileroVadEngine
from deployments.tasks.vad_stream import VadBlock

pytestmark = pytest.mark.slow

# The clip's sentences are 1-2 s apart; their commas pause for less than this.
SENTENCE_GAP = VadOptions(min_silence_duration_s=0.5)


@pytest.fixture(scope="module")
def vad(model_path) -> SileroVadEngine:
    return SileroVadEngine(model_path("silero-vad"), name="silero-vad")


def run(vad: SileroVadEngine, audio: np.ndarray, options: VadOptions = SENTENCE_GAP):
    return vad.forward([AudioItem(audio, 16000, options)])[0]


def test_loads_through_the_registry_as_a_frames_engine(model_path):
    engine = load_engine("frames", "silero", model_path("silero-vad"), name="vad")
    assert isinstance(engine, Engine)
    assert (engine.task, engine.sampling_rate, engine.name) == ("frames", 16000, "vad")


def test_finds_each_sentence_of_a_long_clip(vad):
    audio, truth = long_clip(90)
    result = run(vad, audio)
    assert isinstance(result, SpeechSegments)
    assert result.duration == pytest.approx(90.0)
    assert result.model == "silero-vad"
    assert len(result.segments) == len(truth)
    for segment, (start, end, text) in zip(result.segments, truth, strict=True):
        assert segment.start == pytest.approx(start, abs=0.3), text
        assert segment.end == pytest.approx(end, abs=0.3), text
        assert segment.label == "speech"
        assert segment.score > 0.5


@pytest.mark.parametrize("amplitude", [0.0, 0.003, 0.01])
def test_no_speech_in_silence_or_low_noise(vad, amplitude):
    noise = np.random.default_rng(7).standard_normal(5 * 16000).astype(np.float32) * amplitude
    assert run(vad, noise, VadOptions()).segments == []


def test_batched_equals_one_at_a_time(vad):
    audio, _ = long_clip(90)
    clips = [audio[: 20 * 16000], synthesize(SENTENCES[1]), audio[30 * 16000 : 41 * 16000 + 77]]
    options = [SENTENCE_GAP, VadOptions(), VadOptions(speech_pad_s=0.2)]
    items = [AudioItem(c, 16000, o) for c, o in zip(clips, options, strict=True)]
    batched = vad.forward(items)
    assert batched == [vad.forward([item])[0] for item in items]
    assert all(result.segments for result in batched)


def test_default_options_split_a_sentence_at_its_pauses(vad):
    # "Hello world, this is ..." pauses at the comma for more than the default 0.1 s.
    sentence = synthesize(SENTENCES[0])
    assert len(run(vad, sentence, VadOptions()).segments) >= 2
    assert len(run(vad, sentence).segments) == 1


def test_options_shape_the_segments(vad):
    audio, truth = long_clip(30)
    base = run(vad, audio).segments
    padded = run(vad, audio, SENTENCE_GAP.model_copy(update={"speech_pad_s": 0.25})).segments
    assert [p.start for p in padded] == pytest.approx([b.start - 0.22 for b in base], abs=0.01)
    merged = run(vad, audio, VadOptions(min_silence_duration_s=3.0)).segments
    assert len(merged) == 1
    assert merged[0].start == pytest.approx(truth[0][0], abs=0.3)
    assert merged[0].end == pytest.approx(truth[-1][1], abs=0.3)
    assert run(vad, audio, SENTENCE_GAP.model_copy(update={"min_speech_duration_s": 5.0})) == (
        SpeechSegments(segments=[], duration=30.0, model="silero-vad")
    )


def test_a_clip_shorter_than_one_window_is_scored(vad):
    result = run(vad, np.zeros(100, dtype=np.float32))
    assert result.segments == []
    assert result.duration == pytest.approx(100 / 16000)


@pytest.mark.parametrize(
    ("item", "error"),
    [
        (AudioItem(np.zeros(0, dtype=np.float32), 16000, VadOptions()), InvalidAudio),
        (AudioItem(np.zeros(8000, dtype=np.float32), 8000, VadOptions()), InvalidAudio),
        (AudioItem(np.zeros((2, 8000), dtype=np.float32), 16000, VadOptions()), InvalidAudio),
        (AudioItem(np.full(8000, np.nan, dtype=np.float32), 16000, VadOptions()), InvalidAudio),
    ],
    ids=["empty", "8khz", "stereo", "nan"],
)
def test_unusable_audio_is_a_typed_error(vad, item, error):
    with pytest.raises(error) as caught:
        vad.forward([AudioItem(np.zeros(16000, dtype=np.float32), 16000, VadOptions()), item])
    assert caught.value.status == 400


def test_audio_over_the_limit_is_too_large(model_path):
    vad = SileroVadEngine(model_path("silero-vad"), name="vad", max_seconds=10.0)
    with pytest.raises(PayloadTooLarge):
        vad.forward([AudioItem(np.zeros(11 * 16000, dtype=np.float32), 16000, VadOptions())])


def test_blocks_of_a_live_stream_score_like_the_whole_clip(vad):
    audio, _ = long_clip(90)
    audio = audio[: 512 * 600]
    fresh = vad.forward([VadBlock(np.zeros(0, np.float32), 16000)])[0]
    assert fresh.probabilities.size == 0
    state, probs = fresh.state, []
    for start in range(0, audio.size, 512 * 6):
        scores = vad.forward([VadBlock(audio[start : start + 512 * 6], 16000, state)])[0]
        state = scores.state
        probs.append(scores.probabilities)
    np.testing.assert_allclose(np.concatenate(probs), vad.probabilities(audio), atol=1e-5)


def test_a_block_must_be_whole_windows_at_the_model_rate(vad):
    with pytest.raises(InvalidAudio, match="whole number"):
        vad.forward([VadBlock(np.zeros(700, np.float32), 16000)])
    with pytest.raises(InvalidAudio, match="16000 Hz"):
        vad.forward([VadBlock(np.zeros(512, np.float32), 24000)])
