"""Which engine serves a (task, engine kind) pair, as lazy ``module:callable`` names.

Every entry is called as ``factory(path, name=..., device=None, **options)`` and returns
an object satisfying ``deployments.tasks.base.Engine``. The serving layer only ever
goes through ``load_engine``: it never knows a model architecture.
"""

from __future__ import annotations

import importlib
from typing import Any

from deployments.errors import ConfigError

ENGINES: dict[tuple[str, str], str] = {
    ("ctc", "transformers"): "deployments.tasks.ctc:CTCEngine",
    ("seq2seq", "transformers"): "deployments.tasks.seq2seq:WhisperEngine",
    ("seq2seq", "ctranslate2"): "deployments.tasks.seq2seq_ct2:CT2WhisperEngine",
    ("classify", "transformers"): "deployments.tasks.classify:AudioClassificationEngine",
    ("frames", "transformers"): "deployments.tasks.frames:FrameClassificationEngine",
    ("frames", "silero"): "deployments.tasks.silero_vad:SileroVadEngine",
    ("tts", "transformers"): "deployments.tasks.tts:load_tts_engine",
    ("tts", "piper"): "deployments.tasks.piper_tts:PiperEngine",
    ("generate", "transformers"): "deployments.tasks.generate:MusicgenEngine",
}


def engine_factory(task: str, kind: str):
    try:
        target = ENGINES[(task, kind)]
    except KeyError:
        kinds = sorted(k for t, k in ENGINES if t == task)
        raise ConfigError(f"task {task!r} has no {kind!r} engine; available: {kinds}") from None
    module, attr = target.split(":")
    return getattr(importlib.import_module(module), attr)


def load_engine(task: str, kind: str, path: str, *, name: str, **options: Any):
    """Load the engine that serves ``task`` with a model of engine kind ``kind``."""
    return engine_factory(task, kind)(path, name=name, **options)
