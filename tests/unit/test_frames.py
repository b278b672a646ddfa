"""FrameClassificationEngine on tiny wav2vec2 VAD and speaker heads: frames -> segments."""

from __future__ import annotations

import numpy as np
import pytest
from audio_task_fixtures import BAD_AUDIO, SR, clips, items, wav2vec2_frames
from sonaray_client.types import SpeechSegments, VadOptions

from deployments.errors import ConfigError, InvalidRequest
from deployments.models.builders.tiny_audio import SPEAKER_LABELS
from deployments.protocol import AudioItem
from deployments.tasks.base import Engine
from deployments.tasks.frames import FrameClassificationEngine
from deployments.tasks.registry import load_engine
from deployments.tasks.vad_stream import VadBlock

# Thresholds inside each random head's spread of speech probabilities (VAD 0.1-0.9;
# speakers, where speech is 1 - p(non_speech) of four labels, 0.7-0.98): several segments.
CHOPPY = {
    name: VadOptions(threshold=threshold, min_speech_duration_s=0.0, min_silence_duration_s=0.0)
    for name, threshold in (("vad", 0.5), ("speakers", 0.94))
}


@pytest.fixture(scope="module")
def vad(model_path) -> FrameClassificationEngine:
    return FrameClassificationEngine(
        model_path("tiny-wav2vec2-vad"), name="tiny-vad", max_audio_seconds=3.0
    )


@pytest.fixture(scope="module")
def speakers(model_path) -> FrameClassificationEngine:
    return FrameClassificationEngine(
        model_path("tiny-wav2vec2-speakers"), name="tiny-speakers", max_audio_seconds=3.0
    )


def test_loads_through_the_registry(model_path):
    engine = load_engine("frames", "transformers", model_path("tiny-wav2vec2-vad"), name="v")
    assert isinstance(engine, Engine)
    assert (engine.task, engine.sampling_rate, engine.name) == ("frames", SR, "v")


def test_probabilities_cover_each_clip_own_frames_only(vad):
    audios = clips(1.0, 0.3, 2.1)
    for audio, probs in zip(audios, vad.probabilities(audios), strict=True):
        assert probs.shape == (wav2vec2_frames(len(audio)), 2)
        np.testing.assert_allclose(probs.sum(axis=-1), 1.0, atol=1e-6)


@pytest.mark.parametrize("engine", ["vad", "speakers"])
def test_batched_equals_one_at_a_time(request, engine):
    options, engine = CHOPPY[engine], request.getfixturevalue(engine)
    audios = clips(1.0, 0.3, 2.1, 0.7)
    batched_probs = engine.probabilities(audios)
    for audio, probs in zip(audios, batched_probs, strict=True):
        np.testing.assert_allclose(probs, engine.probabilities([audio])[0], atol=1e-5)
    batched = engine.forward(items(audios, options))
    assert batched == [engine.forward(items([audio], options))[0] for audio in audios]
    assert sum(len(r.segments) for r in batched) > len(audios)


@pytest.mark.parametrize("engine", ["vad", "speakers"])
def test_segments_are_ordered_and_inside_the_clip(request, engine):
    options, engine = CHOPPY[engine], request.getfixturevalue(engine)
    audio = clips(3.0)
    result = engine.forward(items(audio, options))[0]
    assert len(result.segments) > 3
    assert isinstance(result, SpeechSegments)
    assert result.duration == pytest.approx(3.0) and result.model == engine.name
    previous_end = 0.0
    for segment in result.segments:
        assert previous_end <= segment.start < segment.end <= result.duration
        # Without a minimum silence a segment ends at its first frame under threshold - 0.15.
        assert options.threshold - 0.15 <= segment.score <= 1.0
        previous_end = segment.end


def test_long_audio_is_chunked_onto_the_clip_frame_grid(model_path):
    engine = FrameClassificationEngine(
        model_path("tiny-wav2vec2-vad"), name="v", chunk_length_s=1.0, stride_length_s=0.2
    )
    audio = clips(3.3)
    assert len(engine.chunker.chunks(len(audio[0]))) > 2
    (probs,) = engine.probabilities(audio)
    assert probs.shape == (wav2vec2_frames(len(audio[0])), 2)
    segments = engine.forward(items(audio, CHOPPY["vad"]))[0].segments
    assert len(segments) > 3 and segments[-1].end <= 3.3


def test_threshold_decides_what_is_speech(vad):
    audio = clips(1.5)
    everything = VadOptions(threshold=0.01, speech_pad_s=0.0)
    (whole,) = vad.forward(items(audio, everything))[0].segments
    assert (whole.start, whole.end) == (0.0, 1.5)
    assert vad.forward(items(audio, VadOptions(threshold=0.99)))[0].segments == []


def test_speaker_heads_name_the_majority_speaker_of_each_segment(speakers, vad):
    audio = clips(3.0)
    (probs,) = speakers.probabilities(audio)
    assert probs.shape[1] == len(SPEAKER_LABELS)
    unpadded = CHOPPY["speakers"].model_copy(update={"speech_pad_s": 0.0})
    result = speakers.forward(items(audio, unpadded))[0]
    assert len({s.speaker for s in result.segments}) > 1
    for segment in result.segments:
        # Unpadded segments start and end on 20 ms frame edges: recover their frames.
        frames = probs[round(segment.start / 0.02) : round(segment.end / 0.02)]
        votes = np.bincount(frames[:, 1:].argmax(axis=-1), minlength=3)
        assert votes[SPEAKER_LABELS.index(segment.speaker) - 1] == votes.max()
    vad_segments = vad.forward(items(audio, CHOPPY["vad"]))[0].segments
    assert vad_segments and all(s.speaker is None for s in vad_segments)


@pytest.mark.parametrize(("audio", "rate", "error"), BAD_AUDIO)
def test_bad_audio_raises_typed_errors(speakers, audio, rate, error):
    with pytest.raises(error):
        speakers.forward([*items(clips(0.5), VadOptions()), AudioItem(audio, rate, VadOptions())])


def test_a_head_without_the_non_speech_label_is_a_config_error(model_path):
    with pytest.raises(ConfigError, match="silence"):
        FrameClassificationEngine(
            model_path("tiny-wav2vec2-vad"), name="v", non_speech_label="silence"
        )


def test_refuses_live_stream_blocks_with_a_clear_error(vad):
    block = VadBlock(np.zeros(512, np.float32), SR)
    with pytest.raises(InvalidRequest, match="cannot score a live stream.*Silero"):
        vad.forward([block])
