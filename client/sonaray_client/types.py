"""Wire types of the Sonaray API: the one definition the server and the SDK share.

Options models say what a caller may ask of a task; result models say what comes back.
Field names follow OpenAI's audio API where one exists (``verbose_json``), so an OpenAI
client parses Sonaray's answers unchanged.
"""

from __future__ import annotations

from functools import cached_property
from typing import TYPE_CHECKING, Literal, get_args

from pydantic import BaseModel, ConfigDict, Field

if TYPE_CHECKING:
    from sonaray_client.response import ResponseInfo

__all__ = [
    "AudioFormat",
    "AUDIO_FORMATS",
    "Classification",
    "ClassificationOptions",
    "ErrorDetail",
    "ErrorEnvelope",
    "GenerateRequest",
    "GenerationOptions",
    "Health",
    "LabelScore",
    "ModelCard",
    "ModelList",
    "PipelineResult",
    "SpeechFormat",
    "SPEECH_FORMATS",
    "SpeechOptions",
    "SpeechRequest",
    "SpeechSegment",
    "SpeechSegments",
    "StepTiming",
    "TASK_IDS",
    "TaskId",
    "TranscriptFormat",
    "TranscriptSegment",
    "Transcription",
    "TranscriptionOptions",
    "VadOptions",
    "WireModel",
    "WordTiming",
]

TaskId = Literal["ctc", "seq2seq", "classify", "frames", "tts", "generate"]
TASK_IDS: tuple[TaskId, ...] = ("ctc", "seq2seq", "classify", "frames", "tts", "generate")

# What the native audio routes answer in: ogg is Vorbis, opus is Opus in Ogg, aac is ADTS.
AudioFormat = Literal["wav", "flac", "pcm", "mp3", "ogg", "opus", "aac"]
AUDIO_FORMATS: tuple[AudioFormat, ...] = get_args(AudioFormat)
# OpenAI's ``audio.speech`` formats (its pcm is 16-bit mono at 24 kHz).
SpeechFormat = Literal["mp3", "opus", "aac", "flac", "wav", "pcm"]
SPEECH_FORMATS: tuple[SpeechFormat, ...] = get_args(SpeechFormat)
TranscriptFormat = Literal["json", "text", "srt", "vtt", "verbose_json"]


class WireModel(BaseModel):
    """Base of every wire type: unknown fields are an error, not silently dropped."""

    model_config = ConfigDict(extra="forbid", protected_namespaces=())


class WireResult(BaseModel):
    """Base of every response type: fields a newer server adds are ignored, so an older
    client keeps working (requests stay strict; responses are forward compatible)."""

    model_config = ConfigDict(extra="ignore", protected_namespaces=())

    @cached_property
    def response_info(self) -> ResponseInfo | None:
        """Request id and server timings of the response this came in; None if built here."""
        return None


# --- options: what a caller asks of a task --------------------------------------------


class TranscriptionOptions(WireModel):
    """Options for speech recognition (``ctc`` and ``seq2seq``)."""

    task: Literal["transcribe", "translate"] = "transcribe"
    language: str | None = Field(None, description="ISO-639-1 code; detected when omitted.")
    prompt: str | None = Field(None, description="Initial prompt that biases spelling/style.")
    temperature: float = Field(0.0, ge=0.0, le=1.0)
    num_beams: int = Field(1, ge=1, le=8, description="1 = greedy decoding.")
    timestamps: Literal["none", "segment", "word"] = "segment"


class ClassificationOptions(WireModel):
    top_k: int = Field(5, ge=1, le=100)


class VadOptions(WireModel):
    """Turning per-frame speech probabilities into segments."""

    threshold: float = Field(0.5, gt=0.0, lt=1.0)
    min_speech_duration_s: float = Field(0.25, ge=0.0)
    min_silence_duration_s: float = Field(0.1, ge=0.0)
    speech_pad_s: float = Field(0.03, ge=0.0)


class SpeechOptions(WireModel):
    """Text to speech."""

    input: str = Field(..., description="Text to speak.")
    voice: str | None = Field(None, description="Voice/speaker name or preset; model default.")
    speed: float = Field(1.0, ge=0.25, le=4.0)
    seed: int | None = None


class GenerationOptions(WireModel):
    """Text (and optional audio prompt) to music/sound."""

    prompt: str
    duration_s: float = Field(5.0, gt=0.0, le=30.0)
    guidance_scale: float = Field(3.0, ge=0.0, le=20.0)
    temperature: float = Field(1.0, gt=0.0, le=2.0)
    seed: int | None = None


class SpeechRequest(SpeechOptions):
    """The body of ``POST /v1/tts``."""

    model: str | None = Field(None, description="A tts model; the task's default if omitted.")
    response_format: AudioFormat = "wav"
    stream: bool = Field(False, description="Stream sentence by sentence (a chunked body).")
    stream_format: Literal["audio", "sse"] | None = Field(
        None, description="Stream as a chunked body (audio) or as SSE events (sse)."
    )


class GenerateRequest(GenerationOptions):
    """The body of ``POST /v1/generate`` (JSON), or its fields in multipart."""

    model: str | None = Field(None, description="A generate model; the default if omitted.")
    response_format: AudioFormat = "wav"


# --- results ------------------------------------------------------------------------


class WordTiming(WireResult):
    word: str
    start: float
    end: float
    probability: float | None = None


class TranscriptSegment(WireResult):
    id: int
    start: float
    end: float
    text: str
    avg_logprob: float | None = None
    no_speech_prob: float | None = None
    words: list[WordTiming] | None = None
    # Whisper: the segment's decoded text token ids, and the start of the window it was
    # decoded in, in 10 ms frames (OpenAI's verbose_json fields).
    tokens: list[int] | None = None
    seek: int | None = None


class Transcription(WireResult):
    text: str
    language: str | None = None
    language_probability: float | None = None
    duration: float
    segments: list[TranscriptSegment] = Field(default_factory=list)
    words: list[WordTiming] | None = None
    model: str | None = None


class LabelScore(WireResult):
    label: str
    score: float


class Classification(WireResult):
    labels: list[LabelScore]
    model: str | None = None


class SpeechSegment(WireResult):
    start: float
    end: float
    label: str = "speech"
    score: float | None = None
    speaker: str | None = None


class SpeechSegments(WireResult):
    segments: list[SpeechSegment]
    duration: float
    model: str | None = None


class ModelCard(WireResult):
    id: str
    object: Literal["model"] = "model"
    created: int = Field(0, description="Unix time the model store built the model.")
    owned_by: str = "sonaray"
    task: TaskId
    default: bool = False
    sampling_rate: int | None = None


class ModelList(WireResult):
    object: Literal["list"] = "list"
    data: list[ModelCard]


class StepTiming(WireResult):
    step: str
    task: TaskId
    model: str
    seconds: float


class PipelineResult(WireResult):
    """What a pipeline returns as JSON; audio outputs come base64-encoded WAV."""

    pipeline: str
    steps: list[StepTiming]
    segments: list[SpeechSegment] | None = None
    transcription: Transcription | None = None
    labels: list[Classification] | None = None
    audio_base64: str | None = None
    audio_sampling_rate: int | None = None


class Health(WireResult):
    """``GET /healthz``: the Router answers; it needs no API key."""

    status: Literal["ok"] = "ok"


class ErrorDetail(WireResult):
    message: str
    type: str
    param: str | None = None
    code: str | None = None


class ErrorEnvelope(WireResult):
    error: ErrorDetail
    request_id: str | None = None
