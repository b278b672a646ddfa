"""Both Whisper engines on the tiny random Whisper: batching, types, chunking, gating, errors.

Every test runs on the transformers engine and on the CTranslate2 engine (which converts
the tiny transformers checkpoint with ctranslate2's converter on first load).
"""

from __future__ import annotations

import json
import shutil
from functools import partial

import numpy as np
import pytest
from audio_task_fixtures import SR, clips, nan_clip
from sonaray_client.types import Transcription, TranscriptionOptions

from deployments.errors import ConfigError, InvalidAudio, InvalidRequest, PayloadTooLarge
from deployments.models.ct2_cache import ct2_model_dir
from deployments.protocol import AudioItem
from deployments.tasks.registry import load_engine
from deployments.tasks.whisper_timestamps import plan_chunks, split_timestamped

TS = 50363  # <|0.00|> in the tiny.en vocabulary the tiny model shares
EOT = 50256


@pytest.fixture(scope="module", params=["transformers", "ctranslate2"])
def kind(request) -> str:
    return request.param


@pytest.fixture(scope="module")
def engine(model_path, kind):
    return load_engine(
        "seq2seq",
        kind,
        model_path("tiny-whisper"),
        name="tiny-whisper",
        max_new_tokens=6,
        max_audio_seconds=80,
    )


@pytest.fixture(scope="module")
def multilingual(engine):
    """The engine, where it can decode other languages than English.

    CTranslate2 reads multilingual from the vocabulary size (51865+), and the tiny model
    has tiny.en's (51864): there it serves English only; whisper-base covers the rest.
    """
    if not engine.vocab.multilingual:
        pytest.skip("CTranslate2 reads the tiny model's 51864-token vocabulary as English-only")
    return engine


@pytest.fixture(scope="module")
def english_only(model_path, tmp_path_factory, kind):
    """The tiny model as an English-only checkpoint without alignment heads."""
    target = tmp_path_factory.mktemp("tiny-whisper-en") / "model"
    shutil.copytree(model_path("tiny-whisper"), target)
    config_file = target / "generation_config.json"
    config = json.loads(config_file.read_text())
    config.update(is_multilingual=False, lang_to_id={}, task_to_id={})
    for key in ("alignment_heads", "task", "language"):
        config.pop(key, None)
    config_file.write_text(json.dumps(config))
    return load_engine("seq2seq", kind, str(target), name="tiny-whisper-en", max_new_tokens=6)


def items(audios, **options):
    return [AudioItem(a, SR, TranscriptionOptions(**options)) for a in audios]


def summary(result: Transcription):
    return (result.text, [(s.start, s.end, s.text) for s in result.segments], result.language)


@pytest.mark.parametrize("timestamps", ["none", "segment"])
def test_batched_equals_unbatched_greedy(multilingual, timestamps):
    engine = multilingual
    audios = clips(1.0, 4.5, 2.0, 41.0, seed=3)
    languages = ["en", None, "de", None]
    batch = [
        AudioItem(a, SR, TranscriptionOptions(language=lang, timestamps=timestamps))
        for a, lang in zip(audios, languages, strict=True)
    ]
    together = engine.forward(batch)
    alone = [engine.forward([item])[0] for item in batch]
    assert [summary(r) for r in together] == [summary(r) for r in alone]


def test_results_are_transcriptions_in_order(multilingual):
    engine = multilingual
    audios = clips(1.0, 3.0, 2.0, seed=1)
    out = engine.forward(items(audios, language="fr") + items(audios[:1]))
    assert len(out) == 4
    assert all(isinstance(r, Transcription) and r.model == "tiny-whisper" for r in out)
    assert [r.duration for r in out] == [1.0, 3.0, 2.0, 1.0]
    assert [r.language for r in out[:3]] == ["fr"] * 3
    assert out[0].language_probability == 1.0
    detected = out[3]
    assert isinstance(detected.language, str) and 0.0 < detected.language_probability <= 1.0
    for r in out:
        for seg in r.segments:
            assert 0.0 <= seg.start <= seg.end <= r.duration
            assert seg.avg_logprob is not None and seg.avg_logprob <= 0.0
            assert 0.0 <= seg.no_speech_prob <= 1.0


def test_long_audio_segments_cover_every_chunk(engine):
    (audio,) = clips(70.0, seed=2)
    result = engine.forward(items([audio], language="en", timestamps="none"))[0]
    assert result.duration == 70.0
    starts = [s.start for s in result.segments]
    # one segment per <= 30 s chunk when timestamps are off: three chunks for 70 s
    assert len(starts) == 3 and starts[0] == 0.0
    assert all(b - a <= 30.0 for a, b in zip(starts, starts[1:], strict=False))
    # OpenAI's seek: where each segment's window starts, in 10 ms frames
    assert [s.seek for s in result.segments] == [round(start * 100) for start in starts]
    assert all(s.tokens and all(isinstance(t, int) for t in s.tokens) for s in result.segments)


def test_word_timestamps_lie_inside_their_segment(engine):
    result = engine.forward(items(clips(3.0, seed=5), language="en", timestamps="word"))[0]
    assert result.words is not None
    for seg in result.segments:
        assert seg.words is not None
        for w in seg.words:
            assert 0.0 <= w.start <= w.end <= result.duration + 0.02
            assert 0.0 <= w.probability <= 1.0
    assert sum(len(s.words) for s in result.segments) == len(result.words)


@pytest.mark.parametrize(
    "options",
    [
        {},
        {"num_beams": 3},
        {"temperature": 0.7},
        {"prompt": "Hello world."},
        {"timestamps": "word"},
    ],
)
def test_silence_is_never_decoded(engine, options):
    quiet = np.random.default_rng(0).normal(0, 0.0005, 3 * SR).astype(np.float32)
    out = engine.forward(items([np.zeros(2 * SR, np.float32), quiet], **options))
    assert [(r.text, r.segments) for r in out] == [("", []), ("", [])]


@pytest.mark.parametrize(
    ("audio", "rate", "error"),
    [
        pytest.param(clips(0.5)[0], 8000, InvalidAudio, id="wrong-rate"),
        pytest.param(np.zeros(0, np.float32), SR, InvalidAudio, id="empty"),
        pytest.param(nan_clip(), SR, InvalidAudio, id="nan"),
        pytest.param(np.zeros((2, SR), np.float32), SR, InvalidAudio, id="stereo"),
        pytest.param(clips(81.0)[0], SR, PayloadTooLarge, id="over-max-audio-seconds"),
    ],
)
def test_bad_audio_raises_typed_error_for_the_whole_batch(engine, audio, rate, error):
    good = AudioItem(clips(1.0)[0], SR, TranscriptionOptions())
    with pytest.raises(error) as info:
        engine.forward([good, AudioItem(audio, rate, TranscriptionOptions())])
    assert info.value.param == "file"


@pytest.mark.parametrize(
    ("which", "options", "param"),
    [
        ("engine", {"language": "klingon"}, "language"),
        ("engine", {"num_beams": 2, "temperature": 0.5}, "num_beams"),
        ("english_only", {"task": "translate"}, "task"),
        ("english_only", {"language": "fr"}, "language"),
        ("english_only", {"timestamps": "word"}, "timestamps"),
    ],
)
def test_bad_options_raise_invalid_request_naming_the_param(request, kind, which, options, param):
    model = request.getfixturevalue(which)
    with pytest.raises(InvalidRequest) as info:
        model.forward(items(clips(1.0), **options))
    assert info.value.param == param


def test_english_only_model_reports_english(english_only):
    out = english_only.forward(items(clips(1.0), language="english"))
    assert (out[0].language, out[0].language_probability) == ("en", 1.0)


def test_translate_runs_on_a_multilingual_model(multilingual):
    engine = multilingual
    out = engine.forward(items(clips(2.0), task="translate", language="de"))
    assert out[0].language == "de"


def test_batched_equals_unbatched_in_english(engine):
    audios = clips(1.0, 4.5, 41.0, seed=3)
    batch = items(audios, language="en")
    together = engine.forward(batch)
    alone = [engine.forward([item])[0] for item in batch]
    assert [summary(r) for r in together] == [summary(r) for r in alone]
    assert [r.duration for r in together] == [1.0, 4.5, 41.0]


def test_ct2_conversion_is_cached_not_redone(model_path):
    first = ct2_model_dir(model_path("tiny-whisper"))
    built = (first / "model.bin").stat().st_mtime_ns
    again = ct2_model_dir(model_path("tiny-whisper"))
    assert again == first and (again / "model.bin").stat().st_mtime_ns == built


def test_ct2_encoding_chunk_by_chunk_equals_one_batched_encode(model_path):
    """On CPU the CT2 engine encodes a batch one chunk at a time and stacks the outputs
    for one batched generate; the results equal those of one batched encode."""
    load = partial(
        load_engine, "seq2seq", "ctranslate2", model_path("tiny-whisper"), name="tiny-whisper"
    )
    by_chunk, whole = load(max_new_tokens=6), load(max_new_tokens=6, encode_batch_size=0)
    assert by_chunk.decoder.encode_batch_size == 1 and whole.decoder.encode_batch_size == 0
    batch = items(clips(1.0, 4.5, 41.0, seed=5), language="en", timestamps="word")
    assert [summary(r) for r in by_chunk.forward(batch)] == [
        summary(r) for r in whole.forward(batch)
    ]


@pytest.mark.parametrize(
    "samples", [0, 1, 159, 160, 399, 64_000, 16_000 * 29 + 123, 479_999, 480_000, 600_000]
)
def test_features_equal_the_feature_extractor_on_30_s_of_padding(engine, samples):
    """The engines' features skip the STFT of a chunk's zero padding; they still equal
    the transformers extractor's, which pads every chunk to 30 s first."""
    audio = (np.random.default_rng(samples).standard_normal(samples) * 0.1).astype(np.float32)
    audio[: samples // 4] = 0.0  # silence inside the chunk is computed, not skipped
    extractor = engine.vocab.processor.feature_extractor
    expected = extractor([audio], sampling_rate=SR, return_tensors="np").input_features
    np.testing.assert_allclose(engine.vocab.features([audio]), expected, atol=1e-5)


@pytest.mark.parametrize("compute_type", ["float16", "int4"])
def test_ct2_compute_type_not_offered_on_cpu_is_a_config_error(model_path, compute_type):
    with pytest.raises(ConfigError, match="compute_type"):
        load_engine(
            "seq2seq",
            "ctranslate2",
            model_path("tiny-whisper"),
            name="tiny-whisper",
            compute_type=compute_type,
        )


def test_plan_chunks_cut_at_the_quietest_frame_and_cover_everything():
    audio = np.ones(75 * SR, np.float32)
    audio[27 * SR : 27 * SR + 800] = 0.0  # a 50 ms pause inside the first search window
    spans = plan_chunks(audio, SR, max_seconds=30.0, search_seconds=6.0)
    assert spans[0][0] == 0 and spans[-1][1] == len(audio)
    assert all(a[1] == b[0] for a, b in zip(spans, spans[1:], strict=False))
    assert all(end - start <= 30 * SR for start, end in spans)
    assert 27 * SR <= spans[0][1] <= 27 * SR + 800


def test_split_timestamped_pairs_and_open_last_segment():
    tokens = [TS, 11, 12, TS + 50, TS + 50, 13, TS + 120, TS + 130, 14, 15]
    spans = split_timestamped(tokens, timestamp_begin=TS, eot=EOT, duration=4.0)
    assert [(s.start, s.end, s.tokens, s.first) for s in spans] == [
        (0.0, 1.0, [11, 12], 1),
        (1.0, 2.4, [13], 5),
        (2.6, 4.0, [14, 15], 8),
    ]


def test_split_timestamped_drops_segments_starting_after_the_audio():
    tokens = [TS, 11, TS + 40, TS + 200, 12, TS + 250]
    spans = split_timestamped(tokens, timestamp_begin=TS, eot=EOT, duration=2.0)
    assert [s.tokens for s in spans] == [[11]]
