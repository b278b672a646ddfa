"""A fake Sonaray server for SDK and CLI tests: canned answers per route via MockTransport."""

from __future__ import annotations

import email
import email.policy
import json
from collections.abc import Callable
from typing import Any

import httpx
from sonaray_client import AsyncSonaray, Sonaray

BASE_URL = "http://sonaray.test"

TRANSCRIPTION = {
    "text": " Hello there. General Kenobi.",
    "language": "en",
    "duration": 3.2,
    "segments": [
        {"id": 0, "start": 0.0, "end": 1.5, "text": " Hello there."},
        {"id": 1, "start": 1.5, "end": 3.2, "text": " General Kenobi."},
    ],
    "model": "whisper-tiny",
}

Answer = httpx.Response | Callable[[httpx.Request], httpx.Response]


class FakeServer:
    """Answers each (method, path) from a queue (its last answer repeats) and records requests."""

    def __init__(self) -> None:
        self.routes: dict[tuple[str, str], list[Answer]] = {}
        self.requests: list[httpx.Request] = []
        self.transport = httpx.MockTransport(self._handle)

    def reply(self, method: str, path: str, *answers: Answer) -> FakeServer:
        self.routes[(method, path)] = list(answers)
        return self

    def client(self, **kwargs: Any) -> Sonaray:
        kwargs.setdefault("base_url", BASE_URL)
        return Sonaray(http_client=httpx.Client(transport=self.transport), **kwargs)

    def async_client(self, **kwargs: Any) -> AsyncSonaray:
        kwargs.setdefault("base_url", BASE_URL)
        return AsyncSonaray(http_client=httpx.AsyncClient(transport=self.transport), **kwargs)

    def _handle(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        queue = self.routes.get((request.method, request.url.path))
        if not queue:
            return error_response(404, f"no route {request.url.path}", code="not_found")
        answer = queue.pop(0) if len(queue) > 1 else queue[0]
        return answer(request) if callable(answer) else answer


def error_response(
    status: int,
    message: str,
    *,
    code: str | None = None,
    param: str | None = None,
    request_id: str = "req-1",
    headers: dict[str, str] | None = None,
) -> httpx.Response:
    """The server's JSON error envelope, with its x-request-id header."""
    body = {
        "error": {
            "message": message,
            "type": "invalid_request_error",
            "param": param,
            "code": code,
        },
        "request_id": request_id,
    }
    return httpx.Response(
        status, json=body, headers={"x-request-id": request_id, **(headers or {})}
    )


def form_fields(request: httpx.Request) -> dict[str, Any]:
    """A multipart request's fields: text as str, files as (filename, bytes, content type)."""
    raw = b"Content-Type: " + request.headers["content-type"].encode() + b"\r\n\r\n"
    message = email.message_from_bytes(raw + request.read(), policy=email.policy.HTTP)
    fields: dict[str, Any] = {}
    for part in message.iter_parts():
        name = part.get_param("name", header="content-disposition")
        payload = part.get_payload(decode=True)
        filename = part.get_filename()
        if filename is None:
            fields[name] = payload.decode()
        else:
            fields[name] = (filename, payload, part.get_content_type())
    return fields


def json_body(request: httpx.Request) -> dict[str, Any]:
    return json.loads(request.read())
