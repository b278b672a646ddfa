"""Streamed responses read as they arrive: transcript events over SSE, speech as chunks.

One ``Stream`` class serves both clients: it is iterable and async-iterable over the same
open ``httpx.Response`` (whichever the client that made it can read), and closes it when
the items run out, on ``close()`` / ``aclose()``, or when a ``with`` block ends.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Callable, Iterator
from typing import Any, Generic, Literal, TypeVar

import httpx
from pydantic import BaseModel, ConfigDict

from sonaray_client.errors import APIConnectionError, APIStreamError
from sonaray_client.response import ResponseInfo

T = TypeVar("T")


class StreamEvent(BaseModel):
    """Base of the typed events of a stream; fields a newer server adds are kept."""

    model_config = ConfigDict(extra="allow")


class TranscriptDelta(StreamEvent):
    """More text of a streamed transcription; the deltas join to the done event's text."""

    type: Literal["transcript.text.delta"] = "transcript.text.delta"
    delta: str


class TranscriptDone(StreamEvent):
    """The end of a streamed transcription: the whole text, and the seconds of audio."""

    type: Literal["transcript.text.done"] = "transcript.text.done"
    text: str
    usage: dict[str, Any] | None = None


TranscriptEvent = TranscriptDelta | TranscriptDone


class SSEDecoder:
    """Server-Sent Events from byte chunks cut anywhere: the JSON of each ``data:`` field."""

    def __init__(self) -> None:
        self._buffer = b""
        self._data: list[str] = []

    def feed(self, chunk: bytes) -> list[dict[str, Any]]:
        self._buffer += chunk
        *lines, self._buffer = self._buffer.split(b"\n")
        events = []
        for raw in lines:
            line = raw.rstrip(b"\r").decode("utf-8")
            if not line:  # a blank line ends an event
                if self._data:
                    events.append(json.loads("\n".join(self._data)))
                self._data = []
            elif line.startswith("data:"):
                self._data.append(line[5:].removeprefix(" "))
        return events


def transcript_events(decoder: SSEDecoder) -> Callable[[bytes], list[TranscriptEvent]]:
    """A body chunk's typed transcript events; an ``error`` event raises ``APIStreamError``."""

    def decode(chunk: bytes) -> list[TranscriptEvent]:
        events: list[TranscriptEvent] = []
        for event in decoder.feed(chunk):
            kind = event.get("type")
            if kind == "error":
                raise APIStreamError(event.get("error") or {})
            if kind == "transcript.text.delta":
                events.append(TranscriptDelta.model_validate(event))
            elif kind == "transcript.text.done":
                events.append(TranscriptDone.model_validate(event))
        return events

    return decode


def audio_chunks(chunk: bytes) -> list[bytes]:
    """A body chunk as it came; empty ones left out."""
    return [chunk] if chunk else []


class Stream(Generic[T]):
    """Items of a response read as it arrives; ``decode`` turns body chunks into items.

    A ``Sonaray`` call gives a stream to iterate (``for``/``with``), an ``AsyncSonaray``
    call one to iterate asynchronously (``async for``/``async with``).
    """

    def __init__(self, response: httpx.Response, decode: Callable[[bytes], list[T]]) -> None:
        self.response = response
        self.response_info = ResponseInfo.of(response)
        self._decode = decode

    def __iter__(self) -> Iterator[T]:
        try:
            for chunk in self.response.iter_bytes():
                yield from self._decode(chunk)
        except httpx.TransportError as exc:
            raise broken(exc, self.response) from exc
        finally:
            self.close()

    async def __aiter__(self) -> AsyncIterator[T]:
        try:
            async for chunk in self.response.aiter_bytes():
                for item in self._decode(chunk):
                    yield item
        except httpx.TransportError as exc:
            raise broken(exc, self.response) from exc
        finally:
            await self.aclose()

    def close(self) -> None:
        self.response.close()

    async def aclose(self) -> None:
        await self.response.aclose()

    def __enter__(self) -> Stream[T]:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    async def __aenter__(self) -> Stream[T]:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()


class AudioStream(Stream[bytes]):
    """Encoded audio chunks as they are synthesized, with the audio's format and rate."""

    def __init__(self, response: httpx.Response, response_format: str) -> None:
        super().__init__(response, audio_chunks)
        self.response_format = response_format
        self.content_type = response.headers.get("content-type")
        rate = response.headers.get("x-sampling-rate", "")
        self.sampling_rate: int | None = int(rate) if rate.isdigit() else None


def broken(exc: httpx.TransportError, response: httpx.Response) -> APIConnectionError:
    """The error for a stream cut short: what came before it is incomplete."""
    return APIConnectionError(
        f"the stream from {response.request.url} broke off: {exc}", request=response.request
    )
