"""The Realtime protocol's server events, typed: what a live session yields.

Only the fields Sonaray's server sends are declared; anything else an event carries stays
on it (``extra="allow"``), and an event type not listed here comes as ``RealtimeEvent``.
"""

from __future__ import annotations

import base64
import json
from typing import Any

from pydantic import BaseModel, ConfigDict


class RealtimeEvent(BaseModel):
    """A server event; the subclasses below are the ones a session acts on."""

    model_config = ConfigDict(extra="allow")

    type: str
    event_id: str | None = None


class SessionEvent(RealtimeEvent):
    """``session.created`` / ``session.updated``: the session's settings now."""

    session: dict[str, Any]


class SpeechStarted(RealtimeEvent):
    """``input_audio_buffer.speech_started``: a turn began, ``audio_start_ms`` into the audio."""

    audio_start_ms: int
    item_id: str


class SpeechStopped(RealtimeEvent):
    """``input_audio_buffer.speech_stopped``: the turn ended ``audio_end_ms`` into the audio."""

    audio_end_ms: int
    item_id: str


class AudioCommitted(RealtimeEvent):
    """``input_audio_buffer.committed``: the turn's audio went to the recognizer."""

    item_id: str
    previous_item_id: str | None = None


class TranscriptionDelta(RealtimeEvent):
    """``conversation.item.input_audio_transcription.delta``: text of a turn, so far."""

    item_id: str
    delta: str


class TranscriptionCompleted(RealtimeEvent):
    """``conversation.item.input_audio_transcription.completed``: a turn's whole text."""

    item_id: str
    transcript: str
    usage: dict[str, Any] | None = None


class TranscriptionFailed(RealtimeEvent):
    """``conversation.item.input_audio_transcription.failed``: the turn was not transcribed."""

    item_id: str
    error: dict[str, Any]


class ResponseAudioDelta(RealtimeEvent):
    """``response.output_audio.delta``: pcm16 of the spoken reply (``audio`` decodes it)."""

    response_id: str
    item_id: str
    delta: str

    @property
    def audio(self) -> bytes:
        return base64.b64decode(self.delta)


class ResponseTranscriptDelta(RealtimeEvent):
    """``response.output_audio_transcript.delta``: the reply's text as it is spoken."""

    response_id: str
    delta: str


class ResponseTranscriptDone(RealtimeEvent):
    """``response.output_audio_transcript.done``: the reply's whole text."""

    response_id: str
    transcript: str


class ResponseDone(RealtimeEvent):
    """``response.done``: the reply ended; ``status`` is completed, cancelled or failed."""

    response: dict[str, Any]

    @property
    def status(self) -> str | None:
        return self.response.get("status")


class ErrorEvent(RealtimeEvent):
    """``error``: a client event was refused, or the session ends; ``message`` says why."""

    error: dict[str, Any]

    @property
    def message(self) -> str:
        return str(self.error.get("message") or "error")


EVENT_TYPES: dict[str, type[RealtimeEvent]] = {
    "session.created": SessionEvent,
    "session.updated": SessionEvent,
    "input_audio_buffer.speech_started": SpeechStarted,
    "input_audio_buffer.speech_stopped": SpeechStopped,
    "input_audio_buffer.committed": AudioCommitted,
    "conversation.item.input_audio_transcription.delta": TranscriptionDelta,
    "conversation.item.input_audio_transcription.completed": TranscriptionCompleted,
    "conversation.item.input_audio_transcription.failed": TranscriptionFailed,
    "response.output_audio.delta": ResponseAudioDelta,
    "response.output_audio_transcript.delta": ResponseTranscriptDelta,
    "response.output_audio_transcript.done": ResponseTranscriptDone,
    "response.done": ResponseDone,
    "error": ErrorEvent,
}


def parse_event(raw: str | bytes) -> RealtimeEvent:
    """The typed event of one WebSocket message."""
    body = json.loads(raw)
    return EVENT_TYPES.get(body.get("type"), RealtimeEvent).model_validate(body)
