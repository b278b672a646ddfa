"""Text to speech with transformers models: the engine for a model directory's type.

``load_tts_engine`` reads the directory's ``config.json`` and returns the engine for its
``model_type``; the engines share ``deployments.tasks.speech_engine.SpeechEngine``. Other
types that ``AutoModelForTextToWaveform`` loads go to the generic engine; anything else
is refused when the app is built (``check_tts_config``), naming what would load.
"""

from __future__ import annotations

import importlib
import json
from pathlib import Path
from typing import Any

from deployments.errors import ConfigError
from deployments.tasks.base import model_dir

# model_type -> engine class, imported only when a model of that type is loaded.
ENGINES_BY_MODEL_TYPE = {
    "vits": "deployments.tasks.tts_vits:VitsEngine",
    "speecht5": "deployments.tasks.tts_speecht5:SpeechT5Engine",
    "bark": "deployments.tasks.tts_bark:BarkEngine",
}
GENERIC_ENGINE = "deployments.tasks.tts_auto:TextToWaveformEngine"


def engine_class(target: str) -> type:
    module, attr = target.split(":")
    return getattr(importlib.import_module(module), attr)


def _engine_target(config_file: Path, where: str) -> str:
    """The engine for a model's ``config.json``; ConfigError for a type no engine serves."""
    from transformers.models.auto.modeling_auto import MODEL_FOR_TEXT_TO_WAVEFORM_MAPPING_NAMES

    config = json.loads(config_file.read_text()) if config_file.is_file() else {}
    model_type = config.get("model_type")
    if model_type in ENGINES_BY_MODEL_TYPE:
        return ENGINES_BY_MODEL_TYPE[model_type]
    if model_type in MODEL_FOR_TEXT_TO_WAVEFORM_MAPPING_NAMES:
        return GENERIC_ENGINE
    generic = sorted(set(MODEL_FOR_TEXT_TO_WAVEFORM_MAPPING_NAMES) - set(ENGINES_BY_MODEL_TYPE))
    raise ConfigError(
        f"{where} holds a {model_type!r} model, which is not text to speech: the tts engine "
        f"serves {', '.join(ENGINES_BY_MODEL_TYPE)}, and {', '.join(generic)} through "
        "AutoModelForTextToWaveform"
    )


def check_tts_config(config_file: Path, where: str) -> None:
    """Build-time check: raise ConfigError unless some tts engine serves this model."""
    _engine_target(config_file, where)


def load_tts_engine(path: str, *, name: str, device: str | None = None, **options: Any):
    """The TTS engine for the model in ``path``, chosen by its config's ``model_type``."""
    target = _engine_target(model_dir(path) / "config.json", path)
    return engine_class(target)(path, name=name, device=device, **options)
