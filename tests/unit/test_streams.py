"""Sentence and chunk streams over a fake task call: order, window, cancellation, times."""

from __future__ import annotations

import asyncio

import numpy as np
import pytest
from sonaray_client.types import (
    SpeechOptions,
    Transcription,
    TranscriptionOptions,
    TranscriptSegment,
    WordTiming,
)

from deployments.graph.runner import stitch
from deployments.graph.streams import (
    speak_sentences,
    split_sentences,
    transcribe_chunks_stream,
)
from deployments.protocol import TASKS, Target, Waveform


def test_sentences_split_at_their_ends_only():
    text = (
        "Dr. Smith paid $3.50 at 5 p.m. on Main St. today! Did J. R. R. Tolkien write it? "
        'He said "yes." Then... silence.\nA new line'
    )
    assert split_sentences(text) == [
        "Dr. Smith paid $3.50 at 5 p.m. on Main St. today!",
        "Did J. R. R. Tolkien write it?",
        'He said "yes."',
        "Then... silence.",
        "A new line",
    ]


def test_no_empty_pieces_and_long_sentences_are_cut_at_commas_then_spaces():
    assert split_sentences("  \n\n . ") == split_sentences("") == []
    assert split_sentences("Stop! !! Go.\n...") == ["Stop! !!", "Go. ..."]
    long = "one two three, four five six seven, eight nine ten eleven twelve"
    assert split_sentences(long, max_chars=40) == [
        "one two three, four five six seven,",
        "eight nine ten eleven twelve",
    ]
    assert split_sentences("a" * 25 + " " + "b" * 10, max_chars=20) == [
        "a" * 20,
        "a" * 5 + " " + "b" * 10,
    ]
    assert all(len(p) <= 20 for p in split_sentences("word " * 50, max_chars=20))


def target(task: str, model: str | None) -> Target:
    return Target(TASKS[task], model or f"default-{task}")


class FakeTasks:
    """A ``call(target, item)`` whose replies the test releases one by one."""

    def __init__(self):
        self.started: list = []
        self.cancelled: list = []
        self.gates: dict[int, asyncio.Event] = {}
        self.in_flight = 0
        self.most_in_flight = 0

    async def call(self, target, item):
        index = len(self.started)
        self.started.append((target.task, target.model, item))
        gate = self.gates.setdefault(index, asyncio.Event())
        self.in_flight += 1
        self.most_in_flight = max(self.most_in_flight, self.in_flight)
        try:
            await gate.wait()
        except asyncio.CancelledError:
            self.cancelled.append(index)
            raise
        finally:
            self.in_flight -= 1
        return self.reply(index, item)

    def release(self, *indices: int) -> None:
        for i in indices:
            self.gates.setdefault(i, asyncio.Event()).set()

    def reply(self, index, item):
        text = item.options.input
        return Waveform(np.full(len(text), index, np.float32), 16000, {"text": text})


async def settle():
    for _ in range(5):
        await asyncio.sleep(0)


FIVE = "One. Two two. Three three three. Four. Five five."


async def test_sentences_are_spoken_in_order_with_a_bounded_window():
    tasks = FakeTasks()
    options = SpeechOptions(input=FIVE, voice="joe", speed=1.5, seed=7)
    stream = speak_sentences(tasks.call, target("tts", "piper"), options, window=2)
    first = asyncio.ensure_future(anext(stream))
    await settle()
    assert len(tasks.started) == 1  # the first sentence goes alone: nothing holds it back
    tasks.release(0)
    assert (await first).extras["text"] == "One."
    second = asyncio.ensure_future(anext(stream))
    await settle()
    assert len(tasks.started) == 3  # then the window: two started, none yielded
    tasks.release(2)  # a later sentence finishing first is held back
    await settle()
    assert not second.done() and len(tasks.started) == 3
    tasks.release(1, 3, 4)
    waves = [await first, await second] + [w async for w in stream]
    assert [w.extras["text"] for w in waves] == split_sentences(FIVE)
    assert tasks.most_in_flight == 2
    sent = [item.options for _, _, item in tasks.started]
    assert {(o.voice, o.speed) for o in sent} == {("joe", 1.5)}
    assert [o.seed for o in sent] == [7, 8, 9, 10, 11]
    assert {(task, model) for task, model, _ in tasks.started} == {("tts", "piper")}


async def test_a_stream_given_up_cancels_its_pending_calls():
    tasks = FakeTasks()
    stream = speak_sentences(tasks.call, target("tts", None), SpeechOptions(input=FIVE), window=3)
    tasks.release(0)
    await anext(stream)
    await settle()
    assert tasks.in_flight == 3
    await stream.aclose()
    assert sorted(tasks.cancelled) == [1, 2, 3] and tasks.in_flight == 0
    assert len(tasks.started) == 4  # nothing new started after the consumer left


async def test_a_cancelled_consumer_cancels_the_calls_it_waits_on():
    tasks = FakeTasks()
    stream = speak_sentences(tasks.call, target("tts", None), SpeechOptions(input=FIVE), window=3)

    async def consume():
        async for _ in stream:
            pass

    tasks.release(0)
    consumer = asyncio.ensure_future(consume())
    await settle()
    assert tasks.in_flight == 3
    consumer.cancel()
    with pytest.raises(asyncio.CancelledError):
        await consumer
    assert sorted(tasks.cancelled) == [1, 2, 3] and tasks.in_flight == 0


async def test_an_error_in_a_call_ends_the_stream_and_cancels_the_rest():
    async def call(target, item):
        if item.options.input.startswith("Two"):
            raise ValueError("engine failed")
        await asyncio.sleep(0 if item.options.input.startswith("One") else 10)
        return Waveform(np.zeros(1, np.float32), 16000)

    stream = speak_sentences(call, target("tts", None), SpeechOptions(input=FIVE), window=3)
    assert (await anext(stream)).sampling_rate == 16000
    with pytest.raises(ValueError, match="engine failed"):
        await anext(stream)


class FakeAsr(FakeTasks):
    def reply(self, index, item):
        word = WordTiming(word=f"w{index}", start=0.25, end=0.5)
        return Transcription(
            text=f" chunk {index}",
            duration=len(item.audio) / item.sampling_rate,
            segments=[
                TranscriptSegment(id=0, start=0.1, end=0.6, text=f"chunk {index}", words=[word]),
                TranscriptSegment(id=1, start=0.7, end=0.9, text="more"),
            ],
            words=[word],
        )


async def test_chunks_stream_in_order_with_file_times_like_stitch():
    tasks = FakeAsr()
    rate = 100
    audio = np.arange(40 * rate, dtype=np.float32)
    chunks = [(0.0, 10.0), (10.0, 25.0), (25.0, 31.5), (31.5, 40.0)]
    options = TranscriptionOptions()
    stream = transcribe_chunks_stream(
        tasks.call, target("seq2seq", "tiny"), audio, rate, chunks, options, window=2
    )
    first = asyncio.ensure_future(anext(stream))
    await settle()
    assert len(tasks.started) == 1
    tasks.release(0)
    await first
    await settle()
    assert len(tasks.started) == 3
    tasks.release(1, 2, 3)
    parts = [await first] + [p async for p in stream]
    assert tasks.most_in_flight == 2
    assert [p.text for p in parts] == [" chunk 0", " chunk 1", " chunk 2", " chunk 3"]
    # Each chunk got its own samples; its times moved by the chunk's start.
    assert [item.audio[0] for _, _, item in tasks.started] == [0, 1000, 2500, 3150]
    assert [s.start for p in parts for s in p.segments] == [
        0.1,
        0.7,
        10.1,
        10.7,
        25.1,
        25.7,
        31.6,
        32.2,
    ]
    assert [s.id for p in parts for s in p.segments] == list(range(8))
    assert parts[3].words[0].start == 31.75 and parts[3].segments[0].words[0].end == 32.0
    replies = [tasks.reply(i, item) for i, (_, _, item) in enumerate(tasks.started)]
    stitched = stitch([(s, r) for (s, _), r in zip(chunks, replies, strict=True)], duration=40)
    assert [s.model_dump() for p in parts for s in p.segments] == [
        s.model_dump() for s in stitched.segments
    ]


async def test_a_chunk_stream_given_up_cancels_its_pending_chunks():
    tasks = FakeAsr()
    audio = np.zeros(16000 * 60, np.float32)
    chunks = [(i * 10.0, i * 10.0 + 10) for i in range(6)]
    stream = transcribe_chunks_stream(
        tasks.call, target("seq2seq", None), audio, 16000, chunks, TranscriptionOptions(), window=3
    )
    tasks.release(0)
    await anext(stream)
    await settle()
    await stream.aclose()
    assert sorted(tasks.cancelled) == [1, 2, 3] and tasks.in_flight == 0
