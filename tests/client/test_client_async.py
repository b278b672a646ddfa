"""``AsyncSonaray`` twins ``Sonaray``: same methods, same requests, same errors, same retries."""

from __future__ import annotations

import asyncio
import inspect
import json

import httpx
import pytest
import sonaray_client.async_client
from client_fixtures import TRANSCRIPTION, FakeServer, error_response, form_fields, json_body
from sonaray_client import AsyncSonaray, NotFoundError, Sonaray, encode_wav

WAV = encode_wav([0.0, 0.25, -0.25], 16000)
PUBLIC = sorted(
    name
    for name, member in vars(Sonaray).items()
    if inspect.isfunction(member) and not name.startswith("_") and name != "close"
)


def full_server() -> FakeServer:
    return (
        FakeServer()
        .reply("POST", "/v1/seq2seq", httpx.Response(200, json=TRANSCRIPTION))
        .reply("POST", "/v1/tts", httpx.Response(200, content=WAV))
        .reply("POST", "/v1/classify", httpx.Response(200, json={"labels": []}))
        .reply("GET", "/v1/models", httpx.Response(200, json={"data": []}))
    )


def test_every_public_method_has_an_async_twin_with_the_same_signature():
    assert {"transcribe", "speak", "run_pipeline", "models", "health"} <= set(PUBLIC)
    for name in PUBLIC:
        twin, sync = (
            inspect.signature(getattr(AsyncSonaray, name)),
            inspect.signature(getattr(Sonaray, name)),
        )
        if name == "realtime":  # not a coroutine: it gives a session to `async with`
            assert twin.return_annotation == "Async" + sync.return_annotation
            assert twin.parameters == sync.parameters
            continue
        assert inspect.iscoroutinefunction(getattr(AsyncSonaray, name)), name
        assert twin == sync, name


async def test_async_client_sends_what_the_sync_client_sends(tmp_path):
    sync_server, async_server = full_server(), full_server()
    with sync_server.client(api_key="k") as client:
        sync_results = [
            client.transcribe(WAV, model="m", language="en"),
            client.speak("Hi.", voice="joe"),
            client.classify(WAV, top_k=2),
            client.models(),
        ]
    async with async_server.async_client(api_key="k") as client:
        async_results = [
            await client.transcribe(WAV, model="m", language="en"),
            await client.speak("Hi.", voice="joe"),
            await client.classify(WAV, top_k=2),
            await client.models(),
        ]
        written = await client.speak_to_file("Hi.", tmp_path / "hi.wav")

    assert async_results == sync_results
    assert written.read_bytes() == WAV
    for sync_req, async_req in zip(sync_server.requests, async_server.requests, strict=False):
        assert (async_req.method, async_req.url) == (sync_req.method, sync_req.url)
        assert async_req.headers["authorization"] == sync_req.headers["authorization"]
    assert form_fields(async_server.requests[0]) == form_fields(sync_server.requests[0])
    assert json_body(async_server.requests[1]) == json_body(sync_server.requests[1])
    assert json.loads(form_fields(async_server.requests[2])["options"]) == {"top_k": 2}


async def test_async_retries_honour_retry_after_and_raise_typed_errors(monkeypatch):
    slept: list[float] = []
    real_sleep = asyncio.sleep

    async def fake_sleep(delay: float) -> None:
        slept.append(delay)
        await real_sleep(0)

    monkeypatch.setattr(sonaray_client.async_client.asyncio, "sleep", fake_sleep)
    limited = error_response(429, "slow down", headers={"retry-after": "1.5"})
    server = (
        FakeServer()
        .reply("POST", "/v1/seq2seq", limited, httpx.Response(200, json=TRANSCRIPTION))
        .reply("GET", "/v1/models", error_response(404, "nope", request_id="req-9"))
    )
    async with server.async_client() as client:
        assert (await client.transcribe(WAV)).language == "en"
        with pytest.raises(NotFoundError) as caught:
            await client.models()
    assert slept == [1.5]
    assert caught.value.request_id == "req-9"


async def test_async_client_runs_requests_concurrently():
    in_flight = peak = 0

    async def slow_ok(request: httpx.Request) -> httpx.Response:
        nonlocal in_flight, peak
        in_flight += 1
        peak = max(peak, in_flight)
        await asyncio.sleep(0.01)
        in_flight -= 1
        return httpx.Response(200, json=TRANSCRIPTION)

    transport = httpx.MockTransport(slow_ok)
    http = httpx.AsyncClient(transport=transport)
    async with AsyncSonaray(base_url="http://t", http_client=http) as client:
        results = await asyncio.gather(*(client.transcribe(WAV) for _ in range(3)))
    assert [r.text for r in results] == [TRANSCRIPTION["text"]] * 3
    assert peak == 3


def test_closing_leaves_a_callers_http_client_open():
    http = httpx.Client(transport=FakeServer().transport)
    Sonaray(http_client=http).close()
    assert not http.is_closed
    own = Sonaray()
    own.close()
    assert own._http.is_closed
