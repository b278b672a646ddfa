"""Time for Whisper: long-audio chunk plans, energy gating, segments from timestamp tokens, words.

Word timings follow OpenAI Whisper's ``timing.find_alignment``: cross-attention of the
alignment heads over the text tokens, normalized, median-filtered, then dynamic time
warping against the 20 ms encoder frames.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

FRAME_SECONDS = 0.02  # one encoder position, and one timestamp-token step
MEDIAN_FILTER_WIDTH = 7


@dataclass
class TokenSpan:
    """A run of decoded tokens between two timestamps, times relative to its chunk."""

    start: float
    end: float
    tokens: list[int]
    first: int  # index of ``tokens[0]`` in the chunk's generated tokens


def _frame_rms(audio: np.ndarray, frame: int) -> np.ndarray:
    usable = len(audio) // frame * frame
    if usable == 0:
        return np.sqrt(np.mean(np.square(audio), keepdims=True))
    return np.sqrt(np.mean(np.square(audio[:usable].reshape(-1, frame)), axis=1))


def peak_dbfs(audio: np.ndarray, sampling_rate: int) -> float:
    """Loudest 20 ms frame in dB relative to full scale (-inf for digital silence)."""
    peak = float(_frame_rms(audio, int(sampling_rate * FRAME_SECONDS)).max())
    return 20.0 * np.log10(peak) if peak > 0 else float("-inf")


def _quietest_run_middle(rms: np.ndarray) -> int:
    """Index of the middle frame of the longest run of near-minimum frames."""
    quiet = rms <= rms.min() + 0.1 * (np.median(rms) - rms.min())
    edges = np.diff(np.concatenate([[0], quiet.astype(np.int8), [0]]))
    starts, ends = np.flatnonzero(edges == 1), np.flatnonzero(edges == -1)
    longest = int(np.argmax(ends - starts))
    return int((starts[longest] + ends[longest]) // 2)


def plan_chunks(
    audio: np.ndarray, sampling_rate: int, *, max_seconds: float = 30.0, search_seconds: float = 6.0
) -> list[tuple[int, int]]:
    """Split audio into <= ``max_seconds`` chunks, cutting inside the longest quiet stretch.

    The cut is searched in the last ``search_seconds`` of each window and placed in the
    middle of a pause, because Whisper drops a sentence that runs up to a chunk's end.
    """
    limit = int(max_seconds * sampling_rate)
    frame = int(sampling_rate * FRAME_SECONDS)
    search = int(search_seconds * sampling_rate)
    spans: list[tuple[int, int]] = []
    start = 0
    while len(audio) - start > limit:
        lo = start + limit - search
        rms = _frame_rms(audio[lo : start + limit], frame)
        cut = lo + _quietest_run_middle(rms) * frame + frame // 2
        spans.append((start, cut))
        start = cut
    spans.append((start, len(audio)))
    return spans


def sound_runs(audio: np.ndarray, sampling_rate: int, *, floor_db: float) -> np.ndarray:
    """(start, end) seconds of audible stretches; pauses under 150 ms do not split a run.

    Audible means within 35 dB of the loudest 20 ms frame and above ``floor_db``.
    """
    frame = int(sampling_rate * FRAME_SECONDS)
    rms = _frame_rms(audio, frame)
    loud = rms >= max(rms.max() * 10 ** (-35 / 20), 10 ** (floor_db / 20))
    edges = np.diff(np.concatenate([[0], loud.astype(np.int8), [0]]))
    runs = np.stack([np.flatnonzero(edges == 1), np.flatnonzero(edges == -1)], 1) * FRAME_SECONDS
    merged: list[list[float]] = []
    for start, end in runs:
        if merged and start - merged[-1][1] < 0.15:
            merged[-1][1] = end
        else:
            merged.append([start, end])
    return np.array(merged).reshape(-1, 2)


def snap_to_sound(runs: np.ndarray, start: float, end: float) -> tuple[float, float]:
    """Move a segment's edges to the audible runs that lie mostly inside it.

    Whisper's timestamp tokens put segment edges anywhere in the pause around a
    sentence, sometimes a little inside the next one.
    """
    inside = np.clip(np.minimum(runs[:, 1], end) - np.maximum(runs[:, 0], start), 0, None)
    kept = runs[inside > 0.5 * (runs[:, 1] - runs[:, 0])]
    if kept.size == 0:
        return start, end
    return float(kept[0, 0]), float(kept[-1, 1])


def split_timestamped(
    tokens: list[int], *, timestamp_begin: int, eot: int, duration: float
) -> list[TokenSpan]:
    """Segments from ``<|t0|> text <|t1|><|t1|> text <|t2|>``; an open last one ends at the end."""
    spans: list[TokenSpan] = []
    start: float | None = None
    text: list[int] = []
    first = 0
    for i, token in enumerate(tokens):
        if token >= timestamp_begin:
            t = (token - timestamp_begin) * FRAME_SECONDS
            if start is not None and text:
                spans.append(TokenSpan(start, max(t, start), text, first))
                start, text = None, []
            elif start is None:
                start = t
        elif token < eot:
            if not text:
                first = i
                if start is None:
                    start = spans[-1].end if spans else 0.0
            text.append(token)
    if text:
        spans.append(TokenSpan(start or 0.0, max(duration, start or 0.0), text, first))
    # spans that start in the zero padding after the audio are hallucinated
    return [s for s in spans if s.start < duration]


@dataclass
class WordSpan:
    """One word: its tokens' indices into the aligned text tokens, times within the chunk."""

    text: str
    start: float
    end: float
    probability: float
    token_range: tuple[int, int]


def group_words(pieces: list[str]) -> list[tuple[int, int]]:
    """Token index ranges of words: a token opening with a space starts a new word."""
    ranges: list[tuple[int, int]] = []
    for i, piece in enumerate(pieces):
        if not ranges or piece.startswith(" "):
            ranges.append((i, i + 1))
        else:
            ranges[-1] = (ranges[-1][0], i + 1)
    return ranges


def align_words(
    attention: np.ndarray,
    pieces: list[str],
    token_probs: np.ndarray,
    num_frames: int,
) -> list[WordSpan]:
    """Word times from alignment-head attention (heads, text tokens + 1, frames) by DTW.

    ``pieces`` are the decoded text tokens, ``token_probs`` their probabilities, and
    ``num_frames`` the encoder positions that hold real audio.
    """
    import torch
    from transformers.models.whisper.generation_whisper import (
        _dynamic_time_warping,
        _median_filter,
    )

    if not pieces:
        return []
    weights = torch.from_numpy(attention[:, :, : max(1, num_frames)]).float()
    std, mean = torch.std_mean(weights, dim=-2, keepdim=True, unbiased=False)
    weights = _median_filter((weights - mean) / (std + 1e-6), MEDIAN_FILTER_WIDTH)
    matrix = weights.mean(dim=0).double().numpy()
    text_idx, time_idx = _dynamic_time_warping(-matrix)
    return words_from_path(text_idx, time_idx, pieces, token_probs)


def words_from_path(
    text_idx: np.ndarray, time_idx: np.ndarray, pieces: list[str], token_probs: np.ndarray
) -> list[WordSpan]:
    """Words from a DTW path of (text token, encoder frame) steps, as OpenAI Whisper does."""
    if not pieces or len(text_idx) == 0:
        return []
    jumps = np.pad(np.diff(text_idx), (1, 0), constant_values=1).astype(bool)
    jump_times = np.asarray(time_idx)[jumps] * FRAME_SECONDS
    words = []
    for lo, hi in group_words(pieces):
        start = float(jump_times[min(lo, len(jump_times) - 1)])
        end = float(jump_times[min(hi, len(jump_times) - 1)])
        words.append(
            WordSpan(
                text="".join(pieces[lo:hi]).strip(),
                start=start,
                end=max(end, start),
                probability=float(np.mean(token_probs[lo:hi])),
                token_range=(lo, hi),
            )
        )
    return words
