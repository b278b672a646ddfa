"""Execute a pipeline: async calls over task handles, fanning segments out in parallel.

The runner never sees Ray: it gets a ``call(task, model, item)`` coroutine. Segments of
one file are sent concurrently, so the ASR deployment's batch queue packs them with
other requests' work into shared forward passes.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from sonaray_client.types import (
    Classification,
    ClassificationOptions,
    SpeechOptions,
    SpeechSegment,
    SpeechSegments,
    StepTiming,
    Transcription,
    TranscriptionOptions,
    VadOptions,
    WordTiming,
)

from deployments.audio import resample
from deployments.config import StepConfig
from deployments.errors import InvalidRequest
from deployments.tasks.base import AudioItem, TextItem, Waveform

Call = Callable[[str, str | None, Any], Awaitable[Any]]

OPTION_TYPES = {
    "frames": VadOptions,
    "seq2seq": TranscriptionOptions,
    "ctc": TranscriptionOptions,
    "classify": ClassificationOptions,
}


@dataclass
class PipelineState:
    """What the steps so far have produced, starting from the decoded audio."""

    audio: np.ndarray
    sampling_rate: int
    segments: list[SpeechSegment] | None = None
    transcription: Transcription | None = None
    labels: list[Classification] | None = None
    waveform: Waveform | None = None
    steps: list[StepTiming] = field(default_factory=list)


def merge_segments(
    segments: list[SpeechSegment], max_seconds: float, duration: float, margin: float = 0.5
) -> list[tuple[float, float]]:
    """Group consecutive speech segments into chunks of at most ``max_seconds``.

    Groups leave ``margin`` seconds free on each side; each chunk is then widened into
    the silence around it, halfway to its neighbours (as far as ``max_seconds`` allows):
    VAD edges can clip a word's onset or tail, the silence around them cannot.
    """
    limit = max(max_seconds - 2 * margin, max_seconds / 2)
    groups: list[tuple[float, float]] = []
    for seg in segments:
        start, end = seg.start, seg.end
        while end - start > limit:  # one long stretch of speech: cut it
            groups.append((start, start + limit))
            start += limit
        if groups and end - groups[-1][0] <= limit:
            groups[-1] = (groups[-1][0], end)
        else:
            groups.append((start, end))
    chunks = []
    for i, (start, end) in enumerate(groups):
        left = groups[i - 1][1] if i else 0.0
        right = groups[i + 1][0] if i + 1 < len(groups) else duration
        budget = max(0.0, max_seconds - (end - start))
        grow_left = min(max(0.0, start - left) / 2, budget / 2)
        grow_right = min(max(0.0, right - end) / 2, budget - grow_left)
        chunks.append((round(start - grow_left, 3), round(end + grow_right, 3)))
    return chunks


def shift(part: Transcription, offset: float, first_id: int = 0) -> Transcription:
    """A chunk's transcription with its timestamps moved by the chunk's start ``offset``.

    Segments are renumbered from ``first_id``, so the chunks of one file count on.
    """

    def moved(w: WordTiming) -> WordTiming:
        return w.model_copy(update={"start": w.start + offset, "end": w.end + offset})

    segments = [
        seg.model_copy(
            update={
                "id": first_id + i,
                "start": seg.start + offset,
                "end": seg.end + offset,
                "words": [moved(w) for w in seg.words] if seg.words else seg.words,
            }
        )
        for i, seg in enumerate(part.segments)
    ]
    words = [moved(w) for w in part.words] if part.words else part.words
    return part.model_copy(update={"segments": segments, "words": words})


def stitch(parts: list[tuple[float, Transcription]], duration: float) -> Transcription:
    """Join chunk transcriptions, shifting their timestamps by each chunk's start."""
    shifted: list[Transcription] = []
    for offset, part in parts:
        shifted.append(shift(part, offset, sum(len(p.segments) for p in shifted)))
    return join(shifted, duration)


def join(parts: list[Transcription], duration: float) -> Transcription:
    """One transcription of already shifted chunk transcriptions, in order."""
    first = parts[0] if parts else None
    words = [w for p in parts for w in p.words or []]
    return Transcription(
        text=" ".join(p.text.strip() for p in parts if p.text.strip()),
        language=first.language if first else None,
        language_probability=first.language_probability if first else None,
        duration=duration,
        segments=[seg for p in parts for seg in p.segments],
        words=words or None,
        model=first.model if first else None,
    )


async def transcribe_chunks(
    call: Call,
    task: str,
    model: str | None,
    audio: np.ndarray,
    rate: int,
    chunks: list[tuple[float, float]],
    options: TranscriptionOptions,
) -> Transcription:
    """Transcribe each chunk concurrently and stitch the results in order."""
    duration = len(audio) / rate
    if not chunks:
        return Transcription(text="", duration=duration, segments=[], model=model)
    calls = [
        call(task, model, AudioItem(audio[int(s * rate) : int(e * rate)], rate, options))
        for s, e in chunks
    ]
    results = await asyncio.gather(*calls)
    return stitch([(s, r) for (s, _), r in zip(chunks, results, strict=True)], duration)


async def run_step(
    call: Call, step: StepConfig, state: PipelineState, options: dict, chunk_s: float
) -> None:
    """Run one step, reading and extending ``state``."""
    task, model = step.task, step.model
    opts = _options(task, options.get(task))
    if task == "frames":
        result: SpeechSegments = await call(
            task, model, AudioItem(state.audio, state.sampling_rate, opts)
        )
        state.segments = result.segments
    elif task in ("seq2seq", "ctc"):
        if state.segments is None:
            state.transcription = await call(
                task, model, AudioItem(state.audio, state.sampling_rate, opts)
            )
        else:
            chunks = merge_segments(state.segments, chunk_s, len(state.audio) / state.sampling_rate)
            state.transcription = await transcribe_chunks(
                call, task, model, state.audio, state.sampling_rate, chunks, opts
            )
    elif task == "classify":
        spans = [(s.start, s.end) for s in state.segments] if state.segments is not None else [None]
        items = [
            AudioItem(_cut(state.audio, state.sampling_rate, span), state.sampling_rate, opts)
            for span in spans
        ]
        state.labels = list(await asyncio.gather(*(call(task, model, i) for i in items)))
    else:  # tts / generate read the transcript
        text = state.transcription.text if state.transcription else ""
        if not text.strip():
            raise InvalidRequest(
                f"step {task!r} got no text: the audio holds no recognizable speech"
            )
        extra = options.get(task) or {}
        speech = SpeechOptions.model_validate({**extra, "input": text})
        state.waveform = await call(task, model, TextItem(speech))


def _cut(audio: np.ndarray, rate: int, span: tuple[float, float] | None) -> np.ndarray:
    return audio if span is None else audio[int(span[0] * rate) : int(span[1] * rate)]


def _options(task: str, raw: dict | None):
    kind = OPTION_TYPES.get(task)
    if kind is None:
        return None
    try:
        return kind.model_validate(raw or {})
    except ValueError as exc:
        raise InvalidRequest(
            f"bad options for step {task!r}: {exc}", param=f"options.{task}"
        ) from exc


async def run_pipeline(
    call: Call,
    steps: list[StepConfig],
    audio: np.ndarray,
    rate: int,
    options: dict,
    chunk_s: float,
    rates: Callable[[str, str | None], Awaitable[int]],
) -> PipelineState:
    """Run every step in order; each step's wall time is recorded in ``state.steps``."""
    state = PipelineState(audio=audio, sampling_rate=rate)
    for step in steps:
        started = time.perf_counter()
        step_rate = await rates(step.task, step.model)
        if step_rate != state.sampling_rate and step.task not in ("tts", "generate"):
            state.audio = resample(state.audio, state.sampling_rate, step_rate)
            state.sampling_rate = step_rate
        await run_step(call, step, state, options, chunk_s)
        state.steps.append(
            StepTiming(
                step=step.task,
                task=step.task,
                model=step.model or "",
                seconds=round(time.perf_counter() - started, 4),
            )
        )
    return state
