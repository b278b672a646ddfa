"""The core both clients share: settings, request building, response parsing, error mapping.

Each API method is an ``ApiCall`` built here from the caller's arguments; ``Sonaray`` and
``AsyncSonaray`` differ only in how they send it (and sleep between retries).
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Generic, Literal, TypeVar
from urllib.parse import quote

import httpx
from pydantic import BaseModel, ValidationError

from sonaray_client._version import __version__
from sonaray_client.audio import AudioInput, to_upload
from sonaray_client.errors import (
    APIConnectionError,
    APIResponseValidationError,
    APITimeoutError,
    status_error,
)
from sonaray_client.response import AudioBytes, attach
from sonaray_client.retry import RetryPolicy
from sonaray_client.streaming import (
    AudioStream,
    SSEDecoder,
    Stream,
    TranscriptEvent,
    transcript_events,
)
from sonaray_client.types import (
    AUDIO_FORMATS,
    AudioFormat,
    Classification,
    ClassificationOptions,
    GenerationOptions,
    ModelList,
    PipelineResult,
    SpeechOptions,
    SpeechSegments,
    Transcription,
    TranscriptionOptions,
    VadOptions,
)

DEFAULT_BASE_URL = "http://127.0.0.1:8000"
DEFAULT_TIMEOUT_S = 120.0
# The default read timeout grows by this many seconds per second of audio in or out: the
# server answers only when the whole clip is done, and an hour of audio takes minutes.
READ_TIMEOUT_PER_AUDIO_S = 2.0
Engine = Literal["seq2seq", "ctc"]
Timeout = float | httpx.Timeout | None
Headers = Mapping[str, str] | None
T = TypeVar("T")
M = TypeVar("M", bound=BaseModel)


def default_timeout(audio_seconds: float) -> httpx.Timeout:
    """120 s per phase, the read timeout lengthened to suit ``audio_seconds`` of audio."""
    read = DEFAULT_TIMEOUT_S + READ_TIMEOUT_PER_AUDIO_S * audio_seconds
    return httpx.Timeout(DEFAULT_TIMEOUT_S, read=read)


def as_timeout(timeout: Timeout) -> httpx.Timeout | None:
    """Seconds as an ``httpx.Timeout``; None stays None (sized to each call's audio)."""
    if timeout is None or isinstance(timeout, httpx.Timeout):
        return timeout
    return httpx.Timeout(timeout)


@dataclass(frozen=True)
class ClientSettings:
    """Where the server is and how to talk to it; ``timeout`` None sizes it per call."""

    base_url: str
    api_key: str | None
    timeout: httpx.Timeout | None
    retry: RetryPolicy

    @classmethod
    def resolve(
        cls,
        base_url: str | None,
        api_key: str | None,
        timeout: Timeout,
        max_retries: int,
    ) -> ClientSettings:
        """Explicit arguments first, then $SONARAY_BASE_URL / $SONARAY_API_KEY, then defaults."""
        base_url = base_url or os.environ.get("SONARAY_BASE_URL") or DEFAULT_BASE_URL
        api_key = api_key if api_key is not None else os.environ.get("SONARAY_API_KEY")
        return cls(
            base_url.rstrip("/"), api_key or None, as_timeout(timeout), RetryPolicy(max_retries)
        )

    def headers(self) -> dict[str, str]:
        headers = {"User-Agent": f"sonaray-client/{__version__}"}
        if self.api_key:
            headers["Authorization"] = f"Bearer {self.api_key}"
        return headers


@dataclass(frozen=True)
class RequestOptions:
    """What one call may change of the client's settings (openai-python's names)."""

    timeout: Timeout = None
    extra_headers: Headers = None


@dataclass(frozen=True)
class ApiCall(Generic[T]):
    """One API request, ready to send any number of times, and how to read its answer.

    ``audio_seconds`` is how much audio the server must take in or produce, which sizes the
    default timeout. A ``stream`` call's body is left unread for ``parse`` to stream (an
    error's body is read before ``finish``).
    """

    method: str
    path: str
    parse: Callable[[httpx.Response], T]
    json: dict[str, Any] | None = None
    data: dict[str, str] | None = None
    files: dict[str, tuple[str, bytes, str]] | None = None
    audio_seconds: float = 0.0
    stream: bool = False

    def build(
        self,
        http: httpx.Client | httpx.AsyncClient,
        settings: ClientSettings,
        options: RequestOptions = RequestOptions(),
    ) -> httpx.Request:
        """The httpx request for this call on ``http``: the one place requests are made.

        Timeout: the call's own, else the client's, else one sized to the audio.
        """
        timeout = as_timeout(options.timeout) or settings.timeout
        timeout = timeout or default_timeout(self.audio_seconds)
        headers = settings.headers()
        if timeout.read is not None:  # the server cancels work it cannot finish in time
            headers["X-Request-Timeout"] = f"{timeout.read:g}"
        return http.build_request(
            self.method,
            settings.base_url + self.path,
            json=self.json,
            data=self.data,
            files=self.files,
            headers={**headers, **(options.extra_headers or {})},
            timeout=timeout,
        )


def connection_error(exc: httpx.TransportError, request: httpx.Request) -> APIConnectionError:
    """The SDK exception for an httpx transport failure."""
    if isinstance(exc, httpx.TimeoutException):
        phase = {
            httpx.ConnectTimeout: "connect",
            httpx.PoolTimeout: "pool",
            httpx.WriteTimeout: "write",
        }.get(type(exc), "read")
        return APITimeoutError(f"request timed out ({phase})", request=request, phase=phase)
    return APIConnectionError(f"connection to {request.url} failed: {exc}", request=request)


def finish(call: ApiCall[T], response: httpx.Response) -> T:
    """Parse a read response, raising the typed error for a non-2xx status.

    The one place responses are read: results come back with their ``response_info``.
    """
    if not response.is_success:
        raise status_error(response)
    try:
        return call.parse(response)
    except (ValidationError, ValueError) as exc:
        raise APIResponseValidationError(
            f"unexpected response from {call.path}: {exc}", request=response.request
        ) from exc


def _parse_as(model: type[M]) -> Callable[[httpx.Response], M]:
    return lambda response: attach(model.model_validate_json(response.content), response)


def _options_json(options: BaseModel) -> str:
    # Only what the caller set: the server's defaults apply to the rest.
    return options.model_dump_json(exclude_unset=True)


def _audio_call(
    path: str,
    audio: AudioInput,
    model: str | None,
    options: BaseModel,
    parse: Callable[[httpx.Response], T],
    extra_audio_s: float = 0.0,
    **fields: str,
) -> ApiCall[T]:
    data = {"options": _options_json(options), **_model_field(model), **fields}
    upload = to_upload(audio)
    return ApiCall(
        "POST",
        path,
        parse,
        data=data,
        files={"file": upload.as_file()},
        audio_seconds=upload.duration_s + extra_audio_s,
    )


def transcribe(
    audio: AudioInput, model: str | None, engine: Engine, options: Mapping[str, Any]
) -> ApiCall[Transcription]:
    if engine not in ("seq2seq", "ctc"):
        raise ValueError(f"engine must be 'seq2seq' or 'ctc', got {engine!r}")
    opts = TranscriptionOptions(**options)
    return _audio_call(f"/v1/{engine}", audio, model, opts, _parse_as(Transcription))


def transcribe_stream(
    audio: AudioInput, model: str | None, engine: Engine, options: Mapping[str, Any]
) -> ApiCall[Stream[TranscriptEvent]]:
    """``transcribe`` answered as SSE: a delta per chunk of audio as it finishes, then done."""
    call = transcribe(audio, model, engine, options)
    return replace(
        call,
        parse=lambda response: Stream(response, transcript_events(SSEDecoder())),
        data={**(call.data or {}), "stream": "true"},
        stream=True,
    )


def classify(
    audio: AudioInput, model: str | None, options: Mapping[str, Any]
) -> ApiCall[Classification]:
    opts = ClassificationOptions(**options)
    return _audio_call("/v1/classify", audio, model, opts, _parse_as(Classification))


def detect_speech(
    audio: AudioInput, model: str | None, options: Mapping[str, Any]
) -> ApiCall[SpeechSegments]:
    opts = VadOptions(**options)
    return _audio_call("/v1/frames", audio, model, opts, _parse_as(SpeechSegments))


def speak(
    text: str,
    model: str | None,
    response_format: AudioFormat,
    options: Mapping[str, Any],
    reference: AudioInput | None = None,
) -> ApiCall[AudioBytes]:
    body = SpeechOptions(input=text, **options).model_dump(exclude_unset=True)
    body.update(_model_field(model), response_format=response_format)
    if reference is None:
        return ApiCall("POST", "/v1/tts", AudioBytes.of, json=body)
    # A voice to clone travels as a file beside the same fields.
    files = {"reference_audio": to_upload(reference).as_file()}
    data = {"options": json.dumps(body)}
    return ApiCall("POST", "/v1/tts", AudioBytes.of, data=data, files=files)


def speak_stream(
    text: str, model: str | None, response_format: AudioFormat, options: Mapping[str, Any]
) -> ApiCall[AudioStream]:
    """``speak`` as a chunked body: each sentence's audio as soon as it is synthesized."""
    call = speak(text, model, response_format, options)
    return replace(
        call,
        parse=lambda response: AudioStream(response, response_format),
        json={**(call.json or {}), "stream": True},
        stream=True,
    )


def generate_audio(
    prompt: str,
    model: str | None,
    audio_prompt: AudioInput | None,
    response_format: AudioFormat,
    options: Mapping[str, Any],
) -> ApiCall[AudioBytes]:
    opts = GenerationOptions(prompt=prompt, **options)
    if audio_prompt is None:
        body = opts.model_dump(exclude_unset=True)
        body.update(_model_field(model), response_format=response_format)
        return ApiCall(
            "POST", "/v1/generate", AudioBytes.of, json=body, audio_seconds=opts.duration_s
        )
    return _audio_call(
        "/v1/generate",
        audio_prompt,
        model,
        opts,
        AudioBytes.of,
        extra_audio_s=opts.duration_s,
        response_format=response_format,
    )


def run_pipeline(
    name: str, audio: AudioInput, options: Mapping[str, BaseModel | Mapping[str, Any]] | None
) -> ApiCall[PipelineResult]:
    steps = {
        task: opts.model_dump(mode="json", exclude_unset=True)
        if isinstance(opts, BaseModel)
        else dict(opts)
        for task, opts in (options or {}).items()
    }
    path = f"/v1/pipelines/{quote(name, safe='')}"
    data = {"options": json.dumps(steps)} if steps else None
    upload = to_upload(audio)
    files = {"file": upload.as_file()}
    return ApiCall(
        "POST",
        path,
        _parse_as(PipelineResult),
        data=data,
        files=files,
        audio_seconds=upload.duration_s,
    )


def list_models() -> ApiCall[ModelList]:
    return ApiCall("GET", "/v1/models", _parse_as(ModelList))


def health() -> ApiCall[dict[str, Any]]:
    return ApiCall("GET", "/healthz", lambda response: dict(response.json()))


def format_for(path: Path) -> AudioFormat:
    """The audio format a file name's suffix asks for; wav when it names none we serve."""
    suffix = path.suffix.lower().lstrip(".")
    return suffix if suffix in AUDIO_FORMATS else "wav"


def _model_field(model: str | None) -> dict[str, str]:
    return {} if model is None else {"model": model}
