"""What the router knows about the request it is serving: its id, caller, deadline.

The HTTP middleware opens a scope per request; the service reads it (a context variable,
so tasks a request fans out to share it) to admit a request once, to bound every call
by the caller's deadline, and to charge the caller's quotas.
"""

from __future__ import annotations

import asyncio
import contextvars
import hashlib
import time
from collections.abc import Awaitable
from dataclasses import dataclass
from typing import Any

from deployments.errors import DeadlineExceeded, InvalidRequest
from deployments.router.admission import Admission

TIMEOUT_HEADER = "x-request-timeout"


@dataclass
class RequestScope:
    """One request. ``caller`` is a digest of the API key (never the key itself)."""

    request_id: str
    caller: str | None = None
    deadline: float | None = None  # time.monotonic() by which the answer is due
    admitted: bool = False


_scope: contextvars.ContextVar[RequestScope | None] = contextvars.ContextVar(
    "sonaray_request", default=None
)


def open_scope(request_id: str, api_key: str | None, timeout: str | None) -> RequestScope:
    """Start the scope of the request being handled in this context."""
    scope = RequestScope(request_id, caller_id(api_key), parse_deadline(timeout))
    _scope.set(scope)
    return scope


def current_scope() -> RequestScope | None:
    return _scope.get()


def caller_id(api_key: str | None) -> str | None:
    """A stable, non-reversible name for a key: quotas are kept per caller by it."""
    return hashlib.sha256(api_key.encode()).hexdigest()[:16] if api_key else None


def parse_deadline(timeout: str | None) -> float | None:
    if timeout is None:
        return None
    try:
        seconds = float(timeout)
    except ValueError:
        seconds = -1.0
    if not seconds > 0 or seconds != seconds:
        raise InvalidRequest(
            f"{TIMEOUT_HEADER} must be a positive number of seconds, got {timeout!r}",
            param=TIMEOUT_HEADER,
        )
    return time.monotonic() + seconds


def admit(admission: Admission, tasks: list[str]) -> None:
    """Admit the current request once (its first call, or all its tasks up front)."""
    scope = _scope.get()
    if scope is not None and scope.admitted:
        return
    admission.check(tasks, scope.deadline if scope else None)
    if scope is not None:
        scope.admitted = True


async def bounded(response: Any) -> Any:
    """Await a handle call within the request's deadline; cancel it downstream if the
    deadline passes or the request itself is cancelled (e.g. the client went away)."""
    scope = _scope.get()
    left = None if scope is None or scope.deadline is None else scope.deadline - time.monotonic()
    try:
        if left is None:
            return await response
        return await asyncio.wait_for(_result(response), max(0.0, left))
    except TimeoutError:
        response.cancel()
        raise DeadlineExceeded(
            "the request's deadline passed before it finished; its work was cancelled"
        ) from None
    except asyncio.CancelledError:
        response.cancel()
        raise


async def _result(response: Awaitable[Any]) -> Any:
    return await response
