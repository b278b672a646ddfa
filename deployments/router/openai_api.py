"""OpenAI-compatible audio routes: transcriptions, translations and speech.

Field names, defaults and response shapes follow OpenAI's audio API, so the ``openai``
package (``OpenAI(base_url=".../v1")``) works unchanged. OpenAI's own model names
(``whisper-1``, ``tts-1``, ...) mean "this cluster's default model for the task", and
OpenAI's voices mean "the model's default voice". ``GET /v1/models`` is the native route.
"""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Depends, File, Form, UploadFile
from fastapi.responses import JSONResponse, PlainTextResponse, Response
from sonaray_client.subtitles import to_srt, to_vtt
from sonaray_client.types import (
    SPEECH_FORMATS,
    SpeechOptions,
    TranscriptFormat,
    Transcription,
    TranscriptionOptions,
    VadOptions,
)

from deployments.audio import ENCODINGS, encode_audio
from deployments.audio_stream import STREAM_FORMATS
from deployments.errors import InvalidRequest
from deployments.protocol import ROLES, Target, TextItem
from deployments.router.http import ERROR_RESPONSES, Service
from deployments.router.native import read_upload
from deployments.router.openai_form import FormFields
from deployments.router.openai_protocol import (
    OPENAI_ASR_MODELS,
    OPENAI_PCM_RATE,
    OPENAI_TTS_MODELS,
    OPENAI_VOICES,
    OpenAISpeechRequest,
    TranscriptionJson,
    TranscriptionVerboseJson,
    VoiceRef,
    transcription_json,
    verbose_json,
)
from deployments.router.service import SonarayService
from deployments.router.streaming import speech_stream, transcript_stream

router = APIRouter(prefix="/v1/audio", tags=["openai"], responses=ERROR_RESPONSES)

FileField = Annotated[UploadFile, File(description="Audio file (wav, flac, ogg, mp3, m4a, ...).")]
ModelField = Annotated[
    str,
    Form(
        description="A served model, or an OpenAI name (whisper-1) for the default. "
        "Optional here (OpenAI requires it): omitted means the default."
    ),
]
PromptField = Annotated[str | None, Form(description="Text that biases spelling and style.")]
FormatField = Annotated[TranscriptFormat, Form()]
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


def transcript_response(
    result: Transcription, fmt: str, task: str, temperature: float, words: bool
) -> Response:
    """The body for ``fmt``; like OpenAI, only transcriptions (not translations) carry usage."""
    usage = task == "transcribe"
    if fmt == "json":
        body = transcription_json(result, usage)
    elif fmt == "verbose_json":
        body = verbose_json(result, task, temperature, words=words, usage=usage)
    elif fmt == "srt":
        return PlainTextResponse(to_srt(result))
    elif fmt == "vtt":
        return PlainTextResponse(to_vtt(result), media_type="text/vtt")
    else:
        return PlainTextResponse(result.text + "\n")
    return JSONResponse(body.model_dump(exclude_none=True))


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
    vad: VadOptions | None,
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
        return await transcript_stream(service, audio, options, target, vad=vad)
    result = await service.transcribe(audio, options, target, vad=vad)
    return transcript_response(result, response_format, options.task, temperature, words)


TRANSCRIPT_RESPONSES = {
    200: {
        "model": TranscriptionJson | TranscriptionVerboseJson,
        "content": {
            "text/plain": {"schema": {"type": "string"}},
            "text/vtt": {"schema": {"type": "string"}},
        },
        "description": "json/verbose_json as JSON; text and srt as text/plain; vtt as text/vtt.",
    }
}


@router.post("/transcriptions", response_class=Response, responses=TRANSCRIPT_RESPONSES)
async def transcriptions(
    service: Service,
    file: FileField,
    vad: Annotated[VadOptions | None, Depends(FormFields(chunking=True))],
    model: ModelField = "whisper-1",
    language: Annotated[str | None, Form(description="ISO-639-1 code of the speech.")] = None,
    prompt: PromptField = None,
    response_format: FormatField = "json",
    temperature: TemperatureField = 0.0,
    timestamp_granularities: Granularities = None,
    stream: Annotated[bool, Form(description="Server-Sent Events as chunks finish.")] = False,
) -> Response:
    """Speech to text in the spoken language (OpenAI ``audio.transcriptions.create``).

    ``chunking_strategy`` ("auto", or server_vad's threshold, silence_duration_ms and
    prefix_padding_ms) tunes the VAD that cuts long audio. OpenAI fields Sonaray cannot
    honour (``include``, ``known_speaker_*``, ``keywords``, ``languages``) are a 400.
    """
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
        vad=vad,
        stream=stream,
    )


@router.post(
    "/translations",
    response_class=Response,
    responses=TRANSCRIPT_RESPONSES,
    dependencies=[Depends(FormFields(chunking=False))],
)
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
        vad=None,
    )


SPEECH_RESPONSES = {
    200: {
        "content": {
            ENCODINGS[fmt].media_type: {"schema": {"type": "string", "format": "binary"}}
            for fmt in SPEECH_FORMATS
        },
        "description": "Speech in `response_format`: mp3 audio/mpeg, opus audio/ogg, aac "
        "audio/aac, flac, wav, pcm (raw 16-bit mono at 24 kHz).",
    }
}


@router.post("/speech", response_class=Response, responses=SPEECH_RESPONSES)
async def speech(service: Service, body: OpenAISpeechRequest) -> Response:
    """Text to speech (OpenAI ``audio.speech.create``)."""
    if body.instructions:
        raise InvalidRequest(
            "instructions is not supported: no served voice model takes speaking instructions",
            param="instructions",
        )
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
    fmt = body.response_format
    data, media_type = encode_audio(
        waveform.audio,
        waveform.sampling_rate,
        fmt,
        rate=OPENAI_PCM_RATE if fmt == "pcm" else None,
    )
    return Response(data, media_type=media_type)
