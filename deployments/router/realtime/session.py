"""One Realtime WebSocket session, alive on the Router replica that accepted the socket.

Three tasks run side by side: the reader (client events), turn detection (new audio goes
to the ``frames`` deployment in blocks with the session's Silero state, probabilities
come back to the ``TurnDetector``), and the turn worker (each committed turn is
transcribed by the ASR deployment, in order; in conversation sessions its transcript is
answered by a spoken reply, a fourth task that barge-in cancels). Every model call has a
timeout, so a replica that dies ends the session with an ``error`` event, not a hang.
When the socket closes, every task is cancelled, and with them their pending calls.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from asyncio import FIRST_EXCEPTION
from collections.abc import Awaitable
from dataclasses import dataclass, replace
from typing import Any

import numpy as np
import soxr
from fastapi import WebSocket, WebSocketDisconnect
from sonaray_client.types import TranscriptionOptions

from deployments.audio import DecodedAudio
from deployments.config import RealtimeConfig
from deployments.errors import (
    InvalidRequest,
    ModelError,
    Overloaded,
    PayloadTooLarge,
    SonarayError,
)
from deployments.protocol import Target
from deployments.router.realtime import events as ev
from deployments.router.realtime.conversation import Conversation
from deployments.router.realtime.input_audio import InputAudio
from deployments.router.realtime.responder import Echo, Responder
from deployments.router.realtime.settings import SessionSettings
from deployments.router.realtime.turns import SpeechStarted, SpeechStopped, TurnDetector
from deployments.router.service import SonarayService
from deployments.tasks.vad_stream import VadBlock

logger = logging.getLogger("ray.serve")

VAD_BLOCK_WINDOWS = 6  # 192 ms at 16 kHz: about five frames calls a second per session
VAD_MAX_WINDOWS = 64  # a session that fell behind catches up in blocks of up to 2 s
MIN_COMMIT_SECONDS = 0.1
OUTBOX_EVENTS = 256  # a client that stops reading holds back its session, not memory
CLOSE_NORMAL, CLOSE_POLICY, CLOSE_ERROR, CLOSE_TRY_AGAIN = 1000, 1008, 1011, 1013


class ClientGone(Exception):
    """The client closed the socket."""


class SessionFailed(Exception):
    """A fault that ends the session: the error to report and the close code."""

    def __init__(self, error: SonarayError, code: int = CLOSE_ERROR):
        super().__init__(error.message)
        self.error, self.code = error, code


@dataclass
class Turn:
    item_id: str
    audio: np.ndarray  # at the VAD rate
    respond: bool


class RespondRequest:
    """``response.create``: answer the last transcript once the turns before it are done."""


class RealtimeSession:
    def __init__(
        self,
        ws: WebSocket,
        service: SonarayService,
        settings: SessionSettings,
        realtime: RealtimeConfig,
        vad: Target | None,
        voice: Target | None = None,
        responder: Responder | None = None,
    ):
        self.ws, self.service, self.settings, self.realtime = ws, service, settings, realtime
        self.vad, self.voice = vad, voice  # voice: the tts of conversation sessions
        self.limits = service.limits
        self.rate = 16000
        self.audio = InputAudio(settings.input_rate, self.rate)
        self.detector: TurnDetector | None = None
        self.pending_item: str | None = None
        self._turn_start = 0
        self.last_item: str | None = None
        self.last_transcript: str | None = None
        self.conversation = (
            Conversation(responder or Echo(), voice, self._call, self.send, realtime.call_timeout_s)
            if voice is not None
            else None
        )
        self._outbox: asyncio.Queue[dict | None] = asyncio.Queue(OUTBOX_EVENTS)
        self._closed = False
        self._new_audio = asyncio.Event()
        self._turns: asyncio.Queue[Turn | RespondRequest] = asyncio.Queue()

    # --- lifetime -------------------------------------------------------------------

    async def run(self) -> None:
        writer = asyncio.create_task(self._write())
        await self.send(ev.server_event("session.created", session=self.settings.to_wire()))
        tasks = [
            asyncio.create_task(work())
            for work in (self._read, self._detect_turns, self._work_turns)
        ]
        try:
            done, pending = await asyncio.wait(
                tasks, timeout=self.limits.max_session_seconds, return_when=FIRST_EXCEPTION
            )
            code = await self._report_end(done, pending)
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            await self._cancel_reply(None)
            await self._outbox.put(None)
            await asyncio.wait([writer], timeout=5)  # wait_for may swallow a cancellation
            if code is not None:
                with contextlib.suppress(Exception):
                    await self.ws.close(code)
        finally:  # also when cancelled from outside: stop everything without awaiting
            self._closed = True
            for task in (*tasks, writer):
                task.cancel()
            if self.conversation is not None:
                self.conversation.stop()

    async def _report_end(self, done: set[asyncio.Task], pending: set[asyncio.Task]) -> int | None:
        """Send the event that says why the session ends; the close code (None: the
        client left)."""
        failure = next((t.exception() for t in done if t.exception() is not None), None)
        if isinstance(failure, ClientGone):
            return None
        if isinstance(failure, SessionFailed):
            await self.send(ev.error_event(failure.error))
            return failure.code
        if failure is not None:
            logger.error("realtime session failed", exc_info=failure)
            await self.send(ev.error_event(ModelError(f"internal error: {failure!r}")))
            return CLOSE_ERROR
        if pending:
            seconds = self.limits.max_session_seconds
            expired = PayloadTooLarge(
                f"the session reached its {seconds:g} s limit (limits.max_session_seconds)",
                code="session_expired",
            )
            await self.send(ev.error_event(expired))
            return CLOSE_POLICY
        return CLOSE_NORMAL

    async def send(self, event: dict) -> None:
        if not self._closed:
            await self._outbox.put(event)

    async def _write(self) -> None:
        while (event := await self._outbox.get()) is not None:
            if self._closed:
                continue  # keep draining so no sender stays blocked
            try:
                await self.ws.send_text(json.dumps(event))
            except Exception:
                self._closed = True

    async def _call(self, target: Target, item: Any) -> Any:
        """A model call with the session's timeout; any failure is a typed error."""
        return await self._guard(self.service.call(target, item), target.model)

    async def _guard(self, work: Awaitable[Any], what: str, extra_s: float = 0.0) -> Any:
        timeout = self.realtime.call_timeout_s + extra_s
        try:
            return await asyncio.wait_for(work, timeout)
        except SonarayError:
            raise
        except TimeoutError:
            raise Overloaded(f"model {what} did not answer within {timeout:g}s") from None
        except Exception as exc:
            logger.exception("realtime call to %s failed", what)
            raise ModelError(f"model {what} failed: {type(exc).__name__}") from None

    # --- client events --------------------------------------------------------------

    async def _read(self) -> None:
        while True:
            try:
                raw = await self.ws.receive_text()
            except WebSocketDisconnect:
                raise ClientGone from None
            except KeyError:  # a binary frame: starlette finds no "text" in the message
                await self.send(ev.error_event(InvalidRequest("send events as JSON text frames")))
                continue
            body: dict = {}
            try:
                body = ev.parse_client_event(raw)
                await self._handle(body)
            except SonarayError as exc:
                event_id = body.get("event_id") if isinstance(body.get("event_id"), str) else None
                await self.send(ev.error_event(exc, event_id))

    async def _handle(self, body: dict) -> None:
        kind = body["type"]
        if kind == "input_audio_buffer.append":
            samples = ev.decode_pcm16(body, self.limits.max_append_bytes)
            held = self.audio.seconds(self.audio.base, self.audio.total)
            if held > self.limits.max_audio_seconds:
                raise PayloadTooLarge(
                    f"the input audio buffer holds {held:.0f} s, the limit "
                    "(limits.max_audio_seconds); commit or clear it",
                    param="audio",
                )
            self.audio.append(samples)
            self._new_audio.set()
        elif kind == "input_audio_buffer.commit":
            self.audio.flush()
            await self._commit_all()
        elif kind == "input_audio_buffer.clear":
            self.audio.drop_before(self.audio.total)
            if self.detector is not None:
                self.detector.reset(self.audio.total)
            self.pending_item = None
            await self.send(ev.server_event("input_audio_buffer.cleared"))
        elif kind == "session.update":
            patch = ev.parse_session_patch(body)
            new = self.settings.updated(patch, self.service)
            if new.input_rate != self.settings.input_rate:
                self.audio.set_input_rate(new.input_rate)
            if new.turns != self.settings.turns:
                self.detector = None  # rebuilt with the new settings from the next block
            self.settings = new
            await self.send(ev.server_event("session.updated", session=new.to_wire()))
        elif kind in ("response.create", "response.cancel", "output_audio_buffer.clear"):
            if self.settings.kind != "realtime":
                raise InvalidRequest(f"{kind} needs a conversation session (type realtime)")
            if kind == "response.create":
                await self._turns.put(RespondRequest())
            elif not await self._cancel_reply("client_cancelled"):
                raise InvalidRequest("there is no response in progress to cancel")
        else:
            raise InvalidRequest(f"unknown or unsupported client event type {kind!r}", param="type")

    async def _commit_all(self) -> None:
        start, end = self.audio.base, self.audio.total
        if self.audio.seconds(start, end) < MIN_COMMIT_SECONDS:
            seconds = self.audio.seconds(start, end)
            raise InvalidRequest(
                f"buffer too small: {seconds * 1000:.0f} ms of audio; a commit needs at least "
                f"{MIN_COMMIT_SECONDS * 1000:.0f} ms",
                param="audio",
            )
        if self.detector is not None:
            self.detector.reset(end)
        await self._commit(self.pending_item or ev.new_id("item"), start, end, respond=False)

    async def _commit(self, item_id: str, start: int, end: int, respond: bool) -> None:
        audio = self.audio.slice(start, end)
        self.audio.drop_before(end)
        self.pending_item = None
        await self.send(
            ev.server_event(
                "input_audio_buffer.committed", item_id=item_id, previous_item_id=self.last_item
            )
        )
        self.last_item = item_id
        await self._turns.put(Turn(item_id, audio, respond))

    # --- turn detection -------------------------------------------------------------

    async def _detect_turns(self) -> None:
        if self.vad is None:
            return
        scored = self.audio.total  # audio appended while the first call runs is scored too
        try:  # a fresh state: also tells whether this model can score a live stream
            first = await self._call(self.vad, VadBlock(np.zeros(0, np.float32), self.rate))
        except InvalidRequest as exc:
            await self.send(ev.error_event(exc))
            if self.settings.turns is not None:
                self.settings = replace(self.settings, turns=None)
                await self.send(ev.server_event("session.updated", session=self.settings.to_wire()))
            return
        window, state = first.window, None
        block = VAD_BLOCK_WINDOWS * window
        while True:
            await self._new_audio.wait()
            self._new_audio.clear()
            while self.audio.total - scored >= block:
                if self.settings.turns is None:
                    scored, state, self.detector = self.audio.total, None, None
                    break
                if self.detector is None:
                    self.detector = TurnDetector(self.settings.turns, self.rate, window)
                    self.detector.reset(scored)
                windows = min((self.audio.total - scored) // window, VAD_MAX_WINDOWS)
                chunk = self.audio.slice(scored, scored + windows * window)
                try:
                    scores = await self._call(self.vad, VadBlock(chunk, self.rate, state))
                except SonarayError as exc:
                    raise SessionFailed(exc) from None
                state = scores.state
                for edge in (
                    self.detector.feed(scores.probabilities, scored) if self.detector else []
                ):
                    await self._on_edge(edge)
                scored += windows * window
                if self.detector and self.detector.speaking and self._turn_too_long(scored):
                    # a turn without a pause is cut where Whisper's window ends
                    self.detector.reset(scored)
                    await self._on_edge(SpeechStopped(scored, scored))
                self._trim(scored)

    async def _on_edge(self, edge: SpeechStarted | SpeechStopped) -> None:
        if isinstance(edge, SpeechStarted):
            self.pending_item = ev.new_id("item")
            await self.send(
                ev.server_event(
                    "input_audio_buffer.speech_started",
                    audio_start_ms=self._ms(edge.start),
                    item_id=self.pending_item,
                )
            )
            await self._cancel_reply("turn_detected")
            self._turn_start = edge.start
            return
        item_id = self.pending_item or ev.new_id("item")
        await self.send(
            ev.server_event(
                "input_audio_buffer.speech_stopped",
                audio_end_ms=self._ms(edge.end),
                item_id=item_id,
            )
        )
        respond = self.settings.kind == "realtime"
        await self._commit(item_id, self._turn_start, edge.end, respond)

    def _turn_too_long(self, scored: int) -> bool:
        return self.audio.seconds(self._turn_start, scored) >= self.limits.chunk_seconds

    def _trim(self, scored: int) -> None:
        keep = self.detector.keep_from if self.detector else None
        if keep is None and self.settings.turns is not None:
            keep = scored - self.settings.turns.prefix_padding_ms * self.rate // 1000
        if keep is not None:
            self.audio.drop_before(keep)

    def _ms(self, position: int) -> int:
        return position * 1000 // self.rate

    # --- turns ----------------------------------------------------------------------

    async def _work_turns(self) -> None:
        while True:
            job = await self._turns.get()
            if isinstance(job, RespondRequest):
                if self.last_transcript is None:
                    await self.send(
                        ev.error_event(InvalidRequest("there is no user turn to answer"))
                    )
                else:
                    await self.conversation.answer(self.last_transcript, self.settings)
                continue
            text = await self._transcribe(job)
            if text:
                self.last_transcript = text
                if job.respond:
                    await self.conversation.answer(text, self.settings)

    async def _transcribe(self, turn: Turn) -> str | None:
        s = self.settings
        fail = {"item_id": turn.item_id, "content_index": 0}
        try:
            rate = await self.service.sampling_rate(s.asr)
            audio = turn.audio if rate == self.rate else soxr.resample(turn.audio, self.rate, rate)
            options = TranscriptionOptions(language=s.language, prompt=s.prompt, timestamps="none")
            # a long manual commit is cut at VAD segments like any long upload
            decoded = DecodedAudio(audio, rate, self.settings.input_rate, 1)
            work = self.service.transcribe(decoded, options, s.asr)
            result = await self._guard(work, s.asr.model, extra_s=decoded.duration / 4)
        except SonarayError as exc:
            await self.send(
                ev.server_event(
                    "conversation.item.input_audio_transcription.failed",
                    error={"type": exc.type, "code": exc.code, "message": exc.message},
                    **fail,
                )
            )
            if exc.status >= 500:
                raise SessionFailed(exc) from None
            return None
        text = result.text.strip()
        await self.send(
            ev.server_event("conversation.item.input_audio_transcription.delta", delta=text, **fail)
        )
        await self.send(
            ev.server_event(
                "conversation.item.input_audio_transcription.completed",
                transcript=text,
                usage={"type": "duration", "seconds": round(len(turn.audio) / self.rate, 3)},
                **fail,
            )
        )
        return text

    async def _cancel_reply(self, reason: str | None) -> bool:
        return self.conversation is not None and await self.conversation.cancel(reason)
