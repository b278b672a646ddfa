"""Per-step pipeline options from the command line: a JSON object and ``STEP.FIELD=VALUE``."""

from __future__ import annotations

import json
from typing import Any


def parse_step_options(options_json: str | None, settings: list[str]) -> dict[str, dict[str, Any]]:
    """``{step: {field: value}}`` from ``--options`` JSON, then each ``--set`` on top.

    A value is read as JSON when it parses (``0.6``, ``true``, ``"en"``) and taken as a
    plain string otherwise, so ``-s tts.voice=joe`` needs no quotes.
    """
    steps: dict[str, dict[str, Any]] = {}
    if options_json:
        loaded = json.loads(options_json)
        if not isinstance(loaded, dict) or not all(isinstance(v, dict) for v in loaded.values()):
            raise ValueError('--options must be a JSON object of objects: {"step": {...}}')
        steps = {step: dict(fields) for step, fields in loaded.items()}
    for setting in settings:
        target, sep, raw = setting.partition("=")
        step, dot, name = target.partition(".")
        if not (sep and dot and step and name):
            raise ValueError(f"--set wants STEP.FIELD=VALUE, got {setting!r}")
        try:
            value: Any = json.loads(raw)
        except json.JSONDecodeError:
            value = raw
        steps.setdefault(step, {})[name] = value
    return steps
