"""The ground floor: what crosses replica boundaries, and the one table of task families.

Everything above reads ``TASKS`` instead of switching on task names: the router's routes,
the Hugging Face dispatch, the pipeline type check and runner, the service, the engine
registry and the Kubernetes renderer. This module imports neither Ray nor torch nor
transformers, so every layer (and the router replica) can import it for free.

Adding a seventh family is one ``TaskSpec`` row here plus one engine module registered in
``deployments/tasks/registry.py``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import Enum
from typing import Any, Generic, Literal, TypeVar

import numpy as np
from pydantic import BaseModel
from sonaray_client.types import (
    TASK_IDS,
    Classification,
    ClassificationOptions,
    GenerationOptions,
    SpeechOptions,
    SpeechSegments,
    TaskId,
    Transcription,
    TranscriptionOptions,
    VadOptions,
)

from deployments.errors import InvalidRequest, PayloadTooLarge

OptionsT = TypeVar("OptionsT")

# --- what crosses replica boundaries --------------------------------------------------


@dataclass
class AudioItem(Generic[OptionsT]):
    """One audio request: mono float32 samples, their rate (must equal the engine's), options."""

    audio: np.ndarray
    sampling_rate: int
    options: OptionsT


@dataclass
class TextItem(Generic[OptionsT]):
    """One text request (tts, generate); ``audio`` is an optional reference/prompt clip.

    ``sampling_rate`` is the rate of ``audio``; None means it is already at the rate the
    engine documents for reference audio.
    """

    options: OptionsT
    audio: np.ndarray | None = None
    sampling_rate: int | None = None


@dataclass
class Waveform:
    """Generated audio: mono float32 in [-1, 1] at ``sampling_rate``."""

    audio: np.ndarray
    sampling_rate: int
    extras: dict[str, Any] = field(default_factory=dict)

    @property
    def duration(self) -> float:
        return len(self.audio) / self.sampling_rate


def check_text(text: str, *, max_chars: int | None, param: str = "input") -> str:
    """Raise a typed error for empty or over-long text; return it stripped."""
    if not isinstance(text, str) or not text.strip():
        raise InvalidRequest("text is empty", param=param)
    if max_chars is not None and len(text) > max_chars:
        raise PayloadTooLarge(
            f"text is {len(text)} characters; the limit is {max_chars}", param=param
        )
    return text.strip()


# --- the task table -------------------------------------------------------------------


class Data(str, Enum):
    """The kinds of data a pipeline step reads and gives."""

    AUDIO = "Audio"
    SEGMENTS = "Segments"
    TRANSCRIPT = "Transcript"
    LABELS = "Labels"
    WAVEFORM = "Waveform"
    TEXT = "Text"


@dataclass(frozen=True)
class TaskSpec:
    """What one task family is, as every layer above needs to know it.

    ``text_field`` names the options field that carries a text-input task's text (the
    request field users fill, and the one a pipeline fills from the transcript).
    ``translates`` says whether its models can translate speech (OpenAI translations).
    """

    id: TaskId
    input: Literal["audio", "text"]
    options: type[BaseModel]
    result: type
    reads: tuple[Data, ...]
    gives: Data
    gpu_share: float
    summary: str
    text_field: str | None = None
    translates: bool = False

    @property
    def reads_audio(self) -> bool:
        return self.input == "audio"

    @property
    def transcribes(self) -> bool:
        return self.gives is Data.TRANSCRIPT

    def parse_options(self, raw: dict | None, param: str = "options") -> Any:
        """This task's options from a JSON object, or a 400 naming the field."""
        try:
            return self.options.model_validate(raw or {})
        except ValueError as exc:
            raise InvalidRequest(f"invalid {param}: {exc}", param=param) from exc

    def text_options(self, text: str, extra: dict | None = None, param: str = "options") -> Any:
        """Options for a text-input task with ``text`` in its text field."""
        return self.parse_options({**(extra or {}), self.text_field: text}, param)

    def text_of(self, options: Any) -> str:
        return getattr(options, self.text_field)


_ASR_READS = (Data.SEGMENTS, Data.AUDIO)
_TEXT_READS = (Data.TRANSCRIPT, Data.TEXT)

TASKS: dict[str, TaskSpec] = {
    spec.id: spec
    for spec in (
        TaskSpec(
            "ctc", "audio", TranscriptionOptions, Transcription, _ASR_READS, Data.TRANSCRIPT,
            0.25, "Speech recognition with a CTC model (wav2vec2, HuBERT), with word offsets.",
        ),
        TaskSpec(
            "seq2seq", "audio", TranscriptionOptions, Transcription, _ASR_READS, Data.TRANSCRIPT,
            0.5, "Speech recognition/translation with an encoder-decoder model (Whisper).",
            translates=True,
        ),
        TaskSpec(
            "classify", "audio", ClassificationOptions, Classification, _ASR_READS, Data.LABELS,
            0.25, "Audio classification: top-k labels with scores.",
        ),
        TaskSpec(
            "frames", "audio", VadOptions, SpeechSegments, (Data.AUDIO,), Data.SEGMENTS,
            0.25, "Frame classification: voice activity / speakers.",
        ),
        TaskSpec(
            "tts", "text", SpeechOptions, Waveform, _TEXT_READS, Data.WAVEFORM,
            0.25, "Text to speech.", text_field="input",
        ),
        TaskSpec(
            "generate", "text", GenerationOptions, Waveform, _TEXT_READS, Data.WAVEFORM,
            0.5, "Text (and an optional audio prompt) to music or sound (MusicGen).",
            text_field="prompt",
        ),
    )
}  # fmt: skip

assert tuple(TASKS) == TASK_IDS, "TASKS and the wire TaskId must list the same families"


def task_spec(task: str) -> TaskSpec:
    """The spec of a task id (a KeyError here is a programming error, not user input)."""
    return TASKS[task]


def tasks_where(predicate) -> list[TaskSpec]:
    """The task specs for which ``predicate(spec)`` holds, in table order."""
    return [spec for spec in TASKS.values() if predicate(spec)]


@dataclass(frozen=True)
class Target:
    """A request's task and model, resolved once (the model is a served model's name)."""

    spec: TaskSpec
    model: str

    @property
    def task(self) -> str:
        return self.spec.id


@dataclass(frozen=True)
class Roles:
    """Which family plays each part in the graphs the router composes on its own."""

    transcribe: str = "seq2seq"  # OpenAI transcriptions and translations by default
    speak: str = "tts"  # OpenAI speech, spoken replies
    segment: str = "frames"  # voice activity: long-audio chunking, turn detection


ROLES = Roles()
