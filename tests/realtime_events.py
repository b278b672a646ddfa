"""The ``openai`` package as the judge of Realtime server events, and pcm16 helpers."""

from __future__ import annotations

import base64
import copy

import numpy as np
from openai.types.realtime import RealtimeServerEvent
from pydantic import TypeAdapter

_SERVER_EVENT = TypeAdapter(RealtimeServerEvent)


def parsed(event: dict):
    """``event`` validated (strictly, unlike the client's lenient parse) as a GA server event.

    The package's types allow only 24 kHz pcm; Sonaray also takes 16 kHz input, so session
    events are checked with their rates set to 24000 (the one known deviation).
    """
    assert isinstance(event.get("event_id"), str) and event["event_id"], event
    checked = copy.deepcopy(event)
    audio = (checked.get("session") or {}).get("audio") or {}
    for side in audio.values():
        if isinstance(side, dict) and isinstance(side.get("format"), dict):
            side["format"]["rate"] = 24000
    return _SERVER_EVENT.validate_python(checked)


def pcm16(audio: np.ndarray) -> bytes:
    return (np.clip(audio, -1.0, 1.0) * 32767).astype("<i2").tobytes()


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def from_pcm16(data: bytes) -> np.ndarray:
    return np.frombuffer(data, dtype="<i2").astype(np.float32) / 32768.0
