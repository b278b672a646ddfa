"""Streams over task calls: sentences of speech and chunks of a transcript, in order.

The first call goes alone, then a small window of calls is in flight, so the pieces of
one request batch in the task deployment while the consumer reads the first; nothing
more is started until the consumer takes a result (at most ``window`` results wait).
When the consumer stops (the generator is closed or its task cancelled), what is still
pending is cancelled, so a client that went away leaves no compute behind.
"""

from __future__ import annotations

import asyncio
import re
from collections import deque
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable
from contextlib import aclosing
from typing import Any, TypeVar

import numpy as np
from sonaray_client.types import SpeechOptions, Transcription, TranscriptionOptions

from deployments.errors import InvalidRequest
from deployments.graph.runner import Call, shift
from deployments.protocol import AudioItem, Target, TextItem, Waveform

T = TypeVar("T")

MAX_SENTENCE_CHARS = 250
# Calls in flight per stream: enough to batch a request's pieces together, few enough that
# a client who leaves wastes little and a slow reader holds little.
SENTENCE_WINDOW = 3
CHUNK_WINDOW = 4
# Words that end in a full stop without ending the sentence.
ABBREVIATIONS = frozenset(
    [
        "mr",
        "mrs",
        "ms",
        "dr",
        "prof",
        "sr",
        "jr",
        "st",
        "mt",
        "vs",
        "etc",
        "e.g",
        "i.e",
        "a.m",
        "p.m",
        "u.s",
        "u.k",
        "inc",
        "ltd",
        "co",
        "corp",
        "fig",
        "figs",
        "vol",
        "approx",
        "dept",
        "est",
        "jan",
        "feb",
        "mar",
        "apr",
        "jun",
        "jul",
        "aug",
        "sep",
        "sept",
        "oct",
        "nov",
        "dec",
    ]
)
# A sentence end: terminal punctuation, closing quotes or brackets, then white space.
_END = re.compile(r"[.!?…]+[\"'”’)\]]*\s+")
_SOFT = re.compile(r"[,;:–—]\s")
_WORD = re.compile(r"\w")


def split_sentences(text: str, max_chars: int = MAX_SENTENCE_CHARS) -> list[str]:
    """The sentences of ``text`` in order, each with a word, none longer than ``max_chars``.

    A full stop after an abbreviation ("Dr.") or an initial ("J.") does not end a
    sentence, nor does one before a lower-case word; decimals ("3.5") have no space after
    the point. A line break ends a sentence. Longer sentences are cut at the last comma,
    semicolon or dash that fits, else at the last space, else hard.
    """
    pieces = []
    for line in text.splitlines():
        start = 0
        for end in _END.finditer(line + " "):
            if _ends_sentence(line, end.start(), end.end()):
                pieces.extend(_cut(line[start : end.end()].strip(), max_chars))
                start = end.end()
        pieces.extend(_cut(line[start:].strip(), max_chars))
    sentences: list[str] = []
    for piece in pieces:  # punctuation alone is nothing to speak: it joins its sentence
        if _WORD.search(piece) or not sentences:
            sentences.append(piece)
        else:
            sentences[-1] += " " + piece
    return [s for s in sentences if _WORD.search(s)]


def _ends_sentence(line: str, stop: int, after: int) -> bool:
    if after < len(line) and line[after].islower():
        return False
    if line[stop] != "." or line[stop : stop + 2] == "..":
        return True
    word = line[:stop].rsplit(None, 1)[-1].lower() if line[:stop].strip() else ""
    word = word.lstrip("\"'“‘([")
    return not (word in ABBREVIATIONS or (len(word) == 1 and word.isalpha()))


def _cut(sentence: str, max_chars: int) -> list[str]:
    pieces = []
    while len(sentence) > max_chars:
        head = sentence[: max_chars + 1]
        soft = [m.end() for m in _SOFT.finditer(head)]
        cut = soft[-1] if soft else head.rfind(" ")
        cut = cut if cut > 0 else max_chars
        pieces.append(sentence[:cut].strip())
        sentence = sentence[cut:].strip()
    return [*pieces, sentence] if sentence else pieces


async def ordered(makers: Iterable[Callable[[], Awaitable[T]]], window: int) -> AsyncIterator[T]:
    """Await ``makers``' calls and yield their results in order, cancelling the ones still
    pending when the consumer stops.

    The first call goes alone, so the first result is not held back by a batch of its
    successors (a padded batch finishes with its longest item); after it, up to ``window``
    are started and not yet yielded.
    """
    if window < 1:
        raise ValueError("window must be at least 1")
    makers = iter(makers)
    pending: deque[asyncio.Future[T]] = deque()
    limit = 1

    def top_up() -> None:
        while len(pending) < limit and (make := next(makers, None)) is not None:
            pending.append(asyncio.ensure_future(make()))

    try:
        top_up()
        while pending:
            result = await pending[0]
            pending.popleft()
            limit = window
            top_up()
            yield result
    finally:
        for future in pending:
            future.cancel()
        await asyncio.gather(*pending, return_exceptions=True)


def sentence_seed(seed: int | None, index: int) -> int | None:
    """The seed of a request's ``index``-th sentence: repeatable, and the request's own
    seed for the first, so a one-sentence text sounds the same streamed or not."""
    return None if seed is None else (seed + index) % 2**32


async def speak_sentences(
    call: Call, target: Target, options: SpeechOptions, window: int = SENTENCE_WINDOW
) -> AsyncIterator[Waveform]:
    """Speech of ``options.input``, one tts call per sentence, yielded in order.

    Every sentence keeps the request's voice and speed; up to ``window`` are in flight at
    once, so they share the tts deployment's batches. Text without a word to speak is an
    ``InvalidRequest``, raised on the first ``anext``.
    """
    sentences = split_sentences(options.input)
    if not sentences:
        raise InvalidRequest("text has nothing to speak", param="input")
    items = [
        TextItem(options.model_copy(update={"input": text, "seed": sentence_seed(options.seed, i)}))
        for i, text in enumerate(sentences)
    ]
    calls = [_caller(call, target, item) for item in items]
    async with aclosing(ordered(calls, window)) as waves:
        async for wave in waves:
            yield wave


async def transcribe_chunks_stream(
    call: Call,
    target: Target,
    audio: np.ndarray,
    rate: int,
    chunks: list[tuple[float, float]],
    options: TranscriptionOptions,
    window: int = CHUNK_WINDOW,
) -> AsyncIterator[Transcription]:
    """Each chunk's transcription in order, its timestamps shifted to the file's time.

    Segment ids count on across chunks, as in ``stitch``; ``join`` of everything yielded
    is the stitched transcription.
    """
    items = [AudioItem(audio[int(s * rate) : int(e * rate)], rate, options) for s, e in chunks]
    calls = [_caller(call, target, item) for item in items]
    next_id = 0
    async with aclosing(ordered(calls, window)) as parts:
        for start, _ in chunks:
            shifted = shift(await anext(parts), start, next_id)
            next_id += len(shifted.segments)
            yield shifted


def _caller(call: Call, target: Target, item: Any) -> Callable[[], Awaitable[Any]]:
    return lambda: call(target, item)
