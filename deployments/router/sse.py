"""Server-Sent Events and chunked bodies for the streaming routes.

A stream's first piece is awaited before the response starts, so a request that fails
early (bad model, undecodable audio, text the engine refuses) still gets the ordinary
JSON error envelope and status. Once the stream is under way, an SSE stream ends with an
``error`` event (the envelope's ``error`` object, which the ``openai`` package raises as
``APIError``) and a chunked audio body is cut short, which a client sees as a broken
transfer rather than a complete file.
"""

from __future__ import annotations

import json
import logging
from collections.abc import AsyncIterator
from contextlib import aclosing
from typing import TypeVar

from fastapi.responses import StreamingResponse

from deployments.errors import SonarayError

logger = logging.getLogger("ray.serve")

T = TypeVar("T")
SSE_HEADERS = {"cache-control": "no-cache", "x-accel-buffering": "no"}


def sse_event(payload: dict, event: str | None = None) -> bytes:
    """One event: an optional ``event:`` line, then its JSON on one ``data:`` line."""
    head = f"event: {event}\n" if event else ""
    return f"{head}data: {json.dumps(payload, separators=(',', ':'))}\n\n".encode()


def error_event(exc: BaseException) -> bytes:
    """The ``error`` event that ends a stream; unexpected failures are logged, not shown."""
    if not isinstance(exc, SonarayError):
        logger.error("stream failed", exc_info=exc)
        exc = SonarayError(f"internal error ({type(exc).__name__}) while streaming")
    return sse_event({"type": "error", "error": exc.to_dict()}, event="error")


async def started(items: AsyncIterator[T]) -> AsyncIterator[T]:
    """``items`` with its first item already awaited: errors before it raise here."""
    try:
        first = await anext(items)
    except StopAsyncIteration:
        return items  # exhausted: iterating it again ends at once
    except BaseException:
        await items.aclose()
        raise
    return _prepended(first, items)


async def _prepended(first: T, rest: AsyncIterator[T]) -> AsyncIterator[T]:
    async with aclosing(rest):
        yield first
        async for item in rest:
            yield item


async def _sse_body(events: AsyncIterator[dict]) -> AsyncIterator[bytes]:
    async with aclosing(events):
        try:
            async for payload in events:
                yield sse_event(payload)
        except Exception as exc:
            yield error_event(exc)


async def sse_response(events: AsyncIterator[dict]) -> StreamingResponse:
    """A ``text/event-stream`` of ``events`` (dicts with a ``type``), started as above."""
    return StreamingResponse(
        _sse_body(await started(events)), media_type="text/event-stream", headers=SSE_HEADERS
    )


async def chunked_response(
    chunks: AsyncIterator[bytes], media_type: str, headers: dict[str, str] | None = None
) -> StreamingResponse:
    """A chunked body of ``chunks``, started as above."""
    return StreamingResponse(await started(chunks), media_type=media_type, headers=headers)
