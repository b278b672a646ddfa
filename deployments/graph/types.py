"""The build-time type check of a pipeline, from the task table's ``reads``/``gives``.

A pipeline starts from decoded Audio. Each step reads one kind of data and adds one:
``frames`` turns Audio into Segments; ASR (``seq2seq``/``ctc``) reads Audio, or Audio cut
at Segments, and gives a Transcript; ``classify`` labels Audio or each Segment; ``tts``
speaks a Transcript (or Text); ``generate`` turns Text into a Waveform.
"""

from __future__ import annotations

from deployments.errors import ConfigError
from deployments.protocol import TASKS, Data


def check_pipeline(name: str, tasks: list[str]) -> list[Data]:
    """Raise ConfigError unless each step's input fits the previous step's output."""
    if not tasks:
        raise ConfigError(f"pipelines.{name}: a pipeline needs at least one step")
    produced = Data.AUDIO
    kinds = []
    for i, task in enumerate(tasks):
        spec = TASKS[task]
        if produced not in spec.reads:
            accepted = " or ".join(d.value for d in spec.reads)
            raise ConfigError(
                f"pipelines.{name}[{i}]: step {task!r} reads {accepted}, "
                f"but the step before it gives {produced.value}"
            )
        kinds.append(spec.gives)
        produced = spec.gives
    return kinds
