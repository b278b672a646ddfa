"""OpenAI-compatible audio routes: transcriptions, translations and speech.

Field names, defaults and response shapes follow OpenAI's audio API, so the ``openai``
package (``OpenAI(base_url=".../v1")``) works unchanged. OpenAI's own model names
(``whisper-1``, ``tts-1``, ...) mean "this cluster's default model for the task", and
OpenAI's voices mean "the model's default voice". ``GET /v1/models`` is the native route.
"""

from __future__ import annotations

import io
import zlib
from typing import Annotated, Any, Literal

import numpy as np
import soundfile as sf
from fastapi import APIRouter, File, Form, UploadFile
from fastapi.responses import JSONResponse, PlainTextResponse, Response
from pydantic import BaseModel, ConfigDict, Field
from sonaray_client.subtitles import to_srt, to_vtt
from sonaray_client.types import SpeechOptions, Transcription, TranscriptionOptions
from transformers.models.whisper.tokenization_whisper import LANGUAGES

from deployments.audio import encode_audio, resample
from deployments.audio_stream import STREAM_FORMATS
from deployments.errors import InvalidRequest
from deployments.protocol import ROLES, Target, TextItem
from deployments.router.http import ERROR_RESPONSES, Service
from deployments.router.native import read_upload
from deployments.router.service import SonarayService
from deployments.router.streaming import speech_stream, transcript_stream

router = APIRouter(prefix="/v1/audio", tags=["openai"], responses=ERROR_RESPONSES)

OPENAI_ASR_MODELS = {"whisper-1", "gpt-4o-transcribe", "gpt-4o-mini-transcribe"}
OPENAI_TTS_MODELS = {"tts-1", "tts-1-hd", "gpt-4o-mini-tts"}
OPENAI_VOICES = {
    "alloy", "ash", "ballad", "cedar", "coral", "echo", "fable",
    "marin", "nova", "onyx", "sage", "shimmer", "verse",
}  # fmt: skip
# OpenAI's pcm is raw 16-bit little-endian at 24 kHz; players assume that rate.
OPENAI_PCM_RATE = 24000
# libsndfile writes Opus only at 8/12/16/24/48 kHz.
OPUS_RATE = 48000
CAN_OPUS = "OPUS" in sf.available_subtypes("OGG")
SPEECH_FORMATS = ["mp3", *(["opus"] if CAN_OPUS else []), "flac", "wav", "pcm"]

ResponseFormat = Literal["json", "text", "srt", "vtt", "verbose_json"]
FileField = Annotated[UploadFile, File(description="Audio file (wav, flac, ogg, mp3, m4a, ...).")]
ModelField = Annotated[
    str,
    Form(
        description="A served model, or an OpenAI name (whisper-1) for the default. "
        "Optional here (OpenAI requires it): omitted means the default."
    ),
]
PromptField = Annotated[str | None, Form(description="Text that biases spelling and style.")]
FormatField = Annotated[ResponseFormat, Form()]
TemperatureField = Annotated[float, Form(ge=0.0, le=1.0)]
Granularities = Annotated[
    list[Literal["segment", "word"]] | None,
    Form(alias="timestamp_granularities[]", description="verbose_json timestamps."),
]


def _asr_target(service: SonarayService, model: str, translate: bool) -> Target:
    """The target of a transcription; OpenAI names pick the default transcription model."""
    if not model or model in OPENAI_ASR_MODELS:
        return service.target(ROLES.transcribe)
    target = service.target_of(model)
    able = target.spec.translates if translate else target.spec.transcribes
    if not able:
        what = "translate" if translate else "transcribe"
        raise InvalidRequest(
            f"model {model!r} serves {target.task!r} and cannot {what}", param="model"
        )
    return target


def language_name(code: str | None) -> str:
    """OpenAI reports languages by English name ("english"), not ISO code."""
    if not code:
        return "unknown"
    return LANGUAGES.get(code, code)


def _compression_ratio(text: str) -> float:
    # Whisper's repetition measure: raw bytes over zlib-compressed bytes.
    raw = text.encode()
    return round(len(raw) / len(zlib.compress(raw)), 4) if raw else 0.0


def verbose_json(result: Transcription, task: str, temperature: float, words: bool) -> dict:
    """OpenAI's ``verbose_json`` body from a Sonaray transcription."""
    body: dict[str, Any] = {
        "task": task,
        "language": language_name(result.language),
        "duration": result.duration,
        "text": result.text,
        "segments": [
            {
                "id": seg.id,
                # Whisper window offsets are not kept: seek is the start in 10 ms frames.
                "seek": int(seg.start * 100),
                "start": seg.start,
                "end": seg.end,
                "text": seg.text,
                "tokens": [],
                "temperature": temperature,
                "avg_logprob": seg.avg_logprob or 0.0,
                "compression_ratio": _compression_ratio(seg.text),
                "no_speech_prob": seg.no_speech_prob or 0.0,
            }
            for seg in result.segments
        ],
    }
    if words:
        body["words"] = [
            {"word": w.word, "start": w.start, "end": w.end} for w in result.words or []
        ]
    return body


def transcript_response(
    result: Transcription, fmt: str, task: str, temperature: float, words: bool
) -> Response:
    if fmt == "json":
        return JSONResponse({"text": result.text})
    if fmt == "verbose_json":
        return JSONResponse(verbose_json(result, task, temperature, words))
    if fmt == "srt":
        return PlainTextResponse(to_srt(result))
    if fmt == "vtt":
        return PlainTextResponse(to_vtt(result), media_type="text/vtt")
    return PlainTextResponse(result.text + "\n")


async def _recognize(
    service: SonarayService,
    *,
    translate: bool,
    file: UploadFile,
    model: str,
    language: str | None,
    prompt: str | None,
    response_format: str,
    temperature: float,
    granularities: list[str] | None,
    stream: bool = False,
) -> Response:
    target = _asr_target(service, model, translate)
    words = response_format == "verbose_json" and "word" in (granularities or [])
    options = TranscriptionOptions(
        task="translate" if translate else "transcribe",
        language=language or None,
        prompt=prompt or None,
        temperature=temperature,
        timestamps="word" if words else "segment",
    )
    data = await read_upload(file, service)
    audio = await service.decode(data, file.filename, target)
    if stream:
        return await transcript_stream(service, audio, options, target)
    result = await service.transcribe(audio, options, target)
    return transcript_response(result, response_format, options.task, temperature, words)


TRANSCRIPT_RESPONSES = {
    200: {
        "content": {"application/json": {}, "text/plain": {}, "text/vtt": {}},
        "description": "json/verbose_json as JSON; text and srt as text/plain; vtt as text/vtt.",
    }
}


@router.post("/transcriptions", response_class=Response, responses=TRANSCRIPT_RESPONSES)
async def transcriptions(
    service: Service,
    file: FileField,
    model: ModelField = "whisper-1",
    language: Annotated[str | None, Form(description="ISO-639-1 code of the speech.")] = None,
    prompt: PromptField = None,
    response_format: FormatField = "json",
    temperature: TemperatureField = 0.0,
    timestamp_granularities: Granularities = None,
    stream: Annotated[bool, Form(description="Server-Sent Events as chunks finish.")] = False,
) -> Response:
    """Speech to text in the spoken language (OpenAI ``audio.transcriptions.create``)."""
    return await _recognize(
        service,
        translate=False,
        file=file,
        model=model,
        language=language,
        prompt=prompt,
        response_format=response_format,
        temperature=temperature,
        granularities=timestamp_granularities,
        stream=stream,
    )


@router.post("/translations", response_class=Response, responses=TRANSCRIPT_RESPONSES)
async def translations(
    service: Service,
    file: FileField,
    model: ModelField = "whisper-1",
    prompt: PromptField = None,
    response_format: FormatField = "json",
    temperature: TemperatureField = 0.0,
) -> Response:
    """Speech in any language to English text (OpenAI ``audio.translations.create``)."""
    return await _recognize(
        service,
        translate=True,
        file=file,
        model=model,
        language=None,
        prompt=prompt,
        response_format=response_format,
        temperature=temperature,
        granularities=None,
    )


class VoiceRef(BaseModel):
    id: str


class OpenAISpeechRequest(BaseModel):
    """OpenAI's ``audio.speech.create`` body."""

    model_config = ConfigDict(extra="forbid", protected_namespaces=())

    model: str = Field(
        "tts-1", description="A tts model, or an OpenAI name (tts-1) for the default."
    )
    input: str
    voice: str | VoiceRef | None = Field(
        None, description="A voice of the model; OpenAI voice names mean its default voice."
    )
    instructions: str | None = Field(None, description="Accepted and ignored (no such models).")
    response_format: str = "mp3"
    speed: float = Field(1.0, ge=0.25, le=4.0)
    stream_format: Literal["audio", "sse"] = Field(
        "audio",
        description="audio: a chunked body, sentence by sentence (flac comes whole); "
        "sse: speech.audio.delta events, then speech.audio.done.",
    )


def check_speech_format(fmt: str) -> None:
    """An OpenAI format this server cannot encode (aac) is a 400 that lists the others."""
    if fmt not in SPEECH_FORMATS:
        raise InvalidRequest(
            f"response_format {fmt!r} is not supported here; choose one of "
            f"{', '.join(SPEECH_FORMATS)}",
            param="response_format",
        )


def encode_speech(audio: np.ndarray, rate: int, fmt: str) -> tuple[bytes, str]:
    """Encode in one of ``SPEECH_FORMATS`` the way OpenAI does (pcm at 24 kHz)."""
    if fmt == "pcm":
        return encode_audio(resample(audio, rate, OPENAI_PCM_RATE), OPENAI_PCM_RATE, "pcm")
    if fmt == "opus":
        buf = io.BytesIO()
        sf.write(buf, resample(audio, rate, OPUS_RATE), OPUS_RATE, format="OGG", subtype="OPUS")
        return buf.getvalue(), "audio/ogg"
    return encode_audio(audio, rate, fmt)


@router.post(
    "/speech",
    response_class=Response,
    responses={200: {"content": {"audio/mpeg": {}}, "description": "Encoded speech."}},
)
async def speech(service: Service, body: OpenAISpeechRequest) -> Response:
    """Text to speech (OpenAI ``audio.speech.create``)."""
    check_speech_format(body.response_format)
    if body.model in OPENAI_TTS_MODELS:
        target = service.target(ROLES.speak)
    else:
        target = service.target_of(body.model)
        if target.task != ROLES.speak:
            raise InvalidRequest(
                f"model {body.model!r} is not a text-to-speech model", param="model"
            )
    voice = body.voice.id if isinstance(body.voice, VoiceRef) else body.voice
    options = SpeechOptions(
        input=body.input, voice=None if voice in OPENAI_VOICES else voice, speed=body.speed
    )
    if body.stream_format == "sse" or body.response_format in STREAM_FORMATS:
        out_rate = OPENAI_PCM_RATE if body.response_format == "pcm" else None
        return await speech_stream(
            service, target, options, body.response_format, body.stream_format, out_rate
        )
    waveform = await service.synthesize(target, TextItem(options))
    data, media_type = encode_speech(waveform.audio, waveform.sampling_rate, body.response_format)
    return Response(data, media_type=media_type)
