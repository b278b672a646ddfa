"""Sonaray's native routes: one per task family, pipelines, models, health."""

import base64
import json
from typing import Annotated, Any

from fastapi import APIRouter, File, Form, Request, UploadFile
from fastapi.responses import Response
from pydantic import BaseModel, ValidationError
from sonaray_client.types import (
    AUDIO_FORMATS,
    GenerateRequest,
    GenerationOptions,
    Health,
    ModelCard,
    ModelList,
    PipelineResult,
    SpeechOptions,
    SpeechRequest,
)

from deployments.audio import ENCODINGS, encode_audio, output_rate
from deployments.errors import InvalidRequest
from deployments.protocol import AudioItem, TaskSpec, TextItem, tasks_where
from deployments.router.http import ERROR_RESPONSES, Service
from deployments.router.streaming import speech_stream, transcript_stream
from deployments.router.voices import (
    check_streamable,
    parse_fields,
    speech_body,
    speech_fields,
    speech_item,
)

router = APIRouter(responses=ERROR_RESPONSES)

FileField = Annotated[UploadFile, File(description="Audio file (wav, flac, ogg, mp3, m4a, ...).")]
ModelField = Annotated[str | None, Form(description="Model name; the task's default if omitted.")]
OptionsField = Annotated[str | None, Form(description="Task options as a JSON object.")]
StreamField = Annotated[
    bool, Form(description="Transcription only: SSE transcript.text.delta events, then .done.")
]
AUDIO_RESPONSE = {
    200: {
        "content": {
            media_type: {"schema": {"type": "string", "format": "binary"}}
            for media_type in dict.fromkeys(e.media_type for e in ENCODINGS.values())
        },
        "description": "Audio in `response_format` (wav by default; pcm is raw 16-bit mono).",
        "headers": {
            "x-sampling-rate": {
                "description": "Sampling rate of the audio, in Hz.",
                "schema": {"type": "integer"},
            }
        },
    }
}


def json_object(raw: str | bytes | None, param: str = "options") -> dict:
    """A JSON object from a form field or body, or a 400 naming the field."""
    if not isinstance(raw, str | bytes | None):
        raise InvalidRequest(f"invalid {param}: expected a text field holding JSON", param=param)
    try:
        value = json.loads(raw) if raw else {}
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise InvalidRequest(f"invalid {param}: not JSON ({exc})", param=param) from exc
    if not isinstance(value, dict):
        raise InvalidRequest(f"invalid {param}: expected a JSON object", param=param)
    return value


def parse_options(
    raw: str | bytes | dict | None, kind: type[BaseModel], param: str = "options"
) -> Any:
    """Parse JSON options into their wire type, or a 400 naming the field."""
    try:
        return kind.model_validate(raw if isinstance(raw, dict) else json_object(raw, param))
    except ValidationError as exc:
        raise InvalidRequest(f"invalid {param}: {exc}", param=param) from exc


async def read_upload(file: UploadFile, service) -> bytes:
    data = await file.read(service.limits.max_upload_bytes + 1)
    service.check_upload(data, file.filename)
    return data


@router.get("/healthz", tags=["meta"])
async def healthz() -> Health:
    return Health()


@router.get("/v1/models", tags=["meta"])
async def list_models(service: Service) -> ModelList:
    """Every served model (OpenAI ``models.list``)."""
    return ModelList(data=await service.model_cards())


@router.get("/v1/models/{model_id}", tags=["meta"])
async def retrieve_model(service: Service, model_id: str) -> ModelCard:
    """One served model (OpenAI ``models.retrieve``); an unknown id is a 404."""
    service.target_of(model_id)
    return next(card for card in await service.model_cards() if card.id == model_id)


def _add_audio_route(spec: TaskSpec) -> None:
    """One route per audio-in task: decode once, then the task (ASR gets long-audio VAD).

    The module keeps real (not postponed) annotations: Serve pickles the app by value, and
    a closure's string annotations would not resolve in the replica.
    """

    async def route(
        service: Service,
        file: FileField,
        model: ModelField = None,
        options: OptionsField = None,
        stream: StreamField = False,
    ):
        parsed = parse_options(options, spec.options)
        if stream and not spec.transcribes:
            raise InvalidRequest(f"/v1/{spec.id} does not stream", param="stream")
        target = service.target(spec.id, model)
        data = await read_upload(file, service)
        audio = await service.decode(data, file.filename, target)
        if stream:
            return await transcript_stream(service, audio, parsed, target)
        if spec.transcribes:
            return await service.transcribe(audio, parsed, target)
        return await service.call(target, AudioItem(audio.audio, audio.sampling_rate, parsed))

    router.post(
        f"/v1/{spec.id}",
        tags=["tasks"],
        response_model=spec.result,
        summary=spec.summary,
        operation_id=f"{spec.id}_v1",
    )(route)


for _spec in tasks_where(lambda spec: spec.reads_audio):
    _add_audio_route(_spec)


def audio_response(waveform, fmt: str) -> Response:
    data, media_type = encode_audio(waveform.audio, waveform.sampling_rate, fmt)
    rate = output_rate(fmt, waveform.sampling_rate)
    return Response(data, media_type=media_type, headers={"x-sampling-rate": str(rate)})


@router.post(
    "/v1/tts",
    tags=["tasks"],
    response_class=Response,
    responses=AUDIO_RESPONSE,
    openapi_extra=speech_body(SpeechRequest.model_json_schema()),
)
async def tts(service: Service, request: Request) -> Response:
    """Text to speech: JSON, or multipart with a ``reference_audio`` clip to clone."""
    fields, reference = await speech_fields(request)
    body = parse_fields(fields, SpeechRequest)
    options = SpeechOptions.model_validate(
        body.model_dump(exclude={"model", "response_format", "stream", "stream_format"})
    )
    target = service.target("tts", body.model)
    item = await speech_item(service, target, options, reference)
    if body.stream or body.stream_format:
        check_streamable(item)
        rate = output_rate(body.response_format, await service.sampling_rate(target))
        return await speech_stream(
            service,
            target,
            item.options,
            body.response_format,
            body.stream_format or "audio",
            headers={"x-sampling-rate": str(rate)},
        )
    waveform = await service.synthesize(target, item)
    return audio_response(waveform, body.response_format)


GENERATE_BODY = {
    "requestBody": {
        "required": True,
        "content": {
            "application/json": {"schema": GenerateRequest.model_json_schema()},
            "multipart/form-data": {
                "schema": {
                    "type": "object",
                    "required": ["options"],
                    "properties": {
                        "file": {
                            "type": "string",
                            "format": "binary",
                            "description": "Audio prompt to continue.",
                        },
                        "options": {"type": "string", "description": "GenerationOptions JSON."},
                        "model": {"type": "string"},
                        "response_format": {
                            "type": "string",
                            "enum": list(AUDIO_FORMATS),
                            "default": "wav",
                        },
                    },
                }
            },
        },
    }
}


@router.post(
    "/v1/generate",
    tags=["tasks"],
    response_class=Response,
    responses=AUDIO_RESPONSE,
    openapi_extra=GENERATE_BODY,
)
async def generate(service: Service, request: Request) -> Response:
    """Text to music/sound (MusicGen): JSON, or multipart with an audio prompt to continue."""
    prompt_audio = None
    if request.headers.get("content-type", "").startswith("multipart/form-data"):
        form = await request.form()
        fields = json_object(form.get("options"))
        fields.update({k: form[k] for k in ("model", "response_format") if form.get(k)})
        body = parse_options(fields, GenerateRequest)
        target = service.target("generate", body.model)
        upload = form.get("file")
        if upload is not None and not isinstance(upload, str):
            data = await read_upload(upload, service)
            prompt_audio = (await service.decode(data, upload.filename, target)).audio
    else:
        body = parse_options(await request.body(), GenerateRequest, "body")
        target = service.target("generate", body.model)
    options = GenerationOptions.model_validate(
        body.model_dump(exclude={"model", "response_format"})
    )
    waveform = await service.synthesize(target, TextItem(options, prompt_audio))
    return audio_response(waveform, body.response_format)


@router.post("/v1/pipelines/{name}", tags=["pipelines"])
async def pipeline(
    service: Service, name: str, response: Response, file: FileField, options: OptionsField = None
) -> PipelineResult:
    """Run a configured pipeline (e.g. frames → seq2seq → tts) on an audio file."""
    per_step = json_object(options)
    first = service.pipeline_steps(name)[0]
    data = await read_upload(file, service)
    audio = await service.decode(data, file.filename, first)
    state = await service.pipeline(name, audio, per_step)
    audio_b64 = rate = None
    if state.waveform is not None:
        wav, _ = encode_audio(state.waveform.audio, state.waveform.sampling_rate, "wav")
        audio_b64, rate = base64.b64encode(wav).decode(), state.waveform.sampling_rate
    response.headers["server-timing"] = ", ".join(
        f"{i}-{s.step};dur={s.seconds * 1000:.1f}" for i, s in enumerate(state.steps)
    )
    return PipelineResult(
        pipeline=name,
        steps=state.steps,
        segments=state.segments,
        transcription=state.transcription,
        labels=state.labels,
        audio_base64=audio_b64,
        audio_sampling_rate=rate,
    )
