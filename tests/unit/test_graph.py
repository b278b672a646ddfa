"""Pipeline pieces that need no cluster: chunking VAD segments, stitching transcripts."""

from __future__ import annotations

import pytest
from sonaray_client.types import SpeechSegment, Transcription, TranscriptSegment, WordTiming

from deployments.errors import ConfigError
from deployments.graph.runner import merge_segments, stitch
from deployments.graph.types import Data, check_pipeline


def seg(start: float, end: float) -> SpeechSegment:
    return SpeechSegment(start=start, end=end)


def test_segments_merge_into_chunks_widened_into_the_silence_between():
    chunks = merge_segments([seg(1, 5), seg(6, 20), seg(24, 40)], max_seconds=30, duration=42)
    # 1-20 fits one chunk (29 s with margins); 24-40 starts the next; each grows halfway
    # into the gap.
    assert chunks == [(0.5, 22.0), (22.0, 41.0)]
    for start, end in chunks:
        assert end - start <= 30


def test_a_long_stretch_of_speech_is_cut_at_the_chunk_limit():
    chunks = merge_segments([seg(0, 70)], max_seconds=30, duration=70)
    assert chunks == [(0, 29), (29, 58), (58, 70)]  # 1 s of margin kept free per chunk


def test_no_speech_gives_no_chunks():
    assert merge_segments([], max_seconds=30, duration=10) == []


def test_stitch_shifts_timestamps_by_chunk_start_and_renumbers():
    def part(text: str) -> Transcription:
        word = WordTiming(word=text, start=0.5, end=1.0)
        return Transcription(
            text=text,
            duration=2,
            language="en",
            segments=[TranscriptSegment(id=0, start=0.2, end=1.5, text=text, words=[word])],
        )

    joined = stitch([(0.0, part("hello")), (10.0, part("world"))], duration=12)
    assert joined.text == "hello world"
    assert [(s.id, s.start, s.end) for s in joined.segments] == [(0, 0.2, 1.5), (1, 10.2, 11.5)]
    assert joined.segments[1].words[0].start == 10.5
    assert joined.duration == 12 and joined.language == "en"


def test_pipeline_type_check_names_the_step_that_does_not_fit():
    assert check_pipeline("s2s", ["frames", "seq2seq", "tts"])[-1] is Data.WAVEFORM
    with pytest.raises(ConfigError, match=r"pipelines.bad\[1\]: step 'generate' reads"):
        check_pipeline("bad", ["frames", "generate"])
