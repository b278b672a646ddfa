"""The core both clients share: settings, request building, response parsing, error mapping.

Each API method is an ``ApiCall`` built here from the caller's arguments; ``Sonaray`` and
``AsyncSonaray`` differ only in how they send it (and sleep between retries).
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Generic, Literal, TypeVar, get_args
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
from sonaray_client.retry import RetryPolicy
from sonaray_client.types import (
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
Engine = Literal["seq2seq", "ctc"]
T = TypeVar("T")
M = TypeVar("M", bound=BaseModel)


@dataclass(frozen=True)
class ClientSettings:
    """Where the server is and how to talk to it."""

    base_url: str
    api_key: str | None
    timeout: httpx.Timeout
    retry: RetryPolicy

    @classmethod
    def resolve(
        cls,
        base_url: str | None,
        api_key: str | None,
        timeout: float | httpx.Timeout | None,
        max_retries: int,
    ) -> ClientSettings:
        """Explicit arguments first, then $SONARAY_BASE_URL / $SONARAY_API_KEY, then defaults."""
        base_url = base_url or os.environ.get("SONARAY_BASE_URL") or DEFAULT_BASE_URL
        api_key = api_key if api_key is not None else os.environ.get("SONARAY_API_KEY")
        if not isinstance(timeout, httpx.Timeout):
            timeout = httpx.Timeout(DEFAULT_TIMEOUT_S if timeout is None else timeout)
        return cls(base_url.rstrip("/"), api_key or None, timeout, RetryPolicy(max_retries))

    def headers(self) -> dict[str, str]:
        headers = {"User-Agent": f"sonaray-client/{__version__}"}
        if self.api_key:
            headers["Authorization"] = f"Bearer {self.api_key}"
        if self.timeout.read is not None:  # the server cancels work it cannot finish in time
            headers["X-Request-Timeout"] = f"{self.timeout.read:g}"
        return headers


@dataclass(frozen=True)
class ApiCall(Generic[T]):
    """One API request, ready to send any number of times, and how to read its answer."""

    method: str
    path: str
    parse: Callable[[httpx.Response], T]
    json: dict[str, Any] | None = None
    data: dict[str, str] | None = None
    files: dict[str, tuple[str, bytes, str]] | None = None

    def build(
        self, http: httpx.Client | httpx.AsyncClient, settings: ClientSettings
    ) -> httpx.Request:
        """The httpx request for this call on ``http``."""
        return http.build_request(
            self.method,
            settings.base_url + self.path,
            json=self.json,
            data=self.data,
            files=self.files,
            headers=settings.headers(),
            timeout=settings.timeout,
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
    """Parse a read response, raising the typed error for a non-2xx status."""
    if not response.is_success:
        raise status_error(response)
    try:
        return call.parse(response)
    except (ValidationError, ValueError) as exc:
        raise APIResponseValidationError(
            f"unexpected response from {call.path}: {exc}", request=response.request
        ) from exc


def _parse_as(model: type[M]) -> Callable[[httpx.Response], M]:
    return lambda response: model.model_validate_json(response.content)


def _read_bytes(response: httpx.Response) -> bytes:
    return response.content


def _options_json(options: BaseModel) -> str:
    # Only what the caller set: the server's defaults apply to the rest.
    return options.model_dump_json(exclude_unset=True)


def _audio_call(
    path: str,
    audio: AudioInput,
    model: str | None,
    options: BaseModel,
    parse: Callable[[httpx.Response], T],
    **fields: str,
) -> ApiCall[T]:
    data = {"options": _options_json(options), **_model_field(model), **fields}
    return ApiCall("POST", path, parse, data=data, files={"file": to_upload(audio).as_file()})


def transcribe(
    audio: AudioInput, model: str | None, engine: Engine, options: Mapping[str, Any]
) -> ApiCall[Transcription]:
    if engine not in ("seq2seq", "ctc"):
        raise ValueError(f"engine must be 'seq2seq' or 'ctc', got {engine!r}")
    opts = TranscriptionOptions(**options)
    return _audio_call(f"/v1/{engine}", audio, model, opts, _parse_as(Transcription))


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
    text: str, model: str | None, response_format: AudioFormat, options: Mapping[str, Any]
) -> ApiCall[bytes]:
    body = SpeechOptions(input=text, **options).model_dump(exclude_unset=True)
    body.update(_model_field(model), response_format=response_format)
    return ApiCall("POST", "/v1/tts", _read_bytes, json=body)


def generate_audio(
    prompt: str,
    model: str | None,
    audio_prompt: AudioInput | None,
    response_format: AudioFormat,
    options: Mapping[str, Any],
) -> ApiCall[bytes]:
    opts = GenerationOptions(prompt=prompt, **options)
    if audio_prompt is None:
        body = opts.model_dump(exclude_unset=True)
        body.update(_model_field(model), response_format=response_format)
        return ApiCall("POST", "/v1/generate", _read_bytes, json=body)
    return _audio_call(
        "/v1/generate", audio_prompt, model, opts, _read_bytes, response_format=response_format
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
    files = {"file": to_upload(audio).as_file()}
    return ApiCall("POST", path, _parse_as(PipelineResult), data=data, files=files)


def list_models() -> ApiCall[ModelList]:
    return ApiCall("GET", "/v1/models", _parse_as(ModelList))


def health() -> ApiCall[dict[str, Any]]:
    return ApiCall("GET", "/healthz", lambda response: dict(response.json()))


def format_for(path: Path) -> AudioFormat:
    """The audio format a file name's suffix asks for; wav when it names none we serve."""
    suffix = path.suffix.lower().lstrip(".")
    return suffix if suffix in get_args(AudioFormat) else "wav"


def _model_field(model: str | None) -> dict[str, str]:
    return {} if model is None else {"model": model}
