"""Realtime sessions' pure parts: turn edges from probabilities, the input buffer, the
wire checks on client events."""

from __future__ import annotations

import base64

import numpy as np
import pytest

from deployments.errors import InvalidRequest, PayloadTooLarge
from deployments.router.realtime.events import decode_pcm16, encode_pcm16, parse_session_patch
from deployments.router.realtime.input_audio import InputAudio
from deployments.router.realtime.turns import (
    SpeechStarted,
    SpeechStopped,
    TurnDetector,
    TurnSettings,
)

RATE, WINDOW = 16000, 512
MS_PER_WINDOW = WINDOW * 1000 / RATE  # 32 ms


def windows(*runs: tuple[float, int]) -> np.ndarray:
    """Probabilities: ``(p, n)`` runs of n windows at probability p."""
    return np.concatenate([np.full(n, p, np.float32) for p, n in runs])


def feed_in_blocks(detector: TurnDetector, probs: np.ndarray, block: int = 6) -> list:
    edges = []
    for start in range(0, len(probs), block):
        edges += detector.feed(probs[start : start + block], start * WINDOW)
    return edges


def test_a_turn_starts_with_its_prefix_and_stops_after_the_silence():
    settings = TurnSettings(threshold=0.5, prefix_padding_ms=320, silence_duration_ms=512)
    detector = TurnDetector(settings, RATE, WINDOW)
    probs = windows((0.05, 30), (0.9, 50), (0.05, 30))
    edges = feed_in_blocks(detector, probs)
    assert edges == [
        SpeechStarted(start=(30 - 10) * WINDOW, speech=30 * WINDOW),
        SpeechStopped(end=(80 + 16) * WINDOW, speech_end=80 * WINDOW),
    ]


def test_pauses_shorter_than_the_silence_and_wavering_do_not_end_a_turn():
    detector = TurnDetector(TurnSettings(silence_duration_ms=500), RATE, WINDOW)
    # a 320 ms pause, then probabilities between the two thresholds for a second
    probs = windows((0.0, 10), (0.9, 20), (0.0, 10), (0.9, 20), (0.4, 31), (0.0, 5))
    edges = feed_in_blocks(detector, probs)
    assert [type(e) for e in edges] == [SpeechStarted]
    assert detector.speaking


def test_a_blip_shorter_than_min_speech_is_no_turn():
    detector = TurnDetector(TurnSettings(min_speech_ms=100), RATE, WINDOW)
    assert feed_in_blocks(detector, windows((0.0, 10), (0.9, 2), (0.0, 40))) == []


def test_reset_forgets_the_turn_and_ignores_audio_before_the_floor():
    detector = TurnDetector(TurnSettings(), RATE, WINDOW)
    detector.feed(windows((0.9, 10)), 0)
    assert detector.speaking
    detector.reset(20 * WINDOW)
    assert not detector.speaking
    assert detector.feed(windows((0.9, 10)), 10 * WINDOW) == []
    (started,) = detector.feed(windows((0.9, 10)), 20 * WINDOW)
    assert started.start == 20 * WINDOW  # the prefix never reaches into committed audio


def test_input_audio_resamples_a_stream_and_keeps_positions():
    buffer = InputAudio(24000, 16000)
    tone = np.sin(np.arange(24000 * 2) * 2 * np.pi * 440 / 24000).astype(np.float32) * 0.5
    for start in range(0, tone.size, 2400):
        buffer.append(tone[start : start + 2400])
    assert abs(buffer.total - 32000) < 200  # the resampler holds back a few ms
    buffer.drop_before(16000)
    assert buffer.base == 16000
    kept = buffer.slice(0, buffer.total)
    assert kept.size == buffer.total - 16000
    assert np.abs(kept).max() == pytest.approx(0.5, abs=0.02)


def test_pcm16_round_trip_and_clear_errors():
    audio = np.array([0.0, 0.5, -0.5, 0.999], np.float32)
    decoded = decode_pcm16({"audio": encode_pcm16(audio)}, 1000)
    np.testing.assert_allclose(decoded, audio, atol=1e-4)
    with pytest.raises(InvalidRequest, match="not valid base64"):
        decode_pcm16({"audio": "%%%"}, 1000)
    with pytest.raises(InvalidRequest, match="odd number"):
        decode_pcm16({"audio": base64.b64encode(b"abc").decode()}, 1000)
    with pytest.raises(PayloadTooLarge, match="limit is 8"):
        decode_pcm16({"audio": encode_pcm16(audio)}, 8)


@pytest.mark.parametrize(
    ("session", "message"),
    [
        ({"audio": {"input": {"format": {"type": "audio/pcmu"}}}}, "audio/pcmu at 24000 Hz"),
        ({"audio": {"input": {"format": {"type": "audio/pcm", "rate": 11025}}}}, "11025 Hz"),
        ({"audio": {"input": {"turn_detection": {"type": "semantic_vad"}}}}, "turn_detection"),
        ({"audio": {"input": {"turn_detection": {"threshold": 2}}}}, "threshold"),
    ],
)
def test_session_updates_that_cannot_be_served_are_clear_errors(session, message):
    with pytest.raises(InvalidRequest, match=message):
        parse_session_patch({"type": "session.update", "session": session})
