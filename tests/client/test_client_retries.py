"""Timeouts and retries over real sockets: a local server that stalls, fails or resets."""

from __future__ import annotations

import asyncio

import pytest
import sonaray_client.async_client
import sonaray_client.client
from client_fixtures import TRANSCRIPTION, form_fields
from flaky_server import FlakyServer, Hangup, Reply, Reset
from sonaray_client import (
    APITimeoutError,
    AsyncSonaray,
    BadRequestError,
    InternalServerError,
    Sonaray,
    encode_wav,
)

WAV = encode_wav([0.0, 0.25, -0.25] * 100, 16000)
OK = Reply(200, TRANSCRIPTION, {"x-request-id": "req-ok", "server-timing": "total;dur=12.5"})


@pytest.fixture(autouse=True)
def no_backoff(monkeypatch):
    """Retry without the backoff waits (their lengths are tested in test_client_errors)."""
    real_sleep = asyncio.sleep

    async def no_wait(delay: float) -> None:
        await real_sleep(0)

    monkeypatch.setattr(sonaray_client.client.time, "sleep", lambda delay: None)
    monkeypatch.setattr(sonaray_client.async_client.asyncio, "sleep", no_wait)


def test_a_call_that_outlasts_its_timeout_fails_once_and_is_not_resent():
    with FlakyServer(Reply(200, TRANSCRIPTION, delay_s=2.0)) as server:
        with Sonaray(base_url=server.url) as client, pytest.raises(APITimeoutError) as caught:
            client.transcribe(WAV, timeout=0.2)
        seen = len(server.seen)
    assert caught.value.phase == "read"
    assert seen == 1, "the server may still be working: a read timeout is not retried"


def test_a_client_timeout_applies_and_a_longer_call_timeout_overrides_it():
    slow = Reply(200, TRANSCRIPTION, delay_s=0.5)
    with FlakyServer(slow) as server, Sonaray(base_url=server.url, timeout=0.1) as client:
        with pytest.raises(APITimeoutError):
            client.transcribe(WAV)
        assert client.transcribe(WAV, timeout=30).text == TRANSCRIPTION["text"]


@pytest.mark.parametrize("status", [502, 503, 504, 429])
def test_gateway_and_overload_statuses_are_retried_with_the_same_upload(status):
    failing = Reply(status, {"error": {"message": "upstream", "type": "server_error"}})
    with FlakyServer(failing, OK) as server, Sonaray(base_url=server.url) as client:
        result = client.transcribe(WAV, language="en")
        seen = server.seen
    assert result.text == TRANSCRIPTION["text"]
    # A retry resends the same upload (under a new multipart boundary).
    first, second = (form_fields(s.request()) for s in seen)
    assert first == second and first["options"] == '{"language":"en"}'
    assert result.response_info.request_id == "req-ok"
    assert result.response_info.server_timing == {"total": 12.5}


def test_a_reset_connection_is_retried():
    with FlakyServer(Reset(), OK) as server, Sonaray(base_url=server.url) as client:
        assert client.transcribe(WAV).text == TRANSCRIPTION["text"]
        assert len(server.seen) == 2


async def test_a_dropped_connection_is_retried_by_the_async_client():
    with FlakyServer(Hangup(), Hangup(), OK) as server:
        async with AsyncSonaray(base_url=server.url) as client:
            result = await client.transcribe(WAV)
        assert len(server.seen) == 3
    assert result.response_info.request_id == "req-ok"


def test_retries_stop_at_max_retries_with_the_last_error():
    failing = Reply(502, {"error": {"message": "bad gateway", "type": "server_error"}})
    with FlakyServer(failing) as server, Sonaray(base_url=server.url, max_retries=1) as client:
        with pytest.raises(InternalServerError, match="bad gateway"):
            client.health()
        assert len(server.seen) == 2


async def test_transcribe_many_keeps_order_and_reports_each_failure_in_place():
    bad = Reply(400, {"error": {"message": "cannot decode audio", "type": "invalid_request"}})
    with FlakyServer(OK, bad, OK) as server:
        async with AsyncSonaray(base_url=server.url) as client:
            # One at a time, so the script's order is the inputs' order.
            results = await client.transcribe_many(
                [WAV, WAV, WAV], concurrency=1, return_exceptions=True
            )
    assert [type(r).__name__ for r in results] == [
        "Transcription",
        "BadRequestError",
        "Transcription",
    ]


async def test_transcribe_many_raises_the_first_failure_without_return_exceptions():
    bad = Reply(400, {"error": {"message": "cannot decode audio", "type": "invalid_request"}})
    with FlakyServer(bad) as server:
        async with AsyncSonaray(base_url=server.url) as client:
            with pytest.raises(BadRequestError, match="cannot decode audio"):
                await client.transcribe_many([WAV, WAV], concurrency=1)
