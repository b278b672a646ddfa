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
from sonaray_client.types import (
    ClassificationOptions,
    GenerationOptions,
    LabelScore,
    SpeechOptions,
    SpeechSegment,
    TranscriptionOptions,
    VadOptions,
)

from deployments.audio import ENCODINGS, encode_audio, output_rate
from deployments.errors import InvalidRequest, PayloadTooLarge, UnsupportedMediaType
from deployments.router.http import ERROR_RESPONSES, Service
from deployments.router.service import SonarayService
from deployments.tasks.base import AudioItem, TextItem

router = APIRouter(tags=["huggingface"], responses=ERROR_RESPONSES)

AUDIO_TASKS = ("seq2seq", "ctc", "classify", "frames")
RAW_AUDIO_TYPES = ("", "application/octet-stream")
# Generation knobs the HF client sends for every text-to-speech call; Sonaray's tts engines
# have no such knobs, so they are accepted and ignored rather than refused.
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


async def recognize(service: SonarayService, task: str, model: str, data: bytes, parameters):
    item = asr_options(parameters)
    audio = await service.decode(data, None, task, model)
    result = await service.transcribe(audio, item, task, model)
    body: dict[str, Any] = {"text": result.text}
    if item.timestamps == "word":
        body["chunks"] = [
            {"text": w.word, "timestamp": [w.start, w.end]} for w in result.words or []
        ]
    elif item.timestamps == "segment":
        body["chunks"] = [{"text": s.text, "timestamp": [s.start, s.end]} for s in result.segments]
    return body


async def analyse(service: SonarayService, task: str, model: str, data: bytes, parameters):
    """audio-classification -> ``[{label, score}]``; frames -> ``[{start, end, label, score}]``."""
    if task == "classify":
        # function_to_apply is the model config's choice (softmax or sigmoid) here.
        values = {k: v for k, v in parameters.items() if k != "function_to_apply"}
        item = options(ClassificationOptions, values)
    else:
        item = options(VadOptions, parameters)
    audio = await service.decode(data, None, task, model)
    result = await service.call(task, model, AudioItem(audio.audio, audio.sampling_rate, item))
    if task == "classify":
        return [label.model_dump() for label in result.labels]
    return [seg.model_dump(exclude_none=True) for seg in result.segments]


def _accepted_format(request: Request) -> str:
    """wav unless the Accept header names another encoding Sonaray writes."""
    accept = request.headers.get("accept", "")
    for fmt, encoding in ENCODINGS.items():
        if encoding.media_type in accept and fmt != "pcm":
            return fmt
    return "wav"


async def speak(service: SonarayService, task: str, model: str, text: Any, parameters: dict):
    if not isinstance(text, str):
        raise InvalidRequest("inputs must be the text to speak", param="inputs")
    extra = {k: v for k, v in parameters.items() if k not in HF_GENERATION_KEYS}
    if task == "tts":
        item = options(SpeechOptions, {"input": text, **extra})
        return await service.synthesize(task, model, TextItem(item))
    sampling = {k: parameters[k] for k in ("temperature",) if k in parameters}
    item = options(GenerationOptions, {"prompt": text, **sampling, **extra})
    return await service.synthesize(task, model, TextItem(item), param="inputs")


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
    task = service.task_of(model)
    media_type = _media_type(request)
    if media_type != "application/json" and not _is_audio(media_type):
        raise UnsupportedMediaType(
            f"content type {media_type!r} is not accepted: send audio bytes or application/json",
            param="content-type",
        )
    if task not in AUDIO_TASKS and media_type != "application/json":
        raise UnsupportedMediaType(
            f'model {model!r} takes text: send application/json {{"inputs": "..."}}',
            param="content-type",
        )
    # Same bound as the Content-Length check in http.py, for bodies sent without one.
    body = await read_body(request, service.limits.max_upload_bytes + 64 * 1024)
    inputs, parameters = parse_payload(body, media_type)
    if task in ("seq2seq", "ctc"):
        return JSONResponse(await recognize(service, task, model, audio_bytes(inputs), parameters))
    if task in AUDIO_TASKS:
        return JSONResponse(await analyse(service, task, model, audio_bytes(inputs), parameters))
    waveform = await speak(service, task, model, inputs, parameters)
    fmt = _accepted_format(request)
    data, media = encode_audio(waveform.audio, waveform.sampling_rate, fmt)
    rate = output_rate(fmt, waveform.sampling_rate)
    return Response(data, media_type=media, headers={"x-sampling-rate": str(rate)})
