"""Voices: saved clips for cloning (OpenAI's custom-voice routes), voice listing, and how a
speech request's voice becomes what the tts engine gets.

A speech request names its voice one of four ways: a model voice (``alice``,
``v2/en_speaker_6``), an OpenAI voice name (mapped onto the model's voices, default first,
so distinct names give distinct voices as far as the model has them), a saved voice id
(``voice_...``, the clip saved by ``POST /v1/audio/voices``), or a clip sent with the
request (multipart ``reference_audio``). A clip goes to the engine as ``TextItem.audio``
at 16 kHz; SpeechT5 with an ``xvector_model`` clones it, other engines refuse it (400).
"""

from __future__ import annotations

import asyncio
import json
from typing import Annotated, Any, Literal

from fastapi import APIRouter, File, Form, Request, UploadFile
from fastapi.exceptions import RequestValidationError
from pydantic import BaseModel, ConfigDict, ValidationError
from sonaray_client.types import SpeechOptions

from deployments.audio import decode_audio
from deployments.errors import InvalidRequest, ModelNotFound, Overloaded, PayloadTooLarge
from deployments.protocol import ROLES, Target, TextItem
from deployments.router.http import ERROR_RESPONSES, Service
from deployments.router.openai_protocol import OPENAI_VOICES
from deployments.router.service import SonarayService
from deployments.serving.voice_store import VOICE_RATE

router = APIRouter(prefix="/v1/audio", tags=["openai"], responses=ERROR_RESPONSES)

SAVED_PREFIX = "voice_"
REFERENCE_FIELD = "reference_audio"

_store: Any = None


def install_store(store: Any) -> None:
    """Set this replica's handle on the application's VoiceStore actor."""
    global _store
    _store = store


async def _call(method: str, *args: Any) -> Any:
    if _store is None:
        raise Overloaded("the voice store is still starting")
    return await getattr(_store, method).remote(*args)


def openai_voice(name: str, voices: list[str]) -> str | None:
    """The model voice an OpenAI voice name stands for (None: the model has no voices)."""
    if not voices:
        return None
    ordered = sorted(voices, key=lambda v: v != "default")
    return ordered[OPENAI_VOICES.index(name) % len(ordered)]


async def reference_clip(service: SonarayService, upload: UploadFile, param: str):
    """An uploaded reference clip as 16 kHz mono float32, within the clip limit."""
    data = await upload.read(service.limits.max_upload_bytes + 1)
    service.check_upload(data, upload.filename)
    limit = service.args.voices.max_seconds
    try:
        decoded = await asyncio.to_thread(
            decode_audio, data, target_rate=VOICE_RATE, max_seconds=limit
        )
    except PayloadTooLarge as exc:
        raise PayloadTooLarge(f"reference clip: {exc.message}", param=param) from exc
    return decoded.audio


async def speech_item(
    service: SonarayService,
    target: Target,
    options: SpeechOptions,
    reference: UploadFile | None = None,
) -> TextItem:
    """The tts item for ``options``: its voice resolved, a reference clip attached."""
    voice = options.voice
    if reference is not None:
        clip = await reference_clip(service, reference, REFERENCE_FIELD)
        return TextItem(options.model_copy(update={"voice": None}), clip, VOICE_RATE)
    if voice is not None and voice.startswith(SAVED_PREFIX):
        clip = await _call("clip", voice)
        if clip is None:
            raise ModelNotFound(f"no saved voice {voice!r}", param="voice")
        return TextItem(options.model_copy(update={"voice": None}), clip, VOICE_RATE)
    if voice in OPENAI_VOICES:
        mapped = openai_voice(voice, await service.voices(target))
        return TextItem(options.model_copy(update={"voice": mapped}))
    return TextItem(options)


def check_streamable(item: TextItem) -> None:
    """Streamed speech is spoken from text alone: a clip to clone is a 400 there."""
    if item.audio is not None:
        raise InvalidRequest(
            "streamed speech cannot clone a voice yet: send the clip without stream",
            param="stream",
        )


async def speech_fields(request: Request) -> tuple[dict, UploadFile | None]:
    """A speech request's fields and its reference clip: a JSON body, or multipart form
    fields (an ``options`` JSON field, if any, merged under the others)."""
    if not request.headers.get("content-type", "").startswith("multipart/form-data"):
        try:
            body = await request.json()
        except ValueError as exc:
            raise InvalidRequest(f"body is not JSON: {exc}", param="body") from exc
        if not isinstance(body, dict):
            raise InvalidRequest("body must be a JSON object", param="body")
        return body, None
    form = await request.form()
    reference = form.get(REFERENCE_FIELD)
    fields = _json_object(form.get("options"))
    for key, value in form.items():
        if key not in (REFERENCE_FIELD, "options") and isinstance(value, str):
            fields[key] = value
    if reference is not None and isinstance(reference, str):
        raise InvalidRequest(f"{REFERENCE_FIELD} must be an audio file", param=REFERENCE_FIELD)
    return fields, reference


def _json_object(raw: Any) -> dict:
    if raw is None:
        return {}
    try:
        value = json.loads(raw) if isinstance(raw, str) else None
    except json.JSONDecodeError as exc:
        raise InvalidRequest(f"invalid options: not JSON ({exc})", param="options") from exc
    if not isinstance(value, dict):
        raise InvalidRequest("invalid options: expected a JSON object", param="options")
    return value


def parse_fields(fields: dict, kind: type[BaseModel]) -> Any:
    """The request model, or the 422 FastAPI gives a body that does not fit it."""
    try:
        return kind.model_validate(fields)
    except ValidationError as exc:
        errors = [{**error, "loc": ("body", *error["loc"])} for error in exc.errors()]
        raise RequestValidationError(errors) from exc


def speech_body(content: dict) -> dict:
    """OpenAPI for a route that takes JSON or multipart with a reference clip."""
    multipart = {
        "type": "object",
        "properties": {
            REFERENCE_FIELD: {
                "type": "string",
                "format": "binary",
                "description": "A clip of the voice to clone (models with an x-vector model).",
            },
            "options": {"type": "string", "description": "The JSON body's fields as JSON."},
        },
    }
    return {
        "requestBody": {
            "required": True,
            "content": {
                "application/json": {"schema": content},
                "multipart/form-data": {"schema": multipart},
            },
        }
    }


# --- routes -------------------------------------------------------------------------


class Voice(BaseModel):
    """A voice to speak in: a saved clip (``audio_sample``) or a model's own (``builtin``)."""

    model_config = ConfigDict(protected_namespaces=())

    id: str
    name: str
    object: Literal["audio.voice"] = "audio.voice"
    type: Literal["audio_sample", "builtin"]
    created_at: int | None = None
    model: str | None = None


class VoiceList(BaseModel):
    object: Literal["list"] = "list"
    data: list[Voice]


class VoiceDeleted(BaseModel):
    id: str
    object: Literal["audio.voice.deleted"] = "audio.voice.deleted"
    deleted: bool = True


@router.post("/voices", response_model_exclude_none=True)
async def create_voice(
    service: Service,
    audio_sample: Annotated[UploadFile, File(description="A clip of the voice (<= 30 s).")],
    name: Annotated[str, Form(min_length=1, max_length=100)],
    consent: Annotated[str, Form(min_length=1, description="The speaker's consent record.")],
) -> Voice:
    """Save a voice to clone (OpenAI ``audio.voices.create`` shape); use it by its id."""
    clip = await reference_clip(service, audio_sample, "audio_sample")
    card = await _call("save", name, consent, clip)
    if card is None:
        raise PayloadTooLarge(
            f"the voice store is full ({service.args.voices.max_voices} voices): delete one",
            param="audio_sample",
        )
    return Voice(**card)


@router.get("/voices", response_model_exclude_none=True)
async def list_voices(service: Service) -> VoiceList:
    """Saved voices, then each tts model's own voices (``type: builtin``)."""
    data = [Voice(**card) for card in await _call("cards")]
    if service.serves(ROLES.speak):
        for model in service.args.models_for(ROLES.speak):
            target = service.target(ROLES.speak, model.name)
            data.extend(
                Voice(id=voice, name=voice, type="builtin", model=model.name)
                for voice in await service.voices(target)
            )
    return VoiceList(data=data)


@router.delete("/voices/{voice_id}")
async def delete_voice(service: Service, voice_id: str) -> VoiceDeleted:
    if not await _call("delete", voice_id):
        raise ModelNotFound(f"no saved voice {voice_id!r}", param="voice_id")
    return VoiceDeleted(id=voice_id)
