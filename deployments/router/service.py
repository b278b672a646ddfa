"""What the routes do: limits, decoding once, dispatch to task handles, long audio, graphs.

Every API surface (native, OpenAI, Hugging Face) calls this one service, so limits,
errors and graphs behave the same on each. It holds ``DeploymentHandle``s keyed by task
id and never imports an engine.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import aclosing
from typing import Any

import ray
from ray.serve.exceptions import BackPressureError, DeploymentUnavailableError
from sonaray_client.types import (
    ModelCard,
    SpeechSegments,
    Transcription,
    TranscriptionOptions,
    VadOptions,
)

from deployments.audio import DecodedAudio, decode_audio, resample
from deployments.config import SonarayArgs, StepConfig
from deployments.errors import (
    InvalidRequest,
    ModelNotFound,
    Overloaded,
    PayloadTooLarge,
    SonarayError,
    UnsupportedMediaType,
)
from deployments.graph.runner import PipelineState, merge_segments, run_pipeline, transcribe_chunks
from deployments.graph.streams import transcribe_chunks_stream
from deployments.tasks.base import AudioItem, TextItem, Waveform, check_text

RETRYABLE = (ray.exceptions.ActorDiedError, ray.exceptions.ActorUnavailableError)


class SonarayService:
    """Holds the task handles and the validated args of one Router replica."""

    def __init__(self, args: SonarayArgs, handles: dict[str, Any], api_keys: set[str]):
        self.args = args
        self.api_keys = api_keys
        self.limits = args.limits
        self.handles = handles
        self._rates: dict[tuple[str, str], int] = {}

    # --- models ---------------------------------------------------------------------

    def model_for(self, task: str, model: str | None) -> str:
        """The model name serving ``task``: the one asked for, or the task's default."""
        if task not in self.handles:
            raise ModelNotFound(f"this cluster serves no {task!r} models", param="model")
        if model is None or model == "":
            return self.args.default_model(task).name
        names = [m.name for m in self.args.models_for(task)]
        if model not in names:
            raise ModelNotFound(
                f"model {model!r} does not serve task {task!r}; available: {names}", param="model"
            )
        return model

    def task_of(self, model: str) -> str:
        for m in self.args.models:
            if m.name == model:
                return m.task
        names = [m.name for m in self.args.models]
        raise ModelNotFound(f"unknown model {model!r}; available: {names}", param="model")

    async def model_cards(self) -> list[ModelCard]:
        lists = await asyncio.gather(*(h.model_cards.remote() for h in self.handles.values()))
        return [card for cards in lists for card in cards]

    async def sampling_rate(self, task: str, model: str | None) -> int:
        name = self.model_for(task, model)
        key = (task, name)
        if key not in self._rates:
            handle = self.handles[task].options(
                method_name="sampling_rate", multiplexed_model_id=name
            )
            self._rates[key] = await self._guarded(handle.remote, name)
        return self._rates[key]

    # --- calls ----------------------------------------------------------------------

    async def call(self, task: str, model: str | None, item: Any) -> Any:
        """One request to a task deployment; a replica that died is retried once."""
        name = self.model_for(task, model)
        handle = self.handles[task].options(multiplexed_model_id=name)
        return await self._guarded(handle.remote, name, item)

    async def _guarded(self, send, name: str, *args: Any) -> Any:
        for attempt in range(2):
            response = send(*args)
            try:
                return await response
            except asyncio.CancelledError:
                response.cancel()  # the caller went away: so does the replica's work
                raise
            except RETRYABLE as exc:
                if attempt == 1:
                    raise Overloaded(f"model {name} is restarting; retry shortly") from exc
            except (BackPressureError, DeploymentUnavailableError) as exc:
                raise Overloaded(f"model {name} is at capacity; retry shortly") from exc
            except ray.exceptions.RayTaskError as exc:
                cause = exc.cause
                if isinstance(cause, SonarayError):
                    raise cause from None
                raise
        raise AssertionError("unreachable")

    # --- input checks ---------------------------------------------------------------

    def check_upload(self, data: bytes, filename: str | None) -> None:
        if len(data) > self.limits.max_upload_bytes:
            raise PayloadTooLarge(
                f"upload is {len(data)} bytes; the limit is {self.limits.max_upload_bytes} bytes",
                param="file",
            )
        allowed = self.limits.allowed_formats
        if allowed and filename and "." in filename:
            ext = filename.rsplit(".", 1)[1].lower()
            if ext not in allowed:
                raise UnsupportedMediaType(
                    f"format {ext!r} is not accepted; allowed: {allowed}", param="file"
                )

    async def decode(
        self, data: bytes, filename: str | None, task: str, model: str | None
    ) -> DecodedAudio:
        """Check limits, decode once, resample to the model's rate."""
        self.check_upload(data, filename)
        rate = await self.sampling_rate(task, model)
        decoded = await asyncio.to_thread(
            decode_audio, data, target_rate=rate, max_seconds=self.limits.max_audio_seconds
        )
        return decoded

    def check_text(self, text: str, param: str = "input") -> str:
        return check_text(text, max_chars=self.limits.max_text_chars, param=param)

    # --- tasks ----------------------------------------------------------------------

    async def transcribe(
        self,
        audio: DecodedAudio,
        options: TranscriptionOptions,
        task: str = "seq2seq",
        model: str | None = None,
    ) -> Transcription:
        """ASR; audio longer than ``long_audio_seconds`` is cut at VAD segments first."""
        chunks = await self.long_audio_chunks(audio)
        if chunks is None:
            return await self.call(
                task, model, AudioItem(audio.audio, audio.sampling_rate, options)
            )
        result = await transcribe_chunks(
            self.call, task, model, audio.audio, audio.sampling_rate, chunks, options
        )
        return result.model_copy(update={"model": self.model_for(task, model)})

    async def transcribe_stream(
        self,
        audio: DecodedAudio,
        options: TranscriptionOptions,
        task: str = "seq2seq",
        model: str | None = None,
    ) -> AsyncIterator[Transcription]:
        """``transcribe`` as it happens: long audio yields each VAD chunk's text in order."""
        chunks = await self.long_audio_chunks(audio)
        if chunks is None:
            yield await self.call(task, model, AudioItem(audio.audio, audio.sampling_rate, options))
            return
        name = self.model_for(task, model)
        parts = transcribe_chunks_stream(
            self.call, (task, model), audio.audio, audio.sampling_rate, chunks, options
        )
        async with aclosing(parts):
            async for part in parts:
                yield part.model_copy(update={"model": name})

    async def long_audio_chunks(self, audio: DecodedAudio) -> list[tuple[float, float]] | None:
        """The VAD chunks long audio is transcribed in; None when it goes to the model whole."""
        if audio.duration <= self.limits.long_audio_seconds or "frames" not in self.handles:
            return None
        vad_rate = await self.sampling_rate("frames", None)
        vad_audio = resample(audio.audio, audio.sampling_rate, vad_rate)
        found: SpeechSegments = await self.call(
            "frames", None, AudioItem(vad_audio, vad_rate, VadOptions())
        )
        return merge_segments(found.segments, self.limits.chunk_seconds, audio.duration)

    async def synthesize(
        self, task: str, model: str | None, item: TextItem, *, param: str | None = None
    ) -> Waveform:
        """Text to audio (``tts`` speaks ``input``, ``generate`` plays ``prompt``), with the
        text limit checked first; ``param`` names the field in errors."""
        if task == "tts":
            text, field = item.options.input, "input"
        else:
            text, field = item.options.prompt, "prompt"
        self.check_text(text, param=param or field)
        return await self.call(task, model, item)

    def pipeline_steps(self, name: str) -> list[StepConfig]:
        if name not in self.args.pipelines:
            raise ModelNotFound(
                f"unknown pipeline {name!r}; available: {sorted(self.args.pipelines)}", param="name"
            )
        return [
            step.model_copy(update={"model": self.model_for(step.task, step.model)})
            for step in self.args.steps(name)
        ]

    async def pipeline(self, name: str, audio: DecodedAudio, options: dict) -> PipelineState:
        steps = self.pipeline_steps(name)
        unknown = set(options) - {s.task for s in steps}
        if unknown:
            raise InvalidRequest(
                f"options for step(s) {sorted(unknown)} not in pipeline {name!r}", param="options"
            )
        return await run_pipeline(
            self.call,
            steps,
            audio.audio,
            audio.sampling_rate,
            options,
            self.limits.chunk_seconds,
            self.sampling_rate,
        )
