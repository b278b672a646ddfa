"""The pipeline runner with a fake task call: every step kind, fan-out, option checks, errors.

Every pair of steps the build-time type check allows must also run: a pipeline that
builds never fails at run time for the way its steps are wired.
"""

from __future__ import annotations

import asyncio
import itertools

import numpy as np
import pytest
from sonaray_client.types import (
    Classification,
    LabelScore,
    SpeechSegment,
    SpeechSegments,
    Transcription,
    TranscriptSegment,
)

from deployments.errors import ConfigError, InvalidRequest, PayloadTooLarge
from deployments.graph.runner import PipelineContext, run_pipeline
from deployments.graph.types import check_pipeline
from deployments.protocol import TASKS, AudioItem, Data, Target, TextItem, Waveform

RATE = 16000
AUDIO = np.zeros(10 * RATE, dtype=np.float32)
SEGMENTS = [SpeechSegment(start=1.0, end=2.0), SpeechSegment(start=5.0, end=6.5)]


class FakeTasks:
    """Answers each task like its deployment would, and records what it was sent."""

    def __init__(self, text: str = "hello world", fail: str | None = None):
        self.text, self.fail = text, fail
        self.calls: list[tuple[str, object]] = []
        self.in_flight = self.most_in_flight = 0

    async def call(self, target: Target, item) -> object:
        self.calls.append((target.task, item))
        self.in_flight += 1
        self.most_in_flight = max(self.most_in_flight, self.in_flight)
        await asyncio.sleep(0.01)
        self.in_flight -= 1
        if target.task == self.fail:
            raise InvalidRequest(f"{target.task} refused the item")
        if target.spec.gives is Data.SEGMENTS:
            return SpeechSegments(segments=SEGMENTS, duration=len(item.audio) / RATE)
        if target.spec.gives is Data.TRANSCRIPT:
            seconds = len(item.audio) / item.sampling_rate
            seg = TranscriptSegment(id=0, start=0.1, end=seconds, text=self.text)
            return Transcription(text=self.text, duration=seconds, segments=[seg])
        if target.spec.gives is Data.LABELS:
            return Classification(labels=[LabelScore(label="yes", score=0.9)])
        assert isinstance(item, TextItem)
        return Waveform(
            np.zeros(100, np.float32), 22050, {"text": target.spec.text_of(item.options)}
        )

    async def rate(self, target: Target) -> int:
        return RATE


def steps(*tasks: str) -> list[Target]:
    return [Target(TASKS[t], f"{t}-model") for t in tasks]


def run(tasks: FakeTasks, pipeline: list[Target], options=None, max_text_chars=None):
    context = PipelineContext(tasks.call, tasks.rate, chunk_seconds=30.0,
                              max_text_chars=max_text_chars)  # fmt: skip
    return asyncio.run(run_pipeline(context, pipeline, AUDIO, RATE, options or {}))


def buildable_pairs() -> list[tuple[str, str]]:
    pairs = []
    for first, second in itertools.product(TASKS, repeat=2):
        try:
            check_pipeline("pair", [first, second])
        except ConfigError:
            continue
        pairs.append((first, second))
    return pairs


@pytest.mark.parametrize("first,second", buildable_pairs())
def test_every_pair_of_steps_that_builds_also_runs(first, second):
    state = run(FakeTasks(), steps(first, second))
    assert [s.task for s in state.steps] == [first, second]
    assert [s.model for s in state.steps] == [f"{first}-model", f"{second}-model"]
    if TASKS[second].gives is Data.WAVEFORM:
        # the text step got the transcript in its own text field (input / prompt)
        assert state.waveform.extras["text"] == "hello world"


def test_the_pairs_cover_text_steps_after_asr():
    pairs = buildable_pairs()
    assert ("seq2seq", "generate") in pairs and ("ctc", "tts") in pairs
    assert ("frames", "tts") not in pairs


def test_asr_after_vad_fans_the_segments_out_and_stitches_them_in_order():
    tasks = FakeTasks()
    state = run(tasks, steps("frames", "seq2seq"))
    asr_items = [item for task, item in tasks.calls if task == "seq2seq"]
    assert len(asr_items) == 1  # both segments fit one 30 s chunk
    assert state.segments == SEGMENTS
    assert state.transcription.duration == pytest.approx(10.0)


def test_classify_after_vad_labels_each_segment_concurrently():
    tasks = FakeTasks()
    state = run(tasks, steps("frames", "classify"))
    cut = [len(item.audio) / RATE for task, item in tasks.calls if task == "classify"]
    assert cut == [pytest.approx(1.0), pytest.approx(1.5)]
    assert len(state.labels) == 2
    assert tasks.most_in_flight == 2


def test_step_options_reach_their_step_and_are_checked_before_any_step_runs():
    tasks = FakeTasks()
    state = run(tasks, steps("seq2seq", "tts"), {"seq2seq": {"language": "de"},
                                                 "tts": {"speed": 1.5}})  # fmt: skip
    asr = next(item for task, item in tasks.calls if task == "seq2seq")
    assert isinstance(asr, AudioItem) and asr.options.language == "de"
    speech = next(item for task, item in tasks.calls if task == "tts")
    assert speech.options.speed == 1.5 and speech.options.input == "hello world"
    assert state.waveform is not None

    tasks = FakeTasks()
    with pytest.raises(InvalidRequest, match="options.tts") as err:
        run(tasks, steps("seq2seq", "tts"), {"tts": {"speed": 99}})
    assert err.value.param == "options.tts"
    assert tasks.calls == []  # refused before the ASR step spent any compute


def test_options_for_a_step_not_in_the_pipeline_or_for_the_piped_text_are_refused():
    with pytest.raises(InvalidRequest, match="not steps of this pipeline"):
        run(FakeTasks(), steps("frames", "seq2seq"), {"tts": {}})
    with pytest.raises(InvalidRequest, match="comes from the pipeline") as err:
        run(FakeTasks(), steps("seq2seq", "generate"), {"generate": {"prompt": "drums"}})
    assert err.value.param == "options.generate.prompt"


def test_a_text_step_enforces_the_text_limit_and_refuses_silence():
    with pytest.raises(PayloadTooLarge, match="limit is 5"):
        run(FakeTasks(text="far too long a transcript"), steps("seq2seq", "tts"),
            max_text_chars=5)  # fmt: skip
    with pytest.raises(InvalidRequest, match="no recognizable speech"):
        run(FakeTasks(text="  "), steps("seq2seq", "tts"))


def test_a_failing_step_stops_the_pipeline_with_its_error():
    tasks = FakeTasks(fail="seq2seq")
    with pytest.raises(InvalidRequest, match="seq2seq refused"):
        run(tasks, steps("frames", "seq2seq", "tts"))
    assert "tts" not in {task for task, _ in tasks.calls}
