"""Python SDK for Sonaray, a distributed audio inference cluster."""

from sonaray_client import types
from sonaray_client._version import __version__
from sonaray_client.async_client import AsyncSonaray
from sonaray_client.audio import AudioInput, encode_wav
from sonaray_client.client import Sonaray
from sonaray_client.errors import (
    APIConnectionError,
    APIError,
    APIResponseValidationError,
    APIStatusError,
    APIStreamError,
    APITimeoutError,
    AuthenticationError,
    BadRequestError,
    InternalServerError,
    NotFoundError,
    PayloadTooLargeError,
    RateLimitError,
    ServiceUnavailableError,
    SonarayError,
    UnprocessableEntityError,
    UnsupportedMediaTypeError,
)
from sonaray_client.realtime import AsyncRealtimeSession, RealtimeSession, RealtimeSessionClosed
from sonaray_client.streaming import AudioStream, Stream, TranscriptDelta, TranscriptDone
from sonaray_client.types import *  # noqa: F403

__all__ = [
    "APIConnectionError",
    "APIError",
    "APIResponseValidationError",
    "APIStatusError",
    "APIStreamError",
    "APITimeoutError",
    "AsyncRealtimeSession",
    "AsyncSonaray",
    "AudioStream",
    "AudioInput",
    "AuthenticationError",
    "BadRequestError",
    "InternalServerError",
    "NotFoundError",
    "PayloadTooLargeError",
    "RateLimitError",
    "RealtimeSession",
    "RealtimeSessionClosed",
    "ServiceUnavailableError",
    "Sonaray",
    "SonarayError",
    "Stream",
    "TranscriptDelta",
    "TranscriptDone",
    "UnprocessableEntityError",
    "UnsupportedMediaTypeError",
    "__version__",
    "encode_wav",
    *types.__all__,
]
