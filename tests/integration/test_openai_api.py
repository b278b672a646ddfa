"""The real ``openai`` package against the live cluster's OpenAI-compatible audio API."""

from __future__ import annotations

import openai
import pytest
from api_fixtures import HELLO, decode, speech_wav
from speech import SENTENCES, heard_as, words

from deployments.audio import decode_audio

pytestmark = pytest.mark.serve


@pytest.fixture
def client(serve_url) -> openai.OpenAI:
    return openai.OpenAI(base_url=f"{serve_url}/v1", api_key="x", max_retries=0, timeout=300)


def test_transcribes_word_for_word(client):
    text = SENTENCES[1]
    result = client.audio.transcriptions.create(
        model="whisper-1", file=("fox.wav", speech_wav(text))
    )
    assert words(result.text) == words(text)


def test_served_model_name_and_text_format(client):
    text = client.audio.transcriptions.create(
        model="whisper-tiny.en", file=("hello.wav", speech_wav()), response_format="text"
    )
    assert isinstance(text, str) and words(text) == words(HELLO)


def test_srt(client):
    srt = client.audio.transcriptions.create(
        model="whisper-1", file=("hello.wav", speech_wav()), response_format="srt"
    )
    cues = srt.strip().split("\n\n")
    first = cues[0].splitlines()
    assert first[0] == "1"
    start, end = first[1].split(" --> ")
    assert start.startswith("00:00:0") and "," in end
    spoken = " ".join(" ".join(cue.splitlines()[2:]) for cue in cues)
    assert words(spoken) == words(HELLO)


def test_verbose_json_has_segment_and_word_timestamps(client):
    audio = speech_wav()
    result = client.audio.transcriptions.create(
        model="whisper-1",
        file=("hello.wav", audio),
        response_format="verbose_json",
        timestamp_granularities=["segment", "word"],
    )
    clip_seconds = decode(audio)[0].size / 16000
    assert result.language == "english"
    assert result.duration == pytest.approx(clip_seconds, abs=0.01)
    assert words(result.text) == words(HELLO)
    assert result.segments
    for seg in result.segments:
        assert 0.0 <= seg.start < seg.end <= clip_seconds + 0.05
    assert words(" ".join(w.word for w in result.words)) == words(HELLO)
    starts = [w.start for w in result.words]
    assert starts == sorted(starts) and result.words[-1].end <= clip_seconds + 0.05


def test_translation_on_multilingual_model(client):
    result = client.audio.translations.create(
        model="tiny-whisper", file=("hello.wav", speech_wav())
    )
    # Random weights: the content is noise, but the route answers with OpenAI's shape.
    assert isinstance(result.text, str)


def test_translation_on_english_only_model_is_a_clear_400(client):
    with pytest.raises(openai.BadRequestError) as caught:
        client.audio.translations.create(model="whisper-1", file=("hello.wav", speech_wav()))
    assert "English-only" in caught.value.message


def test_speech_round_trip(client):
    text = SENTENCES[3]
    response = client.audio.speech.create(
        model="tts-1", voice="alloy", input=text, response_format="wav"
    )
    audio, rate = decode(response.content)
    assert rate == 22050 and audio.size / rate > 1.0
    heard = client.audio.transcriptions.create(
        model="whisper-1", file=("speech.wav", response.content)
    )
    assert heard_as(heard.text, text)


# Piper speaks at 22050 Hz; libopus takes 24 kHz at the nearest, and pcm is OpenAI's 24 kHz.
@pytest.mark.parametrize(
    ("fmt", "rate"), [("mp3", 22050), ("flac", 22050), ("opus", 24000), ("aac", 22050)]
)
def test_speech_formats_decode(client, fmt, rate):
    response = client.audio.speech.create(
        model="piper-joe-medium", voice="alloy", input="Good morning.", response_format=fmt
    )
    decoded = decode_audio(response.content)  # libsndfile, or FFmpeg (PyAV) for aac
    assert decoded.source_rate == rate and decoded.duration > 0.3


def test_speech_default_format_is_mp3(client):
    response = client.audio.speech.create(model="tts-1", voice="nova", input="Good morning.")
    assert response.response.headers["content-type"] == "audio/mpeg"


def test_unknown_model_is_404(client):
    with pytest.raises(openai.NotFoundError) as caught:
        client.audio.transcriptions.create(model="whisper-9000", file=("a.wav", speech_wav()))
    assert caught.value.body["code"] == "model_not_found"


def test_speech_pcm_is_24k_16_bit(client):
    wav = client.audio.speech.create(
        model="tts-1", voice="alloy", input="Good morning.", response_format="wav"
    )
    pcm = client.audio.speech.create(
        model="tts-1", voice="alloy", input="Good morning.", response_format="pcm"
    )
    seconds = decode(wav.content)[0].size / 22050
    assert len(pcm.content) / 2 / 24000 == pytest.approx(seconds, abs=0.01)


def test_models_list(client):
    ids = {m.id for m in client.models.list()}
    assert {"whisper-tiny.en", "piper-joe-medium", "tiny-wav2vec2-ks"} <= ids


def test_models_retrieve_has_a_stable_created_time(client):
    card = client.models.retrieve("whisper-tiny.en")
    assert card.id == "whisper-tiny.en" and card.owned_by == "sonaray"
    assert card.created > 1_700_000_000
    assert client.models.retrieve("whisper-tiny.en").created == card.created
    with pytest.raises(openai.NotFoundError):
        client.models.retrieve("whisper-9000")


def test_json_and_verbose_json_carry_usage_and_real_tokens(client):
    audio = speech_wav()
    clip_seconds = decode(audio)[0].size / 16000
    plain = client.audio.transcriptions.create(model="whisper-1", file=("hello.wav", audio))
    assert plain.usage.type == "duration"
    assert plain.usage.seconds == pytest.approx(clip_seconds, abs=0.01)
    verbose = client.audio.transcriptions.create(
        model="whisper-1", file=("hello.wav", audio), response_format="verbose_json"
    )
    assert verbose.usage.seconds == pytest.approx(clip_seconds, abs=0.01)
    # one window for a short clip: every segment was decoded at seek 0, from real tokens
    assert all(seg.seek == 0 and seg.tokens for seg in verbose.segments)
    assert all(50257 > t >= 0 for seg in verbose.segments for t in seg.tokens)


@pytest.mark.parametrize(
    ("fields", "param"),
    [
        ({"response_format": "docx"}, "response_format"),
        ({"temperature": 3.0}, "temperature"),
        ({"include": ["logprobs"]}, "include"),
        ({"known_speaker_names": ["agent"]}, "known_speaker_names"),
        (
            {"chunking_strategy": {"type": "server_vad", "eagerness": "low"}},
            "chunking_strategy[eagerness]",
        ),
    ],
)
def test_bad_or_unhonoured_field_is_bad_request_naming_it(client, fields, param):
    with pytest.raises(openai.BadRequestError) as caught:
        client.audio.transcriptions.create(
            model="whisper-1", file=("hello.wav", speech_wav()), **fields
        )
    assert caught.value.param == param and caught.value.type == "invalid_request_error"


def test_chunking_strategy_server_vad_is_accepted(client):
    result = client.audio.transcriptions.create(
        model="whisper-1",
        file=("hello.wav", speech_wav()),
        chunking_strategy={"type": "server_vad", "threshold": 0.5, "silence_duration_ms": 200},
    )
    assert words(result.text) == words(HELLO)


def test_speech_instructions_are_refused(client):
    with pytest.raises(openai.BadRequestError) as caught:
        client.audio.speech.create(
            model="tts-1", voice="alloy", input="Hello.", instructions="Whisper it."
        )
    assert caught.value.param == "instructions"
