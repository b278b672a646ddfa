"""segments.py on synthetic probabilities: exact segments, and agreement with Silero's own."""

from __future__ import annotations

import numpy as np
import pytest
from sonaray_client.types import VadOptions

from deployments.tasks.segments import probabilities_to_segments

FRAME = 0.1
BARE = VadOptions(min_speech_duration_s=0.0, min_silence_duration_s=0.0, speech_pad_s=0.0)


def spans(probs, options=BARE, duration=None, labels=None):
    probs = np.asarray(probs, dtype=float)
    duration = len(probs) * FRAME if duration is None else duration
    segments = probabilities_to_segments(probs, FRAME, options, duration, labels)
    return [(s.start, s.end) for s in segments]


def test_frames_above_threshold_become_one_segment():
    assert spans([0, 0, 1, 1, 1, 1, 0, 0, 0, 0]) == [(0.2, 0.6)]


def test_hysteresis_keeps_speech_until_below_threshold_minus_015():
    # 0.4 is under the 0.5 start threshold but above the 0.35 end threshold.
    assert spans([0, 0.6, 0.4, 0.4, 0.3, 0.1, 0]) == [(0.1, 0.4)]


def test_probabilities_between_the_thresholds_never_start_speech():
    assert spans([0.4, 0.45, 0.49, 0.4, 0.0]) == []


def test_short_silence_does_not_split_a_segment():
    probs = [1, 1, 1, 0, 1, 1, 1, 0, 0, 0, 0, 0]
    assert spans(probs) == [(0.0, 0.3), (0.4, 0.7)]
    assert spans(probs, BARE.model_copy(update={"min_silence_duration_s": 0.2})) == [(0.0, 0.7)]


def test_segments_shorter_than_min_speech_are_dropped():
    options = BARE.model_copy(update={"min_speech_duration_s": 0.25})
    assert spans([0, 1, 0, 0, 0, 1, 1, 1, 1, 0], options) == [(0.5, 0.9)]


def test_padding_widens_segments_and_splits_short_gaps():
    probs = [0] * 5 + [1] * 5 + [0] * 2 + [1] * 5 + [0] * 3
    padded = BARE.model_copy(update={"speech_pad_s": 0.05})
    assert spans(probs, padded) == [(0.45, 1.05), (1.15, 1.75)]
    # A 0.2 s gap cannot hold two 0.15 s pads: each neighbour gets half of it.
    wide = BARE.model_copy(update={"speech_pad_s": 0.15})
    assert spans(probs, wide) == [(0.35, 1.1), (1.1, 1.85)]


def test_segments_are_clamped_to_the_audio():
    padded = BARE.model_copy(update={"speech_pad_s": 0.1})
    # Four frames cover 0.4 s but the clip is 0.35 s: a segment open at the end stops there.
    assert spans([1, 1, 1, 0.9], padded, duration=0.35) == [(0.0, 0.35)]


def test_score_is_the_mean_probability_and_speaker_the_majority_label():
    probs = np.array([0, 0.6, 0.8, 1.0, 0, 0])
    labels = ["a", "b", "b", "a", "a", "a"]
    (segment,) = probabilities_to_segments(probs, FRAME, BARE, 0.6, labels)
    assert segment.score == pytest.approx(0.8)
    assert segment.speaker == "b"
    (unlabelled,) = probabilities_to_segments(probs, FRAME, BARE, 0.6)
    assert unlabelled.speaker is None


def test_no_frames_no_segments_and_label_count_must_match():
    assert spans([], duration=0.0) == []
    with pytest.raises(ValueError, match="frame labels"):
        probabilities_to_segments(np.ones(3), FRAME, BARE, 0.3, ["a"])


@pytest.mark.parametrize("seed", range(5))
def test_agrees_with_silero_get_speech_timestamps(seed):
    from silero_vad.utils_vad import get_speech_timestamps_from_probs

    rng = np.random.default_rng(seed)
    for _ in range(40):
        n = int(rng.integers(1, 200))
        probs = np.clip(np.cumsum(rng.normal(0, 0.15, n)) + rng.uniform(0, 1), 0, 1)
        samples = n * 512 - int(rng.integers(0, 512))
        ms = {k: int(rng.choice([0, 100, 250])) for k in ("speech", "silence", "pad")}
        threshold = float(rng.choice([0.3, 0.5, 0.7]))
        expected = get_speech_timestamps_from_probs(
            list(probs),
            threshold=threshold,
            min_speech_duration_ms=ms["speech"],
            min_silence_duration_ms=ms["silence"],
            speech_pad_ms=ms["pad"],
            audio_length_samples=samples,
        )
        options = VadOptions(
            threshold=threshold,
            min_speech_duration_s=ms["speech"] / 1000,
            min_silence_duration_s=ms["silence"] / 1000,
            speech_pad_s=ms["pad"] / 1000,
        )
        got = probabilities_to_segments(probs, 512 / 16000, options, samples / 16000)
        assert len(got) == len(expected)
        for ours, theirs in zip(got, expected, strict=True):
            # Silero works in whole samples, we round to milliseconds.
            assert ours.start == pytest.approx(theirs["start"] / 16000, abs=1.1e-3)
            assert ours.end == pytest.approx(theirs["end"] / 16000, abs=1.1e-3)
