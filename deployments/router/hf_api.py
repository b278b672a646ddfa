"""Hugging Face task-style routes: ``POST /models/{model}``, as the Inference API takes them.

The body is raw audio (any audio content type, or none) or JSON ``{"inputs": ...,
"parameters": {...}}`` with base64 audio or text; the model's task picks the behaviour.
``huggingface_hub.InferenceClient(model="http://host/models/<name>")`` works unchanged.
"""

from __future__ import annotations

import base64
import binascii
import json
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, Response
from pydantic import BaseModel, ValidationError
from sonaray_client.types import LabelScore, SpeechSegment, TranscriptionOptions

from deployments.audio import ENCODINGS, encode_audio, output_rate
from deployments.errors import InvalidRequest, PayloadTooLarge, UnsupportedMediaType
from deployments.protocol import AudioItem, Data, Target, TextItem
from deployments.router.http import ERROR_RESPONSES, Service
from deployments.router.service import SonarayService

router = APIRouter(tags=["huggingface"], responses=ERROR_RESPONSES)

RAW_AUDIO_TYPES = ("", "application/octet-stream")
# Generation knobs the HF client sends for every text-to-speech call: a task whose options
# have a field of that name honours it; for the others they are accepted and ignored.
HF_GENERATION_KEYS = {
    "do_sample", "early_stopping", "epsilon_cutoff", "eta_cutoff", "max_length",
    "max_new_tokens", "min_length", "min_new_tokens", "num_beam_groups", "num_beams",
    "penalty_alpha", "temperature", "top_k", "top_p", "typical_p", "use_cache",
}  # fmt: skip
ASR_KEYS = {"return_timestamps", "language", "task", "generation_parameters", "generate_kwargs"}


class HFChunk(BaseModel):
    text: str
    timestamp: tuple[float, float]


class HFTranscription(BaseModel):
    """The ``automatic-speech-recognition`` answer of the Hugging Face Inference API."""

    text: str
    chunks: list[HFChunk] | None = None


async def read_body(request: Request, limit: int) -> bytes:
    """The body, refused past ``limit`` bytes even when it came without a Content-Length."""
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise PayloadTooLarge(f"request body is over the {limit}-byte limit", param="inputs")
        chunks.append(chunk)
    return b"".join(chunks)


def _media_type(request: Request) -> str:
    return request.headers.get("content-type", "").split(";")[0].strip().lower()


def _is_audio(media_type: str) -> bool:
    return media_type in RAW_AUDIO_TYPES or media_type.startswith(("audio/", "video/"))


def parse_payload(body: bytes, media_type: str) -> tuple[Any, dict]:
    """``(inputs, parameters)`` from a JSON body, or ``(raw bytes, {})``."""
    if media_type != "application/json":
        return body, {}
    try:
        payload = json.loads(body)
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise InvalidRequest(f"body is not valid JSON: {exc}", param="inputs") from exc
    if not isinstance(payload, dict) or "inputs" not in payload:
        raise InvalidRequest('JSON body must be {"inputs": ..., "parameters": {...}}', "inputs")
    parameters = payload.get("parameters") or {}
    if not isinstance(parameters, dict):
        raise InvalidRequest("parameters must be a JSON object", param="parameters")
    return payload["inputs"], parameters


def audio_bytes(inputs: Any) -> bytes:
    if isinstance(inputs, bytes):
        return inputs
    if not isinstance(inputs, str):
        raise InvalidRequest("inputs must be base64-encoded audio", param="inputs")
    try:
        return base64.b64decode(inputs, validate=True)
    except binascii.Error as exc:
        raise InvalidRequest("inputs is not valid base64 audio", param="inputs") from exc


def options(kind: type[BaseModel], values: dict, known: set[str] | None = None) -> Any:
    """Wire options from HF parameters; keys outside ``known`` (if given) are a 400."""
    unknown = set(values) - (known if known is not None else set(kind.model_fields))
    if unknown:
        raise InvalidRequest(f"unknown parameters: {sorted(unknown)}", param="parameters")
    try:
        return kind.model_validate(values)
    except ValidationError as exc:
        first = exc.errors()[0]
        param = "parameters." + ".".join(str(p) for p in first["loc"])
        raise InvalidRequest(f"invalid {param}: {first['msg']}", param=param) from exc


def asr_options(parameters: dict) -> TranscriptionOptions:
    """HF ASR parameters (``return_timestamps``, ``generation_parameters``, language/task)."""
    unknown = set(parameters) - ASR_KEYS
    if unknown:
        raise InvalidRequest(f"unknown parameters: {sorted(unknown)}", param="parameters")
    stamps = parameters.get("return_timestamps")
    generation = {**(parameters.get("generate_kwargs") or {}), **parameters}
    sampling = parameters.get("generation_parameters") or {}
    values = {
        "timestamps": "word" if stamps == "word" else "none" if stamps is False else "segment",
        "language": generation.get("language"),
        "task": generation.get("task") or "transcribe",
        "temperature": sampling.get("temperature") or 0.0,
        "num_beams": sampling.get("num_beams") or 1,
    }
    return options(TranscriptionOptions, values)


async def recognize(service: SonarayService, target: Target, data: bytes, parameters) -> dict:
    item = asr_options(parameters)
    audio = await service.decode(data, None, target)
    result = await service.transcribe(audio, item, target)
    body: dict[str, Any] = {"text": result.text}
    if item.timestamps == "word":
        body["chunks"] = [
            {"text": w.word, "timestamp": [w.start, w.end]} for w in result.words or []
        ]
    elif item.timestamps == "segment":
        body["chunks"] = [{"text": s.text, "timestamp": [s.start, s.end]} for s in result.segments]
    return body


# Audio analysis: how HF parameters map to options, and how the result becomes HF's list.
# Classification's ``function_to_apply`` is the model config's choice (softmax or sigmoid).
IGNORED_PARAMETERS = {Data.LABELS: {"function_to_apply"}, Data.SEGMENTS: set()}
ANALYSIS_BODY = {
    Data.LABELS: lambda result: [label.model_dump() for label in result.labels],
    Data.SEGMENTS: lambda result: [seg.model_dump(exclude_none=True) for seg in result.segments],
}


async def analyse(service: SonarayService, target: Target, data: bytes, parameters) -> list:
    """audio-classification -> ``[{label, score}]``; frames -> ``[{start, end, label, score}]``."""
    gives = target.spec.gives
    values = {k: v for k, v in parameters.items() if k not in IGNORED_PARAMETERS[gives]}
    item = options(target.spec.options, values)
    audio = await service.decode(data, None, target)
    result = await service.call(target, AudioItem(audio.audio, audio.sampling_rate, item))
    return ANALYSIS_BODY[gives](result)


def _accepted_format(request: Request) -> str:
    """wav unless the Accept header names another encoding Sonaray writes."""
    accept = request.headers.get("accept", "")
    for fmt, encoding in ENCODINGS.items():
        if encoding.media_type in accept and fmt != "pcm":
            return fmt
    return "wav"


async def speak(service: SonarayService, target: Target, text: Any, parameters: dict):
    """text-to-speech / text-to-audio: ``inputs`` fills the task's text field."""
    if not isinstance(text, str):
        raise InvalidRequest("inputs must be the text to speak", param="inputs")
    spec = target.spec
    honoured = set(spec.options.model_fields)
    values = {k: v for k, v in parameters.items() if k not in HF_GENERATION_KEYS or k in honoured}
    item = options(spec.options, {**values, spec.text_field: text})
    return await service.synthesize(target, TextItem(item), param="inputs")


@router.post(
    "/models/{model:path}",
    response_model=None,
    responses={
        200: {
            "description": "ASR: {text, chunks}; classification: [{label, score}]; "
            "frames: [{start, end, label, score}]; text-to-speech/audio: audio/wav, or "
            "the encoding the Accept header names.",
            "model": HFTranscription | list[LabelScore] | list[SpeechSegment],
            "content": {
                encoding.media_type: {"schema": {"type": "string", "format": "binary"}}
                for fmt, encoding in ENCODINGS.items()
                if fmt != "pcm"
            },
        }
    },
)
async def run_model(service: Service, model: str, request: Request) -> Response:
    """Run ``model`` on raw audio or ``{"inputs", "parameters"}`` JSON, per its task."""
    target = service.target_of(model)
    media_type = _media_type(request)
    if media_type != "application/json" and not _is_audio(media_type):
        raise UnsupportedMediaType(
            f"content type {media_type!r} is not accepted: send audio bytes or application/json",
            param="content-type",
        )
    if not target.spec.reads_audio and media_type != "application/json":
        raise UnsupportedMediaType(
            f'model {model!r} takes text: send application/json {{"inputs": "..."}}',
            param="content-type",
        )
    # Same bound as the Content-Length check in http.py, for bodies sent without one.
    body = await read_body(request, service.limits.max_upload_bytes + 64 * 1024)
    inputs, parameters = parse_payload(body, media_type)
    if target.spec.transcribes:
        return JSONResponse(await recognize(service, target, audio_bytes(inputs), parameters))
    if target.spec.reads_audio:
        return JSONResponse(await analyse(service, target, audio_bytes(inputs), parameters))
    waveform = await speak(service, target, inputs, parameters)
    fmt = _accepted_format(request)
    data, media = encode_audio(waveform.audio, waveform.sampling_rate, fmt)
    rate = output_rate(fmt, waveform.sampling_rate)
    return Response(data, media_type=media, headers={"x-sampling-rate": str(rate)})
