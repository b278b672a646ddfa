"""Live sessions over ``/v1/realtime`` (OpenAI's Realtime protocol): audio in, events out.

``Sonaray.realtime(...)`` and ``AsyncSonaray.realtime(...)`` give a session to use in a
``with`` / ``async with`` block: ``append`` sends audio (pcm16 at the session's rate,
resampled from any other), iterating yields the typed server events of
``realtime_events``. Both twins share ``RealtimeOptions`` (the URL, the session update)
and ``AudioSender`` (the append events); only how they touch the socket differs.
"""

from __future__ import annotations

import asyncio
import base64
import json
from collections.abc import AsyncIterator, Iterator, Mapping
from contextlib import AsyncExitStack, ExitStack
from dataclasses import dataclass
from typing import Any, Literal
from urllib.parse import urlencode

from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, InvalidHandshake
from websockets.sync.client import ClientConnection as SyncConnection
from websockets.sync.client import connect as sync_connect

from sonaray_client.core import ClientSettings
from sonaray_client.errors import APIConnectionError, APIStreamError
from sonaray_client.pcm import Resampler, pcm16, to_bytes
from sonaray_client.realtime_events import ErrorEvent, RealtimeEvent, parse_event

Intent = Literal["transcription", "conversation"]
# An append carries at most this much audio, well under the server's default append limit.
APPEND_SECONDS = 1.0
OPEN_TIMEOUT_S = 30.0


@dataclass(frozen=True)
class RealtimeOptions:
    """How to open a session: what it does, and what its ``session.update`` changes.

    ``turn_detection``: ``"server_vad"`` keeps the server's voice activity detection as it
    is, a mapping sets its fields (``threshold``, ``prefix_padding_ms``,
    ``silence_duration_ms``), None turns it off (turns end on ``commit()``). ``session``
    holds further fields of OpenAI's session object, merged over the ones built here.
    """

    intent: Intent = "transcription"
    model: str | None = None
    sampling_rate: int = 24000
    language: str | None = None
    turn_detection: Mapping[str, Any] | Literal["server_vad"] | None = "server_vad"
    voice: str | None = None
    session: Mapping[str, Any] | None = None

    def url(self, base_url: str) -> str:
        query = {"intent": "transcription"} if self.intent == "transcription" else {}
        if self.model is not None:
            query["model"] = self.model
        ws_url = "ws" + base_url.removeprefix("http") + "/v1/realtime"
        return ws_url + ("?" + urlencode(query) if query else "")

    def update(self) -> dict[str, Any]:
        """The ``session.update`` that makes a fresh session this one."""
        audio_in: dict[str, Any] = {"format": {"type": "audio/pcm", "rate": self.sampling_rate}}
        if self.language is not None:
            audio_in["transcription"] = {"model": self.model, "language": self.language}
        if self.turn_detection != "server_vad":
            turns = self.turn_detection
            audio_in["turn_detection"] = None if turns is None else {"type": "server_vad", **turns}
        session: dict[str, Any] = {
            "type": "transcription" if self.intent == "transcription" else "realtime",
            "audio": {"input": audio_in},
        }
        if self.voice is not None:
            session["audio"]["output"] = {"voice": self.voice}
        return {"type": "session.update", "session": {**session, **(self.session or {})}}


class AudioSender:
    """Append events of audio at the session's rate, whatever rate it comes at."""

    def __init__(self, sampling_rate: int) -> None:
        self.sampling_rate = sampling_rate
        self._resamplers: dict[int, Resampler] = {}

    def append_events(self, audio: Any, sampling_rate: int | None) -> list[dict[str, Any]]:
        """``audio`` (pcm16 bytes or a float/int16 array at ``sampling_rate``, by default
        the session's) as appends of at most ``APPEND_SECONDS`` each."""
        rate = sampling_rate or self.sampling_rate
        samples = pcm16(audio)
        if rate != self.sampling_rate:
            if rate not in self._resamplers:
                self._resamplers[rate] = Resampler(rate, self.sampling_rate)
            samples = self._resamplers[rate](samples)
        step = int(APPEND_SECONDS * self.sampling_rate)
        return [
            {
                "type": "input_audio_buffer.append",
                "audio": base64.b64encode(to_bytes(samples[i : i + step])).decode("ascii"),
            }
            for i in range(0, len(samples), step)
        ]


class RealtimeSessionClosed(APIConnectionError):
    """The session's socket closed; ``code`` and ``reason`` are the server's close frame."""

    def __init__(self, exc: ConnectionClosed) -> None:
        frame = exc.rcvd
        self.code = frame.code if frame else None
        self.reason = frame.reason if frame else ""
        why = f"{self.code} {self.reason}".strip()
        super().__init__(f"the realtime session closed ({why})")


def opening_error(exc: Exception, url: str) -> APIConnectionError:
    return APIConnectionError(f"realtime connection to {url} failed: {exc}")


def check_opened(event: RealtimeEvent) -> RealtimeEvent:
    """A session that answers its opening with an ``error`` (a refused key, a full
    replica, an unknown model) raises it."""
    if isinstance(event, ErrorEvent):
        raise APIStreamError(event.error)
    return event


class RealtimeSession:
    """A blocking live session; ``with client.realtime(...) as session`` opens it."""

    def __init__(self, settings: ClientSettings, options: RealtimeOptions) -> None:
        self.options = options
        self._settings = settings
        self._sender = AudioSender(options.sampling_rate)
        self._ws: SyncConnection | None = None
        self._exit = ExitStack()
        self.session: dict[str, Any] = {}

    def __enter__(self) -> RealtimeSession:
        url = self.options.url(self._settings.base_url)
        try:
            self._ws = self._exit.enter_context(
                sync_connect(
                    url,
                    additional_headers=self._settings.headers(),
                    open_timeout=OPEN_TIMEOUT_S,
                    max_size=None,
                )
            )
        except (OSError, InvalidHandshake, TimeoutError) as exc:
            raise opening_error(exc, url) from exc
        try:
            check_opened(self.recv())
            self.send(self.options.update())
            while (event := check_opened(self.recv())).type != "session.updated":
                pass
        except BaseException:
            self.close()
            raise
        self.session = event.session
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def send(self, event: Mapping[str, Any]) -> None:
        """Send any client event of the protocol."""
        assert self._ws is not None, "open the session with `with` first"
        self._ws.send(json.dumps(event))

    def append(self, audio: Any, sampling_rate: int | None = None) -> None:
        """Send audio: pcm16 bytes or a float/int16 array at ``sampling_rate`` (default:
        the session's)."""
        for event in self._sender.append_events(audio, sampling_rate):
            self.send(event)

    def commit(self) -> None:
        """End the turn now (needed when turn detection is off)."""
        self.send({"type": "input_audio_buffer.commit"})

    def clear(self) -> None:
        self.send({"type": "input_audio_buffer.clear"})

    def recv(self, timeout: float | None = None) -> RealtimeEvent:
        """The next server event; ``TimeoutError`` when none comes within ``timeout``,
        ``RealtimeSessionClosed`` once the socket is closed."""
        assert self._ws is not None, "open the session with `with` first"
        try:
            return parse_event(self._ws.recv(timeout))
        except ConnectionClosed as exc:
            raise RealtimeSessionClosed(exc) from exc

    def __iter__(self) -> Iterator[RealtimeEvent]:
        """Server events until the session closes."""
        try:
            while True:
                yield self.recv()
        except RealtimeSessionClosed:
            return

    def close(self) -> None:
        self._exit.close()


class AsyncRealtimeSession:
    """The asyncio twin of ``RealtimeSession``: ``async with client.realtime(...)``."""

    def __init__(self, settings: ClientSettings, options: RealtimeOptions) -> None:
        self.options = options
        self._settings = settings
        self._sender = AudioSender(options.sampling_rate)
        self._ws: ClientConnection | None = None
        self._exit = AsyncExitStack()
        self.session: dict[str, Any] = {}

    async def __aenter__(self) -> AsyncRealtimeSession:
        url = self.options.url(self._settings.base_url)
        try:
            self._ws = await self._exit.enter_async_context(
                connect(
                    url,
                    additional_headers=self._settings.headers(),
                    open_timeout=OPEN_TIMEOUT_S,
                    max_size=None,
                )
            )
        except (OSError, InvalidHandshake, TimeoutError) as exc:
            raise opening_error(exc, url) from exc
        try:
            check_opened(await self.recv())
            await self.send(self.options.update())
            while (event := check_opened(await self.recv())).type != "session.updated":
                pass
        except BaseException:
            await self.close()
            raise
        self.session = event.session
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close()

    async def send(self, event: Mapping[str, Any]) -> None:
        """Send any client event of the protocol."""
        assert self._ws is not None, "open the session with `async with` first"
        await self._ws.send(json.dumps(event))

    async def append(self, audio: Any, sampling_rate: int | None = None) -> None:
        """Send audio: pcm16 bytes or a float/int16 array at ``sampling_rate`` (default:
        the session's)."""
        for event in self._sender.append_events(audio, sampling_rate):
            await self.send(event)

    async def commit(self) -> None:
        """End the turn now (needed when turn detection is off)."""
        await self.send({"type": "input_audio_buffer.commit"})

    async def clear(self) -> None:
        await self.send({"type": "input_audio_buffer.clear"})

    async def recv(self, timeout: float | None = None) -> RealtimeEvent:
        """The next server event; ``TimeoutError`` when none comes within ``timeout``,
        ``RealtimeSessionClosed`` once the socket is closed."""
        assert self._ws is not None, "open the session with `async with` first"
        try:
            return parse_event(await asyncio.wait_for(self._ws.recv(), timeout))
        except ConnectionClosed as exc:
            raise RealtimeSessionClosed(exc) from exc

    async def __aiter__(self) -> AsyncIterator[RealtimeEvent]:
        """Server events until the session closes."""
        try:
            while True:
                yield await self.recv()
        except RealtimeSessionClosed:
            return

    async def close(self) -> None:
        await self._exit.aclose()
