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
from deployments.config import SonarayArgs
from deployments.errors import (
    ModelNotFound,
    Overloaded,
    PayloadTooLarge,
    SonarayError,
    UnsupportedMediaType,
)
from deployments.graph.runner import (
    PipelineContext,
    PipelineState,
    merge_segments,
    run_pipeline,
    transcribe_chunks,
)
from deployments.graph.streams import transcribe_chunks_stream
from deployments.protocol import (
    ROLES,
    TASKS,
    AudioItem,
    Target,
    TextItem,
    Waveform,
    check_text,
)
from deployments.router.admission import Admission
from deployments.router.quotas import CallerQuotas
from deployments.router.request_scope import admit, bounded, current_scope

RETRYABLE = (ray.exceptions.ActorDiedError, ray.exceptions.ActorUnavailableError)


class SonarayService:
    """Holds the task handles and the validated args of one Router replica."""

    def __init__(self, args: SonarayArgs, handles: dict[str, Any], api_keys: set[str]):
        self.args = args
        self.api_keys = api_keys
        self.limits = args.limits
        self.handles = handles
        self.admission = Admission(args.limits.max_queue_seconds)
        self.quotas = CallerQuotas(args.limits)
        self._rates: dict[Target, int] = {}
        # Pipelines are fixed by the config: resolve their steps once, not per request.
        self._pipelines = {
            name: [self.target(s.task, s.model) for s in args.steps(name)]
            for name in args.pipelines
        }

    # --- models ---------------------------------------------------------------------

    def target(self, task: str, model: str | None = None) -> Target:
        """The (task, model) a request runs on: the model asked for, or the task's default."""
        if task not in self.handles:
            raise ModelNotFound(f"this cluster serves no {task!r} models", param="model")
        if not model:
            return Target(TASKS[task], self.args.default_model(task).name)
        names = [m.name for m in self.args.models_for(task)]
        if model not in names:
            raise ModelNotFound(
                f"model {model!r} does not serve task {task!r}; available: {names}", param="model"
            )
        return Target(TASKS[task], model)

    def target_of(self, model: str) -> Target:
        """The target of a served model's name, whatever its task."""
        for m in self.args.models:
            if m.name == model:
                return Target(TASKS[m.task], m.name)
        names = [m.name for m in self.args.models]
        raise ModelNotFound(f"unknown model {model!r}; available: {names}", param="model")

    def serves(self, task: str) -> bool:
        return task in self.handles

    async def model_cards(self) -> list[ModelCard]:
        lists = await asyncio.gather(*(h.model_cards.remote() for h in self.handles.values()))
        return [card for cards in lists for card in cards]

    async def sampling_rate(self, target: Target) -> int:
        if target not in self._rates:
            handle = self.handles[target.task].options(
                method_name="sampling_rate", multiplexed_model_id=target.model
            )
            self._rates[target] = await self._guarded(handle.remote, target.model)
        return self._rates[target]

    # --- calls ----------------------------------------------------------------------

    async def call(self, target: Target, item: Any) -> Any:
        """One request to a task deployment, admitted by the time bound and held to the
        caller's deadline; a replica that died is retried once."""
        admit(self.admission, [target.task])
        handle = self.handles[target.task].options(multiplexed_model_id=target.model)
        self.admission.sending(target.task)
        return await self._guarded(handle.remote, target.model, item)

    async def _guarded(self, send, name: str, *args: Any) -> Any:
        for attempt in range(2):
            response = send(*args)
            try:
                # bounded() holds the call to the request's deadline and cancels it
                # downstream when the deadline passes or the caller goes away.
                return await bounded(response)
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

    async def decode(self, data: bytes, filename: str | None, target: Target) -> DecodedAudio:
        """Check limits, decode once, resample to the target model's rate."""
        self.check_upload(data, filename)
        rate = await self.sampling_rate(target)
        audio = await asyncio.to_thread(
            decode_audio, data, target_rate=rate, max_seconds=self.limits.max_audio_seconds
        )
        scope = current_scope()
        self.quotas.charge_audio(scope.caller if scope else None, audio.duration)
        return audio

    def check_text(self, text: str, param: str = "input") -> str:
        return check_text(text, max_chars=self.limits.max_text_chars, param=param)

    # --- tasks ----------------------------------------------------------------------

    async def segment(
        self, audio: DecodedAudio, options: VadOptions | None = None
    ) -> SpeechSegments:
        """Speech segments of ``audio`` from the default voice-activity model."""
        vad = self.target(ROLES.segment)
        vad_rate = await self.sampling_rate(vad)
        vad_audio = resample(audio.audio, audio.sampling_rate, vad_rate)
        options = options or vad.spec.parse_options({})
        return await self.call(vad, AudioItem(vad_audio, vad_rate, options))

    def long_audio(self, audio: DecodedAudio) -> bool:
        """Whether a transcription of ``audio`` goes through VAD chunking."""
        return audio.duration > self.limits.long_audio_seconds and self.serves(ROLES.segment)

    async def transcribe(
        self,
        audio: DecodedAudio,
        options: TranscriptionOptions,
        target: Target,
        *,
        vad: VadOptions | None = None,
    ) -> Transcription:
        """ASR; audio longer than ``long_audio_seconds`` is cut at VAD segments first
        (found with ``vad``, the VAD model's defaults if None)."""
        if not self.long_audio(audio):
            return await self.call(target, AudioItem(audio.audio, audio.sampling_rate, options))
        result = await transcribe_chunks(
            self.call,
            target,
            audio.audio,
            audio.sampling_rate,
            await self.chunks(audio, vad, target),
            options,
        )
        return result.model_copy(update={"model": target.model})

    async def transcribe_stream(
        self,
        audio: DecodedAudio,
        options: TranscriptionOptions,
        target: Target,
        *,
        vad: VadOptions | None = None,
    ) -> AsyncIterator[Transcription]:
        """``transcribe`` as it happens: long audio yields each VAD chunk's text in order."""
        if not self.long_audio(audio):
            yield await self.call(target, AudioItem(audio.audio, audio.sampling_rate, options))
            return
        chunks = await self.chunks(audio, vad, target)
        parts = transcribe_chunks_stream(
            self.call, target, audio.audio, audio.sampling_rate, chunks, options
        )
        async with aclosing(parts):
            async for part in parts:
                yield part.model_copy(update={"model": target.model})

    async def chunks(
        self, audio: DecodedAudio, vad: VadOptions | None, target: Target
    ) -> list[tuple[float, float]]:
        """The ASR chunks of long audio for ``target``: its VAD segments merged up to
        ``chunk_seconds`` (the request is admitted for both tasks first)."""
        admit(self.admission, [ROLES.segment, target.task])
        found = await self.segment(audio, vad)
        return merge_segments(found.segments, self.limits.chunk_seconds, audio.duration)

    async def synthesize(
        self, target: Target, item: TextItem, *, param: str | None = None
    ) -> Waveform:
        """Text to audio (``tts`` speaks ``input``, ``generate`` plays ``prompt``), with the
        text limit checked first; ``param`` names the field in errors."""
        field = target.spec.text_field
        self.check_text(target.spec.text_of(item.options), param=param or field)
        return await self.call(target, item)

    def pipeline_steps(self, name: str) -> list[Target]:
        if name not in self._pipelines:
            raise ModelNotFound(
                f"unknown pipeline {name!r}; available: {sorted(self._pipelines)}", param="name"
            )
        return self._pipelines[name]

    async def pipeline(self, name: str, audio: DecodedAudio, options: dict) -> PipelineState:
        context = PipelineContext(
            call=self.call,
            rate=self.sampling_rate,
            chunk_seconds=self.limits.chunk_seconds,
            max_text_chars=self.limits.max_text_chars,
        )
        steps = self.pipeline_steps(name)
        admit(self.admission, [s.task for s in steps])
        return await run_pipeline(context, steps, audio.audio, audio.sampling_rate, options)
