"""Text to speech with transformers models: the engine for a model directory's type.

``load_tts_engine`` reads the directory's ``config.json`` and returns the engine for its
``model_type``; the engines share ``deployments.tasks.speech_engine.SpeechEngine``.
"""

from __future__ import annotations

import importlib
import json
from typing import Any

from deployments.errors import ConfigError
from deployments.tasks.base import model_dir

# model_type -> engine class, imported only when a model of that type is loaded.
ENGINES_BY_MODEL_TYPE = {
    "vits": "deployments.tasks.tts_vits:VitsEngine",
    "speecht5": "deployments.tasks.tts_speecht5:SpeechT5Engine",
    "bark": "deployments.tasks.tts_bark:BarkEngine",
}


def engine_class(target: str) -> type:
    module, attr = target.split(":")
    return getattr(importlib.import_module(module), attr)


def load_tts_engine(path: str, *, name: str, device: str | None = None, **options: Any):
    """The TTS engine for the model in ``path``, chosen by its config's ``model_type``."""
    config = model_dir(path) / "config.json"
    model_type = json.loads(config.read_text()).get("model_type") if config.is_file() else None
    if model_type not in ENGINES_BY_MODEL_TYPE:
        raise ConfigError(
            f"{path} holds a {model_type!r} model; the tts engine serves "
            f"{', '.join(ENGINES_BY_MODEL_TYPE)}"
        )
    return engine_class(ENGINES_BY_MODEL_TYPE[model_type])(
        path, name=name, device=device, **options
    )
