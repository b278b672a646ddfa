"""``AsyncSonaray``: the asyncio twin of ``Sonaray``, method for method, over the same core."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterable, Mapping
from os import PathLike
from pathlib import Path
from typing import Any, Literal, TypeVar, overload

import httpx
from pydantic import BaseModel

from sonaray_client import core
from sonaray_client.audio import AudioInput
from sonaray_client.core import Headers, RequestOptions, Timeout
from sonaray_client.errors import APIError
from sonaray_client.realtime import AsyncRealtimeSession, Intent, RealtimeOptions
from sonaray_client.response import AudioBytes
from sonaray_client.streaming import AudioStream, Stream, TranscriptEvent
from sonaray_client.types import (
    AudioFormat,
    Classification,
    ModelList,
    PipelineResult,
    SpeechSegments,
    Transcription,
    TranscriptionOptions,
)

T = TypeVar("T")


class AsyncSonaray:
    """Asyncio client for a Sonaray cluster; options are validated by the wire types before sending.

    ``timeout`` is seconds (or an ``httpx.Timeout``), by default 120 s plus twice the audio's
    length; every method also takes its own ``timeout`` and ``extra_headers``.
    ``max_retries`` counts retries after the first try (see ``retry.is_retryable``);
    ``http_client`` replaces the ``httpx.AsyncClient`` the SDK would create (proxies, tests).
    """

    def __init__(
        self,
        *,
        base_url: str | None = None,
        api_key: str | None = None,
        timeout: float | httpx.Timeout | None = None,
        max_retries: int = 2,
        http_client: httpx.AsyncClient | None = None,
    ) -> None:
        self.settings = core.ClientSettings.resolve(base_url, api_key, timeout, max_retries)
        self._http = http_client or httpx.AsyncClient()
        self._owns_http = http_client is None

    @property
    def base_url(self) -> str:
        return self.settings.base_url

    async def close(self) -> None:
        """Close the HTTP connections, unless the caller passed in their own client."""
        if self._owns_http:
            await self._http.aclose()

    async def __aenter__(self) -> AsyncSonaray:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close()

    @overload
    async def transcribe(
        self, audio: AudioInput, *, stream: Literal[False] = False, **kwargs: Any
    ) -> Transcription: ...

    @overload
    async def transcribe(
        self, audio: AudioInput, *, stream: Literal[True], **kwargs: Any
    ) -> Stream[TranscriptEvent]: ...

    async def transcribe(
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

        ``stream=True`` gives the text as each chunk of the audio is done: ``async for`` over
        ``TranscriptDelta`` events, then one ``TranscriptDone`` with the whole text.
        """
        build = core.transcribe_stream if stream else core.transcribe
        return await self._request(
            build(audio, model, engine, options), RequestOptions(timeout, extra_headers)
        )

    async def transcribe_many(
        self,
        audios: Iterable[AudioInput],
        *,
        concurrency: int = 4,
        return_exceptions: bool = False,
        on_result: Callable[[int, Transcription | Exception], object] | None = None,
        model: str | None = None,
        engine: core.Engine = "seq2seq",
        timeout: Timeout = None,
        extra_headers: Headers = None,
        **options: Any,
    ) -> list[Transcription | Exception]:
        """``transcribe`` each input with at most ``concurrency`` requests in flight.

        Results come in input order. Like ``asyncio.gather``, the first failure is raised
        (the rest are cancelled) unless ``return_exceptions``, where it takes its input's
        place. ``on_result(index, result)`` is called as each one ends (progress bars).
        An input is read only when its turn comes, so a folder of long recordings is never
        all in memory at once.
        """
        if concurrency < 1:
            raise ValueError(f"concurrency must be at least 1, got {concurrency}")
        TranscriptionOptions(**options)  # a bad option fails once, before any upload
        limit = asyncio.Semaphore(concurrency)

        async def one(index: int, audio: AudioInput) -> Transcription | Exception:
            result: Transcription | Exception
            async with limit:
                try:
                    result = await self.transcribe(
                        audio,
                        model=model,
                        engine=engine,
                        timeout=timeout,
                        extra_headers=extra_headers,
                        **options,
                    )
                except Exception as exc:
                    if not return_exceptions:
                        raise
                    result = exc
            if on_result is not None:
                on_result(index, result)
            return result

        tasks = [asyncio.ensure_future(one(i, audio)) for i, audio in enumerate(audios)]
        try:
            return list(await asyncio.gather(*tasks))
        except BaseException:
            for task in tasks:
                task.cancel()
            raise

    async def classify(
        self,
        audio: AudioInput,
        *,
        model: str | None = None,
        timeout: Timeout = None,
        extra_headers: Headers = None,
        **options: Any,
    ) -> Classification:
        """Top-k labels of a clip; ``options`` are ``ClassificationOptions`` fields."""
        return await self._request(
            core.classify(audio, model, options), RequestOptions(timeout, extra_headers)
        )

    async def detect_speech(
        self,
        audio: AudioInput,
        *,
        model: str | None = None,
        timeout: Timeout = None,
        extra_headers: Headers = None,
        **options: Any,
    ) -> SpeechSegments:
        """Speech segments (VAD); ``options`` are ``VadOptions`` fields."""
        return await self._request(
            core.detect_speech(audio, model, options), RequestOptions(timeout, extra_headers)
        )

    @overload
    async def speak(
        self, text: str, *, stream: Literal[False] = False, **kwargs: Any
    ) -> AudioBytes: ...

    @overload
    async def speak(self, text: str, *, stream: Literal[True], **kwargs: Any) -> AudioStream: ...

    async def speak(
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
        ``stream=True`` gives the audio sentence by sentence as it is synthesized: ``async for``
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
        return await self._request(call, RequestOptions(timeout, extra_headers))

    async def speak_to_file(
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
        audio = await self.speak(
            text,
            model=model,
            response_format=fmt,
            timeout=timeout,
            extra_headers=extra_headers,
            **options,
        )
        path.write_bytes(audio)
        return path

    async def generate_audio(
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
        return await self._request(call, RequestOptions(timeout, extra_headers))

    async def run_pipeline(
        self,
        name: str,
        audio: AudioInput,
        options: Mapping[str, BaseModel | Mapping[str, Any]] | None = None,
        *,
        timeout: Timeout = None,
        extra_headers: Headers = None,
    ) -> PipelineResult:
        """Run a configured pipeline; ``options`` maps a step's task id to its options."""
        return await self._request(
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
    ) -> AsyncRealtimeSession:
        """A live session over ``/v1/realtime``, opened by ``async with``: see ``RealtimeOptions``.

        ``intent`` "transcription" transcribes each turn; "conversation" also speaks a reply.
        """
        options = RealtimeOptions(
            intent, model, sampling_rate, language, turn_detection, voice, session
        )
        return AsyncRealtimeSession(self.settings, options)

    async def models(self, *, timeout: Timeout = None, extra_headers: Headers = None) -> ModelList:
        """The models the cluster serves."""
        return await self._request(core.list_models(), RequestOptions(timeout, extra_headers))

    async def health(
        self, *, timeout: Timeout = None, extra_headers: Headers = None
    ) -> dict[str, Any]:
        """The server's health answer, ``{"status": "ok"}`` when it is up."""
        return await self._request(core.health(), RequestOptions(timeout, extra_headers))

    async def _request(self, call: core.ApiCall[T], options: RequestOptions) -> T:
        attempt = 0
        while True:
            try:
                return await self._send_once(call, options)
            except APIError as error:
                delay = self.settings.retry.delay_before_retry(attempt, error)
                if delay is None:
                    raise
            await asyncio.sleep(delay)
            attempt += 1

    async def _send_once(self, call: core.ApiCall[T], options: RequestOptions) -> T:
        request = call.build(self._http, self.settings, options)
        try:
            response = await self._http.send(request, stream=call.stream)
            if call.stream and not response.is_success:
                await response.aread()
                await response.aclose()
        except httpx.TransportError as exc:
            raise core.connection_error(exc, request) from exc
        return core.finish(call, response)
