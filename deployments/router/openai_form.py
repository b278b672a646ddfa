"""The OpenAI multipart form past what FastAPI declares: bracketed fields and refusals.

The ``openai`` client sends list fields as ``name[]`` and objects as ``name[key]``
(``chunking_strategy[threshold]``). A field OpenAI defines that Sonaray cannot honour is
a 400 naming it, and so is a field the route does not know: silently dropping either
would answer a different request than the one sent.
"""

from __future__ import annotations

from fastapi import Request
from sonaray_client.types import VadOptions

from deployments.errors import InvalidRequest

_SPEAKERS = "Sonaray's transcription does not tell speakers apart"
REFUSED = {
    "include": "Sonaray's engines return no token log probabilities",
    "known_speaker_names": _SPEAKERS,
    "known_speaker_references": _SPEAKERS,
    "keywords": "no served model takes keyword hints; put the words in `prompt`",
    "languages": "Sonaray detects one language; send one ISO-639-1 code as `language`",
}
# Sent by the openai client but read by the streaming surface, not by the form here.
TOLERATED = {"stream"}
CHUNKING = "chunking_strategy"
# OpenAI's server_vad fields -> Sonaray's VAD options (used where long audio is cut at
# speech pauses). speech_pad_s pads both ends of a speech run, prefix_padding_ms the start.
SERVER_VAD = {
    "threshold": ("threshold", 1.0),
    "silence_duration_ms": ("min_silence_duration_s", 1e-3),
    "prefix_padding_ms": ("speech_pad_s", 1e-3),
}


def _field(key: str) -> str:
    return key.split("[", 1)[0]


def _declared(request: Request) -> set[str]:
    """The form field names the matched route (and its dependencies) declares."""
    names: set[str] = set()
    todo = [request.scope["route"].dependant]
    while todo:
        dependant = todo.pop()
        names.update(param.alias for param in dependant.body_params)
        todo.extend(dependant.dependencies)
    return names


class FormFields:
    """Dependency: refuses what the route cannot honour; reads ``chunking_strategy``.

    ``chunking``: whether the route takes OpenAI's ``chunking_strategy`` (transcriptions).
    Returns the VAD options it asks for, or None when it is absent.
    """

    def __init__(self, *, chunking: bool):
        self.chunking = chunking

    async def __call__(self, request: Request) -> VadOptions | None:
        form = await request.form()
        declared = _declared(request) | TOLERATED | ({CHUNKING} if self.chunking else set())
        for key in form:
            name = _field(key)
            if name in REFUSED:
                raise InvalidRequest(f"{name} is not supported: {REFUSED[name]}", param=name)
            if key not in declared and name not in declared:
                raise InvalidRequest(f"unknown field {key!r}", param=key)
        return _vad_options(form) if self.chunking else None


def _vad_options(form) -> VadOptions | None:
    """``"auto"`` is Sonaray's default VAD; a ``server_vad`` object sets its fields."""
    plain = form.get(CHUNKING)
    nested = {
        key[len(CHUNKING) + 1 : -1]: form[key] for key in form if key.startswith(CHUNKING + "[")
    }
    if plain is None and not nested:
        return None
    if plain is not None:
        if plain != "auto" or nested:
            raise InvalidRequest(
                f'{CHUNKING} must be "auto" or a server_vad object', param=CHUNKING
            )
        return VadOptions()
    if nested.pop("type", None) != "server_vad":
        raise InvalidRequest(f'{CHUNKING}[type] must be "server_vad"', param=f"{CHUNKING}[type]")
    values = {}
    for key, raw in nested.items():
        if key not in SERVER_VAD:
            raise InvalidRequest(
                f"{CHUNKING}[{key}] is not supported; Sonaray honours {', '.join(SERVER_VAD)}",
                param=f"{CHUNKING}[{key}]",
            )
        field, scale = SERVER_VAD[key]
        try:
            values[field] = float(raw) * scale
        except ValueError as exc:
            raise InvalidRequest(
                f"{CHUNKING}[{key}] must be a number", param=f"{CHUNKING}[{key}]"
            ) from exc
    try:
        return VadOptions(**values)
    except ValueError as exc:
        raise InvalidRequest(f"invalid {CHUNKING}: {exc}", param=CHUNKING) from exc
