"""Status codes become typed exceptions; 429/503/connection failures are retried with backoff."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from email.utils import format_datetime

import httpx
import pytest
import sonaray_client.client
from client_fixtures import TRANSCRIPTION, FakeServer, error_response, form_fields
from sonaray_client import (
    APIConnectionError,
    APIStatusError,
    APITimeoutError,
    AuthenticationError,
    BadRequestError,
    InternalServerError,
    NotFoundError,
    PayloadTooLargeError,
    RateLimitError,
    ServiceUnavailableError,
    UnprocessableEntityError,
    UnsupportedMediaTypeError,
)
from sonaray_client.errors import parse_retry_after

WAV = b"RIFF....WAVEfmt "
OK = httpx.Response(200, json=TRANSCRIPTION)


@pytest.fixture
def sleeps(monkeypatch) -> list[float]:
    """Delays the sync client slept, without sleeping."""
    slept: list[float] = []
    monkeypatch.setattr(sonaray_client.client.time, "sleep", slept.append)
    return slept


@pytest.mark.parametrize(
    ("status", "error_class"),
    [
        (400, BadRequestError),
        (401, AuthenticationError),
        (404, NotFoundError),
        (413, PayloadTooLargeError),
        (415, UnsupportedMediaTypeError),
        (422, UnprocessableEntityError),
        (500, InternalServerError),
        (418, APIStatusError),
    ],
)
def test_status_maps_to_its_exception_with_envelope_details(status, error_class, sleeps):
    answer = error_response(status, "model 'x' not found", code="model_not_found", param="model")
    server = FakeServer().reply("POST", "/v1/seq2seq", answer)
    with server.client() as client, pytest.raises(APIStatusError) as caught:
        client.transcribe(WAV, model="x")

    error = caught.value
    assert type(error) is error_class
    assert (error.status_code, error.code, error.param) == (status, "model_not_found", "model")
    assert error.request_id == "req-1"
    assert error.body["error"]["message"] == "model 'x' not found"
    assert str(error) == f"{status} model 'x' not found (request id req-1)"
    assert len(server.requests) == 1, "only 429, 502, 503 and 504 are retried"
    assert sleeps == []


def test_non_json_error_body_still_gives_a_message(sleeps):
    server = FakeServer().reply("GET", "/healthz", httpx.Response(502, text="Bad Gateway\n"))
    with server.client() as client, pytest.raises(InternalServerError) as caught:
        client.health()
    assert caught.value.message == "Bad Gateway"
    assert caught.value.request_id is None
    assert len(server.requests) == 3, "a proxy's 502 is retried"


def test_fastapi_validation_detail_becomes_the_message():
    detail = {"detail": [{"loc": ["body", "file"], "msg": "Field required"}]}
    server = FakeServer().reply("POST", "/v1/classify", httpx.Response(422, json=detail))
    with server.client() as client, pytest.raises(UnprocessableEntityError, match="Field required"):
        client.classify(WAV)


def test_429_is_retried_after_the_servers_retry_after(sleeps):
    limited = error_response(429, "slow down", headers={"retry-after": "2"})
    server = FakeServer().reply("POST", "/v1/seq2seq", limited, OK)
    with server.client() as client:
        assert client.transcribe(WAV).text == TRANSCRIPTION["text"]
    assert sleeps == [2.0]
    assert len(server.requests) == 2
    # A retry resends the same upload: the audio was read once, up front.
    assert form_fields(server.requests[0]) == form_fields(server.requests[1])


def test_503_without_retry_after_backs_off_exponentially_with_jitter(sleeps):
    busy = error_response(503, "overloaded")
    server = FakeServer().reply("POST", "/v1/seq2seq", busy, busy, OK)
    with server.client() as client:
        client.transcribe(WAV)
    assert len(sleeps) == 2
    assert 0.375 <= sleeps[0] <= 0.5
    assert 0.75 <= sleeps[1] <= 1.0


def test_gives_up_after_max_retries_with_the_last_error(sleeps):
    busy = error_response(503, "overloaded", headers={"retry-after": "3600"})
    server = FakeServer().reply("POST", "/v1/seq2seq", busy)
    with server.client(max_retries=3) as client, pytest.raises(ServiceUnavailableError) as caught:
        client.transcribe(WAV)
    assert len(server.requests) == 4
    # An hour-long Retry-After is capped so a client never hangs that long.
    assert sleeps == [60.0, 60.0, 60.0]
    assert caught.value.retry_after == 3600.0
    assert isinstance(caught.value, InternalServerError)


def test_max_retries_zero_raises_at_once(sleeps):
    limited = error_response(429, "slow down", headers={"retry-after": "1"})
    server = FakeServer().reply("GET", "/v1/models", limited)
    with server.client(max_retries=0) as client, pytest.raises(RateLimitError) as caught:
        client.models()
    assert caught.value.retry_after == 1.0
    assert (len(server.requests), sleeps) == (1, [])


def test_connection_errors_are_retried_then_raised(sleeps):
    def refuse(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("connection refused", request=request)

    server = FakeServer().reply("GET", "/healthz", refuse)
    with server.client() as client, pytest.raises(APIConnectionError, match="refused"):
        client.health()
    assert len(server.requests) == 3
    assert len(sleeps) == 2


def test_connection_recovers_on_retry(sleeps):
    def refuse(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectTimeout("connect timed out", request=request)

    server = FakeServer().reply(
        "GET", "/healthz", refuse, httpx.Response(200, json={"status": "ok"})
    )
    with server.client() as client:
        assert client.health() == {"status": "ok"}
    assert len(sleeps) == 1


def test_read_timeout_is_not_retried(sleeps):
    def slow(request: httpx.Request) -> httpx.Response:
        raise httpx.ReadTimeout("timed out", request=request)

    server = FakeServer().reply("POST", "/v1/seq2seq", slow)
    with server.client() as client, pytest.raises(APITimeoutError) as caught:
        client.transcribe(WAV)
    assert caught.value.phase == "read"
    assert isinstance(caught.value, APIConnectionError)
    assert (len(server.requests), sleeps) == (1, [])


def test_retry_after_accepts_seconds_and_http_dates():
    assert parse_retry_after("1.5") == 1.5
    assert parse_retry_after("-3") == 0.0
    assert parse_retry_after(None) is None
    assert parse_retry_after("soon") is None
    later = datetime.now(timezone.utc) + timedelta(seconds=30)
    assert 25 <= parse_retry_after(format_datetime(later, usegmt=True)) <= 30
