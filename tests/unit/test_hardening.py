"""Security basics a user would notice: keys never logged, CORS off unless configured,
and a small file that expands to hours of audio refused without decoding it all."""

from __future__ import annotations

import io
import logging
import tracemalloc

import av
import numpy as np
import pytest
import soundfile as sf
from fastapi.testclient import TestClient
from sonaray_client.types import ModelCard

from deployments.audio import decode_audio
from deployments.config import SonarayArgs
from deployments.errors import PayloadTooLarge
from deployments.router import http, native
from deployments.router.service import SonarayService

KEY = "sk-live-0123456789abcdef"
RATE = 16000
BOMB_HOURS = 2


class FailingHandle:
    """A task handle whose replica fails in an unexpected way (a 500 path)."""

    def options(self, **_):
        return self

    async def remote(self, *args):
        if not args:
            return [ModelCard(id="m", task="seq2seq")]
        if isinstance(args[0], str):  # sampling_rate(model)
            return RATE
        raise RuntimeError("replica exploded")


def app_client(monkeypatch, cors: dict | None = None) -> TestClient:
    args = SonarayArgs.model_validate(
        {"models": [{"name": "whisper-tiny.en", "task": "seq2seq"}], "cors": cors or {}}
    )
    handle = FailingHandle()
    handle.model_cards = handle
    monkeypatch.setattr(http, "_service", SonarayService(args, {"seq2seq": handle}, {KEY}))
    app = http.create_app()
    app.include_router(native.router)
    return TestClient(app, raise_server_exceptions=False)


def wav(seconds: float = 0.5) -> bytes:
    buf = io.BytesIO()
    sf.write(buf, np.zeros(int(seconds * RATE), np.float32), RATE, format="WAV")
    return buf.getvalue()


class Capture(logging.Handler):
    def __init__(self):
        super().__init__(logging.DEBUG)
        self.lines: list[str] = []

    def emit(self, record):
        self.lines.append(logging.Formatter("%(message)s").format(record))  # + traceback


@pytest.fixture
def logs():
    capture = Capture()
    names = ["", "ray", "ray.serve", "fastapi", "uvicorn", "httpx", "sonaray.engine"]
    loggers = [logging.getLogger(n) for n in names]
    levels = [lg.level for lg in loggers]
    for lg in loggers:
        lg.addHandler(capture)
        lg.setLevel(logging.DEBUG)
    yield capture.lines
    for lg, level in zip(loggers, levels, strict=True):
        lg.removeHandler(capture)
        lg.setLevel(level)


def test_no_key_and_no_authorization_header_reaches_a_log_line(monkeypatch, logs):
    client = app_client(monkeypatch)
    auth = {"authorization": f"Bearer {KEY}"}
    assert client.get("/v1/models", headers={"authorization": f"Bearer {KEY}x"}).status_code == 401
    assert client.get("/v1/models", headers=auth).status_code == 200
    failed = client.post("/v1/seq2seq", files={"file": ("a.wav", wav())}, headers=auth)
    assert failed.status_code == 500  # the unexpected-error path logs a traceback
    assert client.post("/v1/seq2seq", headers=auth).status_code == 400  # no file field
    assert (
        client.post("/v1/seq2seq", files={"file": ("a.wav", b"junk")}, headers=auth).status_code
        == 400
    )
    assert logs, "the error paths logged nothing: the capture is not wired"
    for line in logs:
        assert KEY not in line and KEY[:12] not in line
        assert "authorization" not in line.lower() and "bearer" not in line.lower()


def test_cors_is_off_by_default(monkeypatch):
    client = app_client(monkeypatch)
    preflight = client.options(
        "/v1/models",
        headers={"origin": "https://play.example", "access-control-request-method": "GET"},
    )
    assert "access-control-allow-origin" not in preflight.headers
    got = client.get("/healthz", headers={"origin": "https://play.example"})
    assert "access-control-allow-origin" not in got.headers


def test_cors_allows_the_configured_origins_only(monkeypatch):
    client = app_client(monkeypatch, cors={"allow_origins": ["https://play.example"]})
    preflight = client.options(
        "/v1/seq2seq",
        headers={
            "origin": "https://play.example",
            "access-control-request-method": "POST",
            "access-control-request-headers": "authorization",
        },
    )
    assert preflight.status_code == 200  # no API key needed for a preflight
    assert preflight.headers["access-control-allow-origin"] == "https://play.example"
    other = client.get("/healthz", headers={"origin": "https://evil.example"})
    assert "access-control-allow-origin" not in other.headers


@pytest.fixture(scope="module")
def bomb_flac() -> bytes:
    """Two hours of silence, losslessly compressed to a couple of hundred kilobytes."""
    buf = io.BytesIO()
    with sf.SoundFile(buf, "w", samplerate=8000, channels=1, format="FLAC") as f:
        minute = np.zeros(8000 * 60, dtype=np.int16)
        for _ in range(60 * BOMB_HOURS):
            f.write(minute)
    return buf.getvalue()


def remux(data: bytes, fmt: str) -> bytes:
    """The same compressed stream in another container (no re-encoding)."""
    out = io.BytesIO()
    with av.open(io.BytesIO(data)) as src, av.open(out, "w", format=fmt) as dst:
        stream = dst.add_stream_from_template(src.streams.audio[0])
        for packet in src.demux(src.streams.audio[0]):
            if packet.dts is not None:
                packet.stream = stream
                dst.mux(packet)
    return out.getvalue()


@pytest.mark.parametrize("container", ["flac", "matroska"])
def test_a_small_file_hiding_hours_of_audio_is_refused_with_bounded_memory(bomb_flac, container):
    data = bomb_flac if container == "flac" else remux(bomb_flac, container)
    assert len(data) < 1_000_000
    full_size = BOMB_HOURS * 3600 * 8000 * 4  # float32 samples, had it been decoded
    tracemalloc.start()
    try:
        with pytest.raises(PayloadTooLarge) as refused:
            decode_audio(data, target_rate=RATE, max_seconds=60)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert "limit is 60s" in refused.value.message
    assert peak < full_size / 20, f"decoding held {peak / 1e6:.0f} MB"
