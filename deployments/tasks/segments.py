"""Per-frame speech probabilities -> speech segments, the way Silero's VAD does it.

Hysteresis: speech starts on the first frame at or above ``threshold`` and ends once
the probability has stayed below ``threshold - 0.15`` for ``min_silence_duration_s``;
segments no longer than ``min_speech_duration_s`` are dropped, then each is padded by
``speech_pad_s`` (halving gaps too short for two pads) and clamped to ``[0, duration]``.
Shared by every ``frames`` engine (transformers frame classifiers and Silero).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence

import numpy as np
from sonaray_client.types import SpeechSegment, VadOptions

# Frame arithmetic in float seconds: without a tolerance, 0.1 s of 0.02 s frames is
# 5.000000000000001 frames and a boundary case flips.
_EPS = 1e-9


def _frame_spans(probs: np.ndarray, frame_seconds: float, options: VadOptions) -> list[list[int]]:
    """[start, end) frame spans of speech, before padding; end == len(probs) if still open."""
    neg_threshold = max(options.threshold - 0.15, 0.01)
    spans: list[list[int]] = []
    start: int | None = None
    silence_from: int | None = None
    for i, p in enumerate(probs):
        if p >= options.threshold:
            silence_from = None
            if start is None:
                start = i
            continue
        if start is None or p >= neg_threshold:
            continue
        if silence_from is None:
            silence_from = i
        if (i - silence_from) * frame_seconds + _EPS < options.min_silence_duration_s:
            continue
        spans.append([start, silence_from])
        start = silence_from = None
    if start is not None:
        spans.append([start, len(probs)])
    return spans


def _pad(bounds: list[list[float]], pad: float, duration: float) -> None:
    """Pad each segment in place; a gap shorter than two pads is split between neighbours."""
    for i, seg in enumerate(bounds):
        if i == 0:
            seg[0] = max(0.0, seg[0] - pad)
        if i == len(bounds) - 1:
            seg[1] = min(duration, seg[1] + pad)
            continue
        nxt = bounds[i + 1]
        gap = nxt[0] - seg[1]
        step = gap / 2 if gap < 2 * pad else pad
        seg[1] += step
        nxt[0] = max(0.0, nxt[0] - step)


def probabilities_to_segments(
    probs: np.ndarray,
    frame_seconds: float,
    options: VadOptions,
    duration: float,
    labels: Sequence[str] | None = None,
) -> list[SpeechSegment]:
    """Speech segments (seconds, ms resolution) from per-frame speech probabilities.

    probs: shape (frames,), frame ``i`` covers ``[i, i + 1) * frame_seconds``.
    duration: the audio's length in seconds; a segment still open at the end runs to it.
    labels: optional per-frame speaker names; a segment's ``speaker`` is its most
        frequent one.
    """
    probs = np.asarray(probs, dtype=np.float64).reshape(-1)
    if labels is not None and len(labels) != len(probs):
        raise ValueError(f"{len(labels)} frame labels for {len(probs)} frames")
    spans, bounds = [], []
    for s, e in _frame_spans(probs, frame_seconds, options):
        start, end = s * frame_seconds, duration if e == len(probs) else e * frame_seconds
        if end - start > options.min_speech_duration_s + _EPS:
            spans.append((s, e))
            bounds.append([start, min(end, duration)])
    _pad(bounds, options.speech_pad_s, duration)
    segments = []
    for (s, e), (start, end) in zip(spans, bounds, strict=True):
        speaker = Counter(labels[s:e]).most_common(1)[0][0] if labels is not None else None
        segments.append(
            SpeechSegment(
                start=round(max(0.0, start), 3),
                end=round(min(duration, end), 3),
                score=round(float(probs[s:e].mean()), 4),
                speaker=speaker,
            )
        )
    return segments
