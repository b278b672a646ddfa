"""Clips and bad inputs shared by the ctc, classify and frames engine tests."""

from __future__ import annotations

import numpy as np
import pytest

from deployments.errors import InvalidAudio, PayloadTooLarge
from deployments.protocol import AudioItem

SR = 16000


def clips(*seconds: float, seed: int = 0) -> list[np.ndarray]:
    """Noise clips of the given lengths (random weights: content does not matter)."""
    rng = np.random.default_rng(seed)
    return [rng.normal(0, 0.3, round(s * SR)).astype(np.float32) for s in seconds]


def wav2vec2_frames(samples: int) -> int:
    """Frames wav2vec2's conv stack gives: one per 20 ms after a 25 ms receptive field."""
    return (samples - 400) // 320 + 1


def nan_clip() -> np.ndarray:
    audio = clips(0.5)[0]
    audio[100] = np.nan
    return audio


BAD_AUDIO = [
    pytest.param(clips(0.5)[0], 8000, InvalidAudio, id="wrong-rate"),
    pytest.param(np.zeros(0, np.float32), SR, InvalidAudio, id="empty"),
    pytest.param(np.zeros(100, np.float32), SR, InvalidAudio, id="shorter-than-a-frame"),
    pytest.param(nan_clip(), SR, InvalidAudio, id="nan"),
    pytest.param(np.zeros((2, SR), np.float32), SR, InvalidAudio, id="stereo"),
    pytest.param(clips(3.5)[0], SR, PayloadTooLarge, id="over-max-audio-seconds"),
]


def items(audios: list[np.ndarray], options) -> list[AudioItem]:
    return [AudioItem(audio, SR, options) for audio in audios]
