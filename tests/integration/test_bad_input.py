"""Bad and odd input on the live cluster: each gets its documented answer in the one error
envelope, and good requests sent at the same time still succeed.

Limits are the session config's (serve_config.all.yaml): 25 MiB uploads, 3600 s of audio,
4096 characters of text. Missing/wrong API keys are covered in tests/unit/test_http_layer.py
(the session cluster runs without keys).
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from functools import cache

import httpx
import numpy as np
import pytest
from api_fixtures import HELLO, assert_envelope, encode, speech_wav
from speech import SENTENCES, synthesize, words

pytestmark = pytest.mark.serve

TRANSCRIBE = "/v1/audio/transcriptions"
UPLOAD_LIMIT = 25 * 1024 * 1024
AUDIO_LIMIT_S = 3600


@dataclass(frozen=True)
class Case:
    """One request and the answer it must get."""

    name: str
    path: str
    status: int
    code: str | None = None
    kwargs: dict = field(default_factory=dict, hash=False)


def upload(name: str, data: bytes, model: str = "whisper-1") -> dict:
    return {"files": {"file": (name, data)}, "data": {"model": model}}


@cache
def hour_of_silence_flac() -> bytes:
    """Over the audio limit when decoded, yet ~11 kB on the wire (FLAC of silence)."""
    rate = 1000
    return encode(np.zeros((AUDIO_LIMIT_S + 1) * rate, np.int16), rate, "FLAC")


def native_text_cases() -> list[Case]:
    """/v1/tts and /v1/generate: JSON bodies, and generate's multipart form."""

    def form(fields: dict, file: bytes | None = None) -> dict:
        return {"data": fields, "files": {"file": ("prompt.wav", file or b"")}}

    return [
        Case("tts: empty input", "/v1/tts", 400, "invalid_request", {"json": {"input": " "}}),
        Case("tts: no input", "/v1/tts", 400, "invalid_field", {"json": {"voice": "x"}}),
        Case(
            "tts: over-long input",
            "/v1/tts",
            413,
            "limit_exceeded",
            {"json": {"input": "a" * 5000}},
        ),
        Case(
            "tts: unknown format",
            "/v1/tts",
            400,
            "invalid_field",
            {"json": {"input": "Hi.", "response_format": "docx"}},
        ),
        Case(
            "tts: unknown field",
            "/v1/tts",
            400,
            "invalid_field",
            {"json": {"input": "Hi.", "pitch": 2}},
        ),
        Case(
            "tts: a generate model",
            "/v1/tts",
            404,
            "model_not_found",
            {"json": {"input": "Hi.", "model": "tiny-musicgen"}},
        ),
        Case(
            "generate: body not JSON",
            "/v1/generate",
            400,
            "invalid_request",
            {"content": b"{prompt", "headers": {"content-type": "application/json"}},
        ),
        Case("generate: no prompt", "/v1/generate", 400, "invalid_request", {"json": {"seed": 1}}),
        Case(
            "generate: over-long duration",
            "/v1/generate",
            400,
            "invalid_request",
            {"json": {"prompt": "drums", "duration_s": 600}},
        ),
        Case(
            "generate: malformed multipart options",
            "/v1/generate",
            400,
            "invalid_request",
            {"data": {"options": "{not json"}, "files": {"file": ("p.wav", b"RIFF")}},
        ),
        Case(
            "generate: multipart options not an object",
            "/v1/generate",
            400,
            "invalid_request",
            form({"options": "[1, 2]"}),
        ),
        Case(
            "generate: undecodable audio prompt",
            "/v1/generate",
            400,
            "invalid_audio",
            form({"options": '{"prompt": "drums"}'}, b"not audio at all" * 8),
        ),
    ]


def pipeline_cases(wav: bytes) -> list[Case]:
    def run(options: str | None = None, data: bytes = wav) -> dict:
        return {
            "files": {"file": ("a.wav", data)},
            "data": {} if options is None else {"options": options},
        }

    return [
        Case("pipeline: unknown name", "/v1/pipelines/no-such", 404, "model_not_found", run()),
        Case(
            "pipeline: options not JSON",
            "/v1/pipelines/transcribe-long",
            400,
            "invalid_request",
            run("{seq2seq"),
        ),
        Case(
            "pipeline: options for a step it lacks",
            "/v1/pipelines/transcribe-long",
            400,
            "invalid_request",
            run('{"tts": {"voice": "x"}}'),
        ),
        Case(
            "pipeline: bad step option",
            "/v1/pipelines/transcribe-long",
            400,
            "invalid_request",
            run('{"seq2seq": {"num_beams": 99}}'),
        ),
        Case(
            "pipeline: undecodable audio",
            "/v1/pipelines/speech-to-speech",
            400,
            "invalid_audio",
            run(data=b"plain text, not audio\n" * 40),
        ),
        Case(
            "pipeline: no file",
            "/v1/pipelines/transcribe-long",
            400,
            "invalid_field",
            {"data": {"options": "{}"}},
        ),
    ]


def bad_cases() -> list[Case]:
    wav = speech_wav()
    return [
        Case("zero-byte file", TRANSCRIBE, 400, "invalid_audio", upload("empty.wav", b"")),
        Case("truncated WAV header", TRANSCRIBE, 400, "invalid_audio", upload("cut.wav", wav[:30])),
        Case(
            "text renamed .wav",
            TRANSCRIBE,
            400,
            "invalid_audio",
            upload("notes.wav", b"this is a text file, not audio\n" * 40),
        ),
        Case(
            "over-size body",
            TRANSCRIBE,
            413,
            "limit_exceeded",
            upload("big.wav", bytes(UPLOAD_LIMIT + 1024 * 1024)),
        ),
        Case(
            "over-long audio",
            TRANSCRIBE,
            413,
            "limit_exceeded",
            upload("hour.flac", hour_of_silence_flac()),
        ),
        Case(
            "empty text",
            "/v1/audio/speech",
            400,
            "invalid_request",
            {"json": {"model": "tts-1", "input": "   ", "voice": "alloy"}},
        ),
        Case(
            "over-long text",
            "/v1/audio/speech",
            413,
            "limit_exceeded",
            {"json": {"model": "tts-1", "input": "word " * 1000, "voice": "alloy"}},
        ),
        Case(
            "unknown model (OpenAI)",
            TRANSCRIBE,
            404,
            "model_not_found",
            upload("a.wav", wav, "no-such"),
        ),
        Case("unknown model (HF)", "/models/no-such", 404, "model_not_found", {"content": wav}),
        Case(
            "non-audio content type (HF)",
            "/models/whisper-tiny.en",
            415,
            "unsupported_media_type",
            {"content": b"hello", "headers": {"content-type": "text/plain"}},
        ),
        Case(
            "JSON where multipart is expected",
            TRANSCRIBE,
            400,
            "invalid_field",
            {"json": {"model": "whisper-1", "file": "hello.wav"}},
        ),
        Case(
            "OpenAI field Sonaray cannot honour",
            TRANSCRIBE,
            400,
            "invalid_request",
            {"files": {"file": ("a.wav", wav)}, "data": {"include[]": "logprobs"}},
        ),
        *native_text_cases(),
        *pipeline_cases(wav),
        Case(
            "1-sample clip on a CTC model",
            TRANSCRIBE,
            400,
            "invalid_audio",
            upload("one.wav", encode(np.full(1, 0.1, np.float32), 16000), "tiny-wav2vec2-ctc"),
        ),
    ]


@pytest.mark.parametrize("case", bad_cases(), ids=lambda c: c.name)
def test_bad_input_gets_its_documented_error(http, case):
    error = assert_envelope(http.post(case.path, **case.kwargs), case.status, case.code)
    if case.status == 413:
        assert "limit" in error["message"]


def test_over_long_audio_names_the_seconds_limit(http):
    response = http.post(TRANSCRIBE, **upload("hour.flac", hour_of_silence_flac()))
    error = assert_envelope(response, 413, "limit_exceeded")
    assert "3601" in error["message"] and "3600" in error["message"]


def transcript(http, data: bytes, name: str = "clip.wav") -> str:
    response = http.post(TRANSCRIBE, **upload(name, data))
    assert response.status_code == 200, response.text
    return response.json()["text"]


def test_silence_is_an_empty_transcript(http):
    assert transcript(http, encode(np.zeros(32000, np.float32), 16000)).strip() == ""


def test_one_sample_clip_is_an_empty_transcript(http):
    assert transcript(http, encode(np.full(1, 0.1, np.float32), 16000)).strip() == ""


def test_44k_stereo_is_transcribed(http):
    mono = synthesize(HELLO, 44100)
    stereo = np.stack([mono, 0.5 * mono], axis=1)
    assert words(transcript(http, encode(stereo, 44100))) == words(HELLO)


async def _good(client: httpx.AsyncClient, k: int) -> None:
    """A request that must succeed: a transcription or a synthesis."""
    if k % 3 == 2:
        response = await client.post(
            "/v1/audio/speech", json={"model": "tts-1", "input": SENTENCES[k], "voice": "echo"}
        )
        assert response.status_code == 200, response.text
        assert response.headers["content-type"] == "audio/mpeg" and response.content
        return
    text = SENTENCES[k % len(SENTENCES)]
    response = await client.post(TRANSCRIBE, **upload(f"good{k}.wav", speech_wav(text)))
    assert response.status_code == 200, response.text
    assert words(response.json()["text"]) == words(text)


async def _bad(client: httpx.AsyncClient, case: Case) -> None:
    assert_envelope(await client.post(case.path, **case.kwargs), case.status, case.code)


async def test_server_keeps_serving_good_requests_among_bad_ones(serve_url):
    cases = bad_cases()
    async with httpx.AsyncClient(base_url=serve_url, timeout=300) as client:
        jobs = [_bad(client, case) for case in cases] + [_good(client, k) for k in range(6)]
        outcomes = await asyncio.gather(*jobs, return_exceptions=True)
    failed = [(i, repr(o)) for i, o in enumerate(outcomes) if isinstance(o, BaseException)]
    assert not failed
