"""The Realtime protocol's wire shapes: client events parsed strictly enough to give clear
errors, server events built as the GA shapes the ``openai`` package parses.

Only what Sonaray acts on is modelled; unknown fields of known client events are ignored
(clients send OpenAI-only options such as ``noise_reduction``), unknown event types are
an ``error`` event.
"""

from __future__ import annotations

import base64
import binascii
import json
import uuid
from typing import Any, Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from deployments.errors import InvalidRequest, PayloadTooLarge, SonarayError

PCM_RATES = (8000, 16000, 22050, 24000, 44100, 48000)


def new_id(prefix: str) -> str:
    return f"{prefix}_{uuid.uuid4().hex[:20]}"


class AudioFormat(BaseModel):
    model_config = ConfigDict(extra="ignore")

    type: str = "audio/pcm"
    rate: int = 24000


class InputTranscription(BaseModel):
    model_config = ConfigDict(extra="ignore")

    model: str | None = None
    language: str | None = None
    prompt: str | None = None


class ServerVad(BaseModel):
    model_config = ConfigDict(extra="ignore")

    type: Literal["server_vad"] = "server_vad"
    threshold: float = Field(0.5, gt=0.0, lt=1.0)
    prefix_padding_ms: int = Field(300, ge=0, le=5000)
    silence_duration_ms: int = Field(500, ge=0, le=10000)


class AudioInput(BaseModel):
    model_config = ConfigDict(extra="ignore")

    format: AudioFormat | None = None
    transcription: InputTranscription | None = None
    turn_detection: ServerVad | None = None


class AudioOutput(BaseModel):
    model_config = ConfigDict(extra="ignore")

    format: AudioFormat | None = None
    voice: str | dict | None = None
    speed: float | None = Field(None, ge=0.25, le=4.0)


class SessionAudio(BaseModel):
    model_config = ConfigDict(extra="ignore")

    input: AudioInput | None = None
    output: AudioOutput | None = None


class SessionPatch(BaseModel):
    """The ``session`` of a ``session.update``; fields it omits stay as they were."""

    model_config = ConfigDict(extra="ignore")

    type: Literal["transcription", "realtime"] | None = None
    audio: SessionAudio | None = None
    instructions: str | None = None


def parse_client_event(raw: str) -> dict:
    """A client event as a dict with a string ``type``; a typed error for anything else."""
    try:
        body = json.loads(raw)
    except ValueError:
        raise InvalidRequest("a client event must be a JSON object; this is not JSON") from None
    if not isinstance(body, dict) or not isinstance(body.get("type"), str):
        raise InvalidRequest("a client event is a JSON object with a string `type`")
    return body


def parse_session_patch(body: dict) -> SessionPatch:
    try:
        patch = SessionPatch.model_validate(body.get("session") or {})
    except ValidationError as exc:
        raise InvalidRequest(f"invalid session: {_first_error(exc)}", param="session") from None
    for side in ("input", "output"):
        part = getattr(patch.audio, side, None) if patch.audio else None
        if part is not None and part.format is not None:
            check_format(part.format, f"session.audio.{side}.format")
    return patch


def check_format(fmt: AudioFormat, param: str) -> None:
    if fmt.type != "audio/pcm" or fmt.rate not in PCM_RATES:
        raise InvalidRequest(
            f"audio format {fmt.type} at {fmt.rate} Hz is not supported; use "
            f"audio/pcm (16-bit little-endian mono) at one of {list(PCM_RATES)} Hz",
            param=param,
        )


def decode_pcm16(body: dict, max_bytes: int) -> np.ndarray:
    """The base64 ``audio`` of an append as float32 samples in [-1, 1]."""
    encoded = body.get("audio")
    if not isinstance(encoded, str):
        raise InvalidRequest("input_audio_buffer.append needs a base64 string `audio`", "audio")
    if len(encoded) > max_bytes:
        raise PayloadTooLarge(
            f"append is {len(encoded)} bytes of base64; the limit is {max_bytes}", param="audio"
        )
    try:
        data = base64.b64decode(encoded, validate=True)
    except (binascii.Error, ValueError):
        raise InvalidRequest("`audio` is not valid base64", param="audio") from None
    if len(data) % 2:
        raise InvalidRequest(
            "`audio` must be 16-bit PCM: an even number of bytes, got an odd number",
            param="audio",
        )
    return np.frombuffer(data, dtype="<i2").astype(np.float32) / 32768.0


def encode_pcm16(audio: np.ndarray) -> str:
    pcm = (np.clip(audio, -1.0, 1.0) * 32767.0).astype("<i2")
    return base64.b64encode(pcm.tobytes()).decode("ascii")


def server_event(type_: str, **fields: Any) -> dict:
    """A server event with its ``event_id``."""
    return {"type": type_, "event_id": new_id("event"), **fields}


def error_event(exc: SonarayError, client_event_id: str | None = None) -> dict:
    return server_event(
        "error",
        error={
            "type": exc.type,
            "code": exc.code,
            "message": exc.message,
            "param": exc.param,
            "event_id": client_event_id,
        },
    )


def _first_error(exc: ValidationError) -> str:
    first = exc.errors()[0]
    where = ".".join(str(p) for p in first.get("loc", ()))
    return f"{where}: {first.get('msg')}" if where else str(first.get("msg"))
