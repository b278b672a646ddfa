"""Execute a pipeline: async calls over task handles, fanning segments out in parallel.

The runner never sees Ray: it gets a ``call(target, item)`` coroutine. Segments of one
file are sent concurrently, so the ASR deployment's batch queue packs them with other
requests' work into shared forward passes. Steps are dispatched on the kind of data they
give (the task table's ``gives``), never on task names.
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
    SpeechSegment,
    StepTiming,
    Transcription,
    TranscriptionOptions,
    WordTiming,
)

from deployments.audio import resample
from deployments.errors import InvalidRequest
from deployments.protocol import AudioItem, Data, Target, TextItem, Waveform, check_text

Call = Callable[[Target, Any], Awaitable[Any]]
Rate = Callable[[Target], Awaitable[int]]


@dataclass(frozen=True)
class PipelineContext:
    """What a pipeline run needs from the service: task calls, model rates, limits."""

    call: Call
    rate: Rate
    chunk_seconds: float
    max_text_chars: int | None = None


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
                "seek": None if seg.seek is None else seg.seek + round(offset * 100),
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
    target: Target,
    audio: np.ndarray,
    rate: int,
    chunks: list[tuple[float, float]],
    options: TranscriptionOptions,
) -> Transcription:
    """Transcribe each chunk concurrently and stitch the results in order."""
    duration = len(audio) / rate
    if not chunks:
        return Transcription(text="", duration=duration, segments=[], model=target.model)
    calls = [
        call(target, AudioItem(audio[int(s * rate) : int(e * rate)], rate, options))
        for s, e in chunks
    ]
    results = await asyncio.gather(*calls)
    return stitch([(s, r) for (s, _), r in zip(chunks, results, strict=True)], duration)


def parse_step_options(steps: list[Target], raw: dict[str, Any]) -> dict[str, Any]:
    """Every step's options, validated before the first step runs.

    ``raw`` is keyed by task id. A text step's options are checked with a placeholder
    text; the real text (the transcript so far) is filled in when the step runs.
    """
    unknown = set(raw) - {t.task for t in steps}
    if unknown:
        raise InvalidRequest(
            f"options for step(s) {sorted(unknown)} are not steps of this pipeline",
            param="options",
        )
    parsed = {}
    for target in steps:
        spec, param = target.spec, f"options.{target.task}"
        values = raw.get(target.task) or {}
        if not isinstance(values, dict):
            raise InvalidRequest(f"{param} must be a JSON object", param=param)
        if spec.text_field is None:
            parsed[target.task] = spec.parse_options(values, param)
        else:
            if spec.text_field in values:
                raise InvalidRequest(
                    f"{param}.{spec.text_field} comes from the pipeline, not the request",
                    param=f"{param}.{spec.text_field}",
                )
            parsed[target.task] = spec.text_options("-", values, param)
    return parsed


async def _segments(ctx: PipelineContext, target: Target, state: PipelineState, opts) -> None:
    found = await ctx.call(target, AudioItem(state.audio, state.sampling_rate, opts))
    state.segments = found.segments


async def _transcript(ctx: PipelineContext, target: Target, state: PipelineState, opts) -> None:
    if state.segments is None:
        item = AudioItem(state.audio, state.sampling_rate, opts)
        state.transcription = await ctx.call(target, item)
        return
    duration = len(state.audio) / state.sampling_rate
    chunks = merge_segments(state.segments, ctx.chunk_seconds, duration)
    state.transcription = await transcribe_chunks(
        ctx.call, target, state.audio, state.sampling_rate, chunks, opts
    )


async def _labels(ctx: PipelineContext, target: Target, state: PipelineState, opts) -> None:
    spans = [(s.start, s.end) for s in state.segments] if state.segments is not None else [None]
    items = [
        AudioItem(_cut(state.audio, state.sampling_rate, span), state.sampling_rate, opts)
        for span in spans
    ]
    state.labels = list(await asyncio.gather(*(ctx.call(target, i) for i in items)))


async def _waveform(ctx: PipelineContext, target: Target, state: PipelineState, opts) -> None:
    spec = target.spec
    text = state.transcription.text if state.transcription else ""
    if not text.strip():
        raise InvalidRequest(
            f"step {target.task!r} got no text: the audio holds no recognizable speech"
        )
    text = check_text(text, max_chars=ctx.max_text_chars, param=f"options.{target.task}")
    options = opts.model_copy(update={spec.text_field: text})
    state.waveform = await ctx.call(target, TextItem(options))


# What a step does, by the kind of data it gives.
STEP_RUNNERS = {
    Data.SEGMENTS: _segments,
    Data.TRANSCRIPT: _transcript,
    Data.LABELS: _labels,
    Data.WAVEFORM: _waveform,
}


def _cut(audio: np.ndarray, rate: int, span: tuple[float, float] | None) -> np.ndarray:
    return audio if span is None else audio[int(span[0] * rate) : int(span[1] * rate)]


async def run_pipeline(
    ctx: PipelineContext,
    steps: list[Target],
    audio: np.ndarray,
    rate: int,
    options: dict[str, Any],
) -> PipelineState:
    """Run every step in order; each step's wall time is recorded in ``state.steps``."""
    parsed = parse_step_options(steps, options)
    state = PipelineState(audio=audio, sampling_rate=rate)
    for target in steps:
        started = time.perf_counter()
        if target.spec.reads_audio:
            step_rate = await ctx.rate(target)
            if step_rate != state.sampling_rate:
                state.audio = resample(state.audio, state.sampling_rate, step_rate)
                state.sampling_rate = step_rate
        await STEP_RUNNERS[target.spec.gives](ctx, target, state, parsed[target.task])
        state.steps.append(
            StepTiming(
                step=target.task,
                task=target.task,
                model=target.model,
                seconds=round(time.perf_counter() - started, 4),
            )
        )
    return state
