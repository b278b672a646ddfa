"""``Sonaray``: the blocking client. ``AsyncSonaray`` is its asyncio twin, method for method."""

from __future__ import annotations

import time
from collections.abc import Mapping
from os import PathLike
from pathlib import Path
from typing import Any, Literal, TypeVar, overload

import httpx
from pydantic import BaseModel

from sonaray_client import core
from sonaray_client.audio import AudioInput
from sonaray_client.core import Headers, RequestOptions, Timeout
from sonaray_client.errors import APIError
from sonaray_client.realtime import Intent, RealtimeOptions, RealtimeSession
from sonaray_client.response import AudioBytes
from sonaray_client.streaming import AudioStream, Stream, TranscriptEvent
from sonaray_client.types import (
    AudioFormat,
    Classification,
    ModelList,
    PipelineResult,
    SpeechSegments,
    Transcription,
)

T = TypeVar("T")


class Sonaray:
    """Client for a Sonaray cluster; options are validated by the wire types before sending.

    ``timeout`` is seconds (or an ``httpx.Timeout``), by default 120 s plus twice the audio's
    length; every method also takes its own ``timeout`` and ``extra_headers``.
    ``max_retries`` counts retries after the first try (see ``retry.is_retryable``);
    ``http_client`` replaces the ``httpx.Client`` the SDK would create (proxies, tests).
    """

    def __init__(
        self,
        *,
        base_url: str | None = None,
        api_key: str | None = None,
        timeout: float | httpx.Timeout | None = None,
        max_retries: int = 2,
        http_client: httpx.Client | None = None,
    ) -> None:
        self.settings = core.ClientSettings.resolve(base_url, api_key, timeout, max_retries)
        self._http = http_client or httpx.Client()
        self._owns_http = http_client is None

    @property
    def base_url(self) -> str:
        return self.settings.base_url

    def close(self) -> None:
        """Close the HTTP connections, unless the caller passed in their own client."""
        if self._owns_http:
            self._http.close()

    def __enter__(self) -> Sonaray:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    @overload
    def transcribe(
        self, audio: AudioInput, *, stream: Literal[False] = False, **kwargs: Any
    ) -> Transcription: ...

    @overload
    def transcribe(
        self, audio: AudioInput, *, stream: Literal[True], **kwargs: Any
    ) -> Stream[TranscriptEvent]: ...

    def transcribe(
        self,
        audio: AudioInput,
        *,
        model: str | None = None,
        engine: core.Engine = "seq2seq",
        stream: bool = False,
        timeout: Timeout = None,
        extra_headers: Headers = None,
        **options: Any,
    ) -> Transcription | Stream[TranscriptEvent]:
        """Speech to text; ``options`` are ``TranscriptionOptions`` fields (language, task...).

        ``stream=True`` gives the text as each chunk of the audio is done: ``for`` over
        ``TranscriptDelta`` events, then one ``TranscriptDone`` with the whole text.
        """
        build = core.transcribe_stream if stream else core.transcribe
        return self._request(
            build(audio, model, engine, options), RequestOptions(timeout, extra_headers)
        )

    def classify(
        self,
        audio: AudioInput,
        *,
        model: str | None = None,
        timeout: Timeout = None,
        extra_headers: Headers = None,
        **options: Any,
    ) -> Classification:
        """Top-k labels of a clip; ``options`` are ``ClassificationOptions`` fields."""
        return self._request(
            core.classify(audio, model, options), RequestOptions(timeout, extra_headers)
        )

    def detect_speech(
        self,
        audio: AudioInput,
        *,
        model: str | None = None,
        timeout: Timeout = None,
        extra_headers: Headers = None,
        **options: Any,
    ) -> SpeechSegments:
        """Speech segments (VAD); ``options`` are ``VadOptions`` fields."""
        return self._request(
            core.detect_speech(audio, model, options), RequestOptions(timeout, extra_headers)
        )

    @overload
    def speak(self, text: str, *, stream: Literal[False] = False, **kwargs: Any) -> AudioBytes: ...

    @overload
    def speak(self, text: str, *, stream: Literal[True], **kwargs: Any) -> AudioStream: ...

    def speak(
        self,
        text: str,
        *,
        model: str | None = None,
        response_format: AudioFormat = "wav",
        reference: AudioInput | None = None,
        stream: bool = False,
        timeout: Timeout = None,
        extra_headers: Headers = None,
        **options: Any,
    ) -> AudioBytes | AudioStream:
        """Text to encoded audio; ``options`` are ``SpeechOptions`` fields (voice, speed, seed).

        ``reference``: a clip whose voice to clone (a model with an x-vector model).
        ``stream=True`` gives the audio sentence by sentence as it is synthesized: ``for``
        over its byte chunks (``sampling_rate`` says the rate; wav has a streaming header).
        A cloned voice does not stream yet.
        """
        if stream and reference is not None:
            raise ValueError("a cloned voice (reference=...) cannot stream yet")
        call = (
            core.speak_stream(text, model, response_format, options)
            if stream
            else core.speak(text, model, response_format, options, reference)
        )
        return self._request(call, RequestOptions(timeout, extra_headers))

    def speak_to_file(
        self,
        text: str,
        path: str | PathLike[str],
        *,
        model: str | None = None,
        timeout: Timeout = None,
        extra_headers: Headers = None,
        **options: Any,
    ) -> Path:
        """``speak`` into ``path``, in the format its suffix names (wav when unknown)."""
        path = Path(path)
        fmt = core.format_for(path)
        audio = self.speak(
            text,
            model=model,
            response_format=fmt,
            timeout=timeout,
            extra_headers=extra_headers,
            **options,
        )
        path.write_bytes(audio)
        return path

    def generate_audio(
        self,
        prompt: str,
        *,
        model: str | None = None,
        audio_prompt: AudioInput | None = None,
        response_format: AudioFormat = "wav",
        timeout: Timeout = None,
        extra_headers: Headers = None,
        **options: Any,
    ) -> AudioBytes:
        """Music/sound from a text (and optional audio) prompt; ``GenerationOptions`` fields."""
        call = core.generate_audio(prompt, model, audio_prompt, response_format, options)
        return self._request(call, RequestOptions(timeout, extra_headers))

    def run_pipeline(
        self,
        name: str,
        audio: AudioInput,
        options: Mapping[str, BaseModel | Mapping[str, Any]] | None = None,
        *,
        timeout: Timeout = None,
        extra_headers: Headers = None,
    ) -> PipelineResult:
        """Run a configured pipeline; ``options`` maps a step's task id to its options."""
        return self._request(
            core.run_pipeline(name, audio, options), RequestOptions(timeout, extra_headers)
        )

    def realtime(
        self,
        intent: Intent = "transcription",
        *,
        model: str | None = None,
        sampling_rate: int = 24000,
        language: str | None = None,
        turn_detection: Mapping[str, Any] | Literal["server_vad"] | None = "server_vad",
        voice: str | None = None,
        session: Mapping[str, Any] | None = None,
    ) -> RealtimeSession:
        """A live session over ``/v1/realtime``, opened by ``with``: see ``RealtimeOptions``.

        ``intent`` "transcription" transcribes each turn; "conversation" also speaks a reply.
        """
        options = RealtimeOptions(
            intent, model, sampling_rate, language, turn_detection, voice, session
        )
        return RealtimeSession(self.settings, options)

    def models(self, *, timeout: Timeout = None, extra_headers: Headers = None) -> ModelList:
        """The models the cluster serves."""
        return self._request(core.list_models(), RequestOptions(timeout, extra_headers))

    def health(self, *, timeout: Timeout = None, extra_headers: Headers = None) -> dict[str, Any]:
        """The server's health answer, ``{"status": "ok"}`` when it is up."""
        return self._request(core.health(), RequestOptions(timeout, extra_headers))

    def _request(self, call: core.ApiCall[T], options: RequestOptions) -> T:
        attempt = 0
        while True:
            try:
                return self._send_once(call, options)
            except APIError as error:
                delay = self.settings.retry.delay_before_retry(attempt, error)
                if delay is None:
                    raise
            time.sleep(delay)
            attempt += 1

    def _send_once(self, call: core.ApiCall[T], options: RequestOptions) -> T:
        request = call.build(self._http, self.settings, options)
        try:
            response = self._http.send(request, stream=call.stream)
            if call.stream and not response.is_success:
                response.read()
                response.close()
        except httpx.TransportError as exc:
            raise core.connection_error(exc, request) from exc
        return core.finish(call, response)
