"""Audio bytes and checks shared by the OpenAI, Hugging Face and bad-input API tests."""

from __future__ import annotations

import io

import numpy as np
import soundfile as sf
from speech import SENTENCES, synthesize

HELLO = SENTENCES[0]


def encode(audio: np.ndarray, rate: int, fmt: str = "WAV") -> bytes:
    buf = io.BytesIO()
    sf.write(buf, audio, rate, format=fmt)
    return buf.getvalue()


def speech_wav(text: str = HELLO, rate: int = 16000) -> bytes:
    """``text`` spoken by the Piper voice, as a 16-bit WAV file."""
    return encode(synthesize(text, rate), rate)


def decode(data: bytes) -> tuple[np.ndarray, int]:
    audio, rate = sf.read(io.BytesIO(data), dtype="float32")
    return audio, rate


def assert_envelope(response, status: int, code: str) -> dict:
    """The documented status, the one error envelope, and the request id in both places."""
    assert response.status_code == status, response.text
    body = response.json()
    assert set(body) == {"error", "request_id"}
    assert set(body["error"]) == {"message", "type", "param", "code"}
    assert body["error"]["code"] == code, body
    assert body["error"]["message"]
    assert body["request_id"], body
    # Ray Serve 2.60 writes the header itself, twice (its RequestIdMiddleware runs in the
    # proxy and again around the ingress app); every copy must be the envelope's id.
    assert set(response.headers.get_list("x-request-id")) == {body["request_id"]}
    return body["error"]
