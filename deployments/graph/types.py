"""The data a pipeline step takes and gives, and the build-time type check of a pipeline.

A pipeline starts from decoded Audio. Each step reads one kind of data and adds one:
``frames`` turns Audio into Segments; ASR (``seq2seq``/``ctc``) reads Audio, or Audio cut
at Segments, and gives a Transcript; ``classify`` labels Audio or each Segment; ``tts``
speaks a Transcript (or Text); ``generate`` turns Text into a Waveform.
"""

from __future__ import annotations

from enum import Enum

from deployments.errors import ConfigError


class Data(str, Enum):
    AUDIO = "Audio"
    SEGMENTS = "Segments"
    TRANSCRIPT = "Transcript"
    LABELS = "Labels"
    WAVEFORM = "Waveform"
    TEXT = "Text"


# task -> (data kinds it can read, data kind it gives)
SIGNATURES: dict[str, tuple[tuple[Data, ...], Data]] = {
    "frames": ((Data.AUDIO,), Data.SEGMENTS),
    "seq2seq": ((Data.SEGMENTS, Data.AUDIO), Data.TRANSCRIPT),
    "ctc": ((Data.SEGMENTS, Data.AUDIO), Data.TRANSCRIPT),
    "classify": ((Data.SEGMENTS, Data.AUDIO), Data.LABELS),
    "tts": ((Data.TRANSCRIPT, Data.TEXT), Data.WAVEFORM),
    "generate": ((Data.TRANSCRIPT, Data.TEXT), Data.WAVEFORM),
}


def check_pipeline(name: str, tasks: list[str]) -> list[Data]:
    """Raise ConfigError unless each step's input fits the previous step's output."""
    if not tasks:
        raise ConfigError(f"pipelines.{name}: a pipeline needs at least one step")
    produced = Data.AUDIO
    kinds = []
    for i, task in enumerate(tasks):
        reads, gives = SIGNATURES[task]
        if produced not in reads:
            accepted = " or ".join(d.value for d in reads)
            raise ConfigError(
                f"pipelines.{name}[{i}]: step {task!r} reads {accepted}, "
                f"but the step before it gives {produced.value}"
            )
        kinds.append(gives)
        produced = gives
    return kinds
