"""CTCEngine on the tiny random wav2vec2: batching, offsets, chunking, typed errors."""

from __future__ import annotations

import string

import pytest
from audio_task_fixtures import BAD_AUDIO, SR, clips, items, wav2vec2_frames
from sonaray_client.types import Transcription, TranscriptionOptions, WordTiming

from deployments.errors import ConfigError, InvalidRequest, ModelNotFound
from deployments.protocol import AudioItem
from deployments.tasks.base import Engine
from deployments.tasks.ctc import CTCEngine
from deployments.tasks.registry import load_engine

WORDS = TranscriptionOptions(timestamps="word")


@pytest.fixture(scope="module")
def ctc(model_path) -> CTCEngine:
    return CTCEngine(model_path("tiny-wav2vec2-ctc"), name="tiny-ctc", max_audio_seconds=2.8)


@pytest.fixture(scope="module")
def chunked(model_path) -> CTCEngine:
    return CTCEngine(
        model_path("tiny-wav2vec2-ctc"), name="tiny-ctc", chunk_length_s=1.0, stride_length_s=0.2
    )


def test_loads_through_the_registry(model_path):
    engine = load_engine("ctc", "transformers", model_path("tiny-wav2vec2-ctc"), name="c")
    assert isinstance(engine, Engine)
    assert (engine.task, engine.sampling_rate, engine.name) == ("ctc", SR, "c")


def test_batched_equals_one_at_a_time(ctc):
    audios = clips(1.0, 0.3, 2.2, 0.7)
    batched = ctc.forward(items(audios, WORDS))
    single = [ctc.forward(items([audio], WORDS))[0] for audio in audios]
    # Argmax decoding: logits differ by ~1e-7 between padded and unpadded runs, far
    # below any gap between the best and second-best token, so results are identical.
    assert batched == single
    assert len({t.text for t in batched}) == len(audios)


def test_transcripts_are_text_only_with_word_timings_inside_the_clip(ctc):
    audios = clips(1.0, 0.45, 2.5)
    for audio, result in zip(audios, ctc.forward(items(audios, WORDS)), strict=True):
        assert isinstance(result, Transcription)
        assert result.duration == pytest.approx(len(audio) / SR)
        # bos/eos/unk and the blank never reach the transcript.
        assert set(result.text) <= set(string.ascii_uppercase + "' ")
        assert result.words and all(isinstance(w, WordTiming) for w in result.words)
        assert " ".join(w.word for w in result.words) == result.text
        previous_end = 0.0
        for word in result.words:
            assert previous_end <= word.start < word.end <= result.duration
            assert 0.0 < word.probability <= 1.0
            previous_end = word.end
        assert [s.text for s in result.segments] == [result.text]
        assert result.segments[0].words == result.words


def test_timestamps_option_controls_segments_and_words(ctc):
    audio = clips(1.0)
    plain = ctc.forward(items(audio, TranscriptionOptions(timestamps="none")))[0]
    segment = ctc.forward(items(audio, TranscriptionOptions(timestamps="segment")))[0]
    assert plain.segments == [] and plain.words is None
    assert segment.words is None and segment.segments[0].words is None
    assert plain.text == segment.text


def test_long_audio_is_chunked_onto_the_clip_frame_grid(chunked):
    audios = clips(3.3, 1.7, 0.8)
    assert len(chunked.chunker.chunks(len(audios[0]))) > 2
    # Every frame of the clip decoded exactly once: no frame lost or doubled at seams.
    for audio, (ids, confidence) in zip(audios, chunked.frame_tokens(audios), strict=True):
        assert len(ids) == len(confidence) == wav2vec2_frames(len(audio))
    result = chunked.forward(items(audios[:1], WORDS))[0]
    assert result.words[-1].end <= result.duration == pytest.approx(3.3)
    starts = [w.start for w in result.words]
    assert starts == sorted(starts)


def test_clip_shorter_than_a_chunk_is_not_chunked(ctc, chunked):
    audio = clips(0.9)
    assert len(chunked.chunker.chunks(len(audio[0]))) == 1
    assert chunked.forward(items(audio, WORDS)) == ctc.forward(items(audio, WORDS))


def test_chunk_plan_covers_the_clip_with_strides(chunked):
    n = round(3.3 * SR)
    plan = chunked.chunker.chunks(n)
    assert plan[0].start == 0 and plan[-1].end == n and plan[-1].keep_to is None
    for before, after in zip(plan, plan[1:], strict=False):
        # Overlap of two strides, each dropped on one side of the seam.
        assert before.end - after.start == 2 * chunked.chunker.stride
        assert before.keep_to * 320 + before.start == after.keep_from * 320 + after.start


@pytest.mark.parametrize(("audio", "rate", "error"), BAD_AUDIO)
def test_bad_audio_raises_typed_errors(ctc, audio, rate, error):
    with pytest.raises(error):
        ctc.forward([AudioItem(audio, rate, WORDS), *items(clips(0.5), WORDS)])


def test_translate_is_refused(ctc):
    with pytest.raises(InvalidRequest, match="translate"):
        ctc.forward(items(clips(0.5), TranscriptionOptions(task="translate")))


def test_bad_configs_raise(model_path, tmp_path):
    with pytest.raises(ConfigError):
        CTCEngine(model_path("tiny-wav2vec2-ctc"), name="c", chunk_length_s=1, stride_length_s=0.5)
    with pytest.raises(ModelNotFound):
        CTCEngine(str(tmp_path / "missing"), name="c")
