"""Which engine serves a (task, engine kind) pair, as lazy ``module:callable`` names.

Every entry is called as ``factory(path, name=..., device=None, **options)`` and returns
an object satisfying ``deployments.tasks.base.Engine``. The serving layer only ever
goes through ``load_engine``: it never knows a model architecture. An engine kind may
also be a ``module:callable`` import path: an engine of one's own behind the same
contract. ``check_options`` lets ``build_app`` refuse a misspelt engine option before
any replica starts.
"""

from __future__ import annotations

import importlib
import inspect
from dataclasses import dataclass
from typing import Any

from deployments.errors import ConfigError
from deployments.tasks.tts import ENGINES_BY_MODEL_TYPE


@dataclass(frozen=True)
class EngineEntry:
    """An engine factory; ``options_from`` names the classes a dispatching factory hands
    its options to (their constructors define what options it takes)."""

    target: str
    options_from: tuple[str, ...] = ()


ENGINES: dict[tuple[str, str], EngineEntry] = {
    ("ctc", "transformers"): EngineEntry("deployments.tasks.ctc:CTCEngine"),
    ("seq2seq", "transformers"): EngineEntry("deployments.tasks.seq2seq:WhisperEngine"),
    ("seq2seq", "ctranslate2"): EngineEntry("deployments.tasks.seq2seq_ct2:CT2WhisperEngine"),
    ("classify", "transformers"): EngineEntry(
        "deployments.tasks.classify:AudioClassificationEngine"
    ),
    ("frames", "transformers"): EngineEntry("deployments.tasks.frames:FrameClassificationEngine"),
    ("frames", "silero"): EngineEntry("deployments.tasks.silero_vad:SileroVadEngine"),
    ("tts", "transformers"): EngineEntry(
        "deployments.tasks.tts:load_tts_engine", tuple(ENGINES_BY_MODEL_TYPE.values())
    ),
    ("tts", "piper"): EngineEntry("deployments.tasks.piper_tts:PiperEngine"),
    ("generate", "transformers"): EngineEntry("deployments.tasks.generate:MusicgenEngine"),
}

# Passed by the serving layer itself, never by a config's `options:`.
RESERVED = {"path", "name"}


def _load(target: str):
    module, attr = target.split(":")
    return getattr(importlib.import_module(module), attr)


def _entry(task: str, kind: str) -> EngineEntry:
    if ":" in kind:  # a ``module:callable`` engine of the user's own (or a test's)
        return EngineEntry(kind)
    try:
        return ENGINES[(task, kind)]
    except KeyError:
        kinds = sorted(k for t, k in ENGINES if t == task)
        raise ConfigError(f"task {task!r} has no {kind!r} engine; available: {kinds}") from None


def engine_factory(task: str, kind: str):
    return _load(_entry(task, kind).target)


def _parameters(factory) -> tuple[set[str], bool]:
    """Keyword parameters a factory takes (following ``**options`` up to base classes)."""
    names: set[str] = set()
    classes = factory.__mro__ if inspect.isclass(factory) else (factory,)
    for owner in classes:
        init = owner.__init__ if inspect.isclass(owner) else owner
        if init is object.__init__:
            break
        params = inspect.signature(init).parameters.values()
        names |= {p.name for p in params if p.kind in (p.KEYWORD_ONLY, p.POSITIONAL_OR_KEYWORD)}
        if not any(p.kind is p.VAR_KEYWORD for p in params):
            return names - {"self"}, False
    return names - {"self"}, True


def accepted_options(task: str, kind: str) -> set[str] | None:
    """The option names an engine accepts, or None where it cannot be known."""
    entry = _entry(task, kind)
    sources = entry.options_from or (entry.target,)
    accepted: set[str] = set()
    for target in sources:
        names, open_ended = _parameters(_load(target))
        if open_ended:
            return None
        accepted |= names
    return accepted - RESERVED


def check_options(task: str, kind: str, options: dict[str, Any], where: str) -> None:
    """Raise ConfigError naming any option the engine does not take."""
    accepted = accepted_options(task, kind)
    unknown = sorted(set(options) - accepted) if accepted is not None else []
    if unknown:
        raise ConfigError(
            f"{where}: unknown option(s) {unknown} for the {task} {kind} engine; "
            f"it takes: {sorted(accepted)}"
        )


def load_engine(task: str, kind: str, path: str, *, name: str, **options: Any):
    """Load the engine that serves ``task`` with a model of engine kind ``kind``."""
    return engine_factory(task, kind)(path, name=name, **options)
