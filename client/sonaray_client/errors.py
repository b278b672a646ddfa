"""The SDK's exception tree: one class per way a call can fail, openai-python style.

``SonarayError → APIError → APIConnectionError (→ APITimeoutError) | APIStatusError |
APIResponseValidationError``; ``APIStatusError`` has one subclass per status the server
documents, so callers catch ``RateLimitError`` rather than compare numbers.
"""

from __future__ import annotations

import json
from datetime import datetime, timezone
from email.utils import parsedate_to_datetime
from typing import Any

import httpx
from pydantic import ValidationError

REQUEST_ID_HEADER = "x-request-id"


def request_id_of(response: httpx.Response) -> str | None:
    """The response's request id; the first when proxies on the way each echoed it."""
    values = response.headers.get_list(REQUEST_ID_HEADER)
    return values[0] if values else None


class SonarayError(Exception):
    """Base of every exception the SDK raises."""


class APIError(SonarayError):
    """A call to the server failed; ``message`` says how."""

    def __init__(self, message: str, *, request: httpx.Request | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.request = request


class APIConnectionError(APIError):
    """The server could not be reached, or the connection broke mid-call."""


class APITimeoutError(APIConnectionError):
    """The call ran past the client's timeout; ``phase`` is connect, pool, write or read."""

    def __init__(self, message: str, *, request: httpx.Request | None = None, phase: str) -> None:
        super().__init__(message, request=request)
        self.phase = phase


class APIResponseValidationError(APIError):
    """The server answered 2xx with a body that does not match the wire type."""


class APIStreamError(APIError):
    """The server reported an ``error`` event inside a stream or a realtime session.

    ``type``, ``code`` and ``param`` are the event's; ``status_code`` the HTTP status the
    same failure has on a plain request, where its type tells it.
    """

    def __init__(self, error: dict[str, Any]) -> None:
        super().__init__(str(error.get("message") or "the stream failed"))
        self.type: str | None = error.get("type")
        self.code: str | None = error.get("code")
        self.param: str | None = error.get("param")
        self.status_code: int | None = _ERROR_TYPE_STATUS.get(self.type or "")


class APIStatusError(APIError):
    """The server answered with a 4xx/5xx status and (usually) a JSON error envelope."""

    def __init__(self, message: str, *, response: httpx.Response, body: Any) -> None:
        super().__init__(message, request=response.request)
        self.response = response
        self.status_code = response.status_code
        self.body = body
        detail = body.get("error") if isinstance(body, dict) else None
        detail = detail if isinstance(detail, dict) else {}
        self.type: str | None = detail.get("type")
        self.param: str | None = detail.get("param")
        self.code: str | None = detail.get("code")
        envelope_id = body.get("request_id") if isinstance(body, dict) else None
        self.request_id: str | None = request_id_of(response) or envelope_id
        self.retry_after: float | None = parse_retry_after(response.headers.get("retry-after"))

    def __str__(self) -> str:
        suffix = f" (request id {self.request_id})" if self.request_id else ""
        return f"{self.status_code} {self.message}{suffix}"


class BadRequestError(APIStatusError):
    """400: the request is malformed or an option is out of range."""


class AuthenticationError(APIStatusError):
    """401: missing or wrong API key."""


class NotFoundError(APIStatusError):
    """404: unknown model, pipeline or route."""


class PayloadTooLargeError(APIStatusError):
    """413: over the server's upload, duration or text-length limit."""


class UnsupportedMediaTypeError(APIStatusError):
    """415: the server cannot decode this audio format."""


class UnprocessableEntityError(APIStatusError):
    """422: the request body failed the server's schema validation."""


class RateLimitError(APIStatusError):
    """429: too many requests; ``retry_after`` says when to come back."""


class InternalServerError(APIStatusError):
    """5xx: a fault on the server's side."""


class ServiceUnavailableError(InternalServerError):
    """503: the cluster is overloaded or still starting; ``retry_after`` says when to retry."""


_STATUS_ERRORS: dict[int, type[APIStatusError]] = {
    400: BadRequestError,
    401: AuthenticationError,
    404: NotFoundError,
    413: PayloadTooLargeError,
    415: UnsupportedMediaTypeError,
    422: UnprocessableEntityError,
    429: RateLimitError,
    503: ServiceUnavailableError,
}


# The JSON error envelope's ``type`` for each status a stream's error event may carry.
_ERROR_TYPE_STATUS = {
    "invalid_request_error": 400,
    "authentication_error": 401,
    "overloaded_error": 503,
    "server_error": 500,
}


def status_error(response: httpx.Response) -> APIStatusError:
    """The typed exception for a non-2xx ``response`` (whose body has been read)."""
    try:
        body: Any = response.json()
    except (json.JSONDecodeError, UnicodeDecodeError):
        body = response.text
    message = _message(body) or response.reason_phrase or "request failed"
    cls = _STATUS_ERRORS.get(response.status_code)
    if cls is None:
        cls = InternalServerError if response.status_code >= 500 else APIStatusError
    return cls(message, response=response, body=body)


def _message(body: Any) -> str | None:
    if isinstance(body, dict):
        error = body.get("error")
        if isinstance(error, dict) and error.get("message"):
            return str(error["message"])
        # FastAPI's own validation answers carry ``detail`` instead of our envelope.
        detail = body.get("detail")
        if detail:
            return detail if isinstance(detail, str) else json.dumps(detail)
    if isinstance(body, str) and body.strip():
        return body.strip()[:500]
    return None


def parse_retry_after(value: str | None) -> float | None:
    """Seconds from a ``Retry-After`` header (delta-seconds or HTTP date); None if unusable."""
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=timezone.utc)
    return max(0.0, (when - datetime.now(timezone.utc)).total_seconds())


# Statuses that say the server cannot take the call now, whatever the input.
_REFUSALS = frozenset({401, 403, 429, 502, 503, 504})


def is_refusal(exc: BaseException) -> bool:
    """True when the server was unreachable or refused the caller (not the input)."""
    if isinstance(exc, APIStatusError | APIStreamError):
        return exc.status_code in _REFUSALS
    return isinstance(exc, APIConnectionError)


def describe_error(exc: Exception) -> str:
    """One line for a person: what failed, with the request id when the server gave one."""
    if isinstance(exc, ValidationError):
        first = exc.errors()[0]
        where = ".".join(str(part) for part in first["loc"]) or exc.title
        return f"invalid option {where}: {first['msg']}"
    if isinstance(exc, APIConnectionError) and not isinstance(exc, APITimeoutError):
        return f"{exc.message} (is the server running?)"
    if isinstance(exc, OSError) and exc.filename:
        return f"{exc.strerror or exc}: {exc.filename}"
    return str(exc) or type(exc).__name__
