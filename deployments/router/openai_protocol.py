"""OpenAI's audio wire shapes, as the ``openai`` package reads and sends them.

The response models are what ``/v1/audio/*`` answers (and what the OpenAPI page shows);
they mirror ``openai.types.audio`` field for field. Sonaray's own results
(``sonaray_client.types.Transcription``) are turned into them here and nowhere else.
"""

from __future__ import annotations

import zlib
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field
from sonaray_client.types import SpeechFormat, Transcription

from deployments.router.languages import language_name

OPENAI_ASR_MODELS = {"whisper-1", "gpt-4o-transcribe", "gpt-4o-mini-transcribe"}
OPENAI_TTS_MODELS = {"tts-1", "tts-1-hd", "gpt-4o-mini-tts"}
OPENAI_VOICES = {
    "alloy", "ash", "ballad", "cedar", "coral", "echo", "fable",
    "marin", "nova", "onyx", "sage", "shimmer", "verse",
}  # fmt: skip
# OpenAI's pcm is raw 16-bit little-endian at 24 kHz; players assume that rate.
OPENAI_PCM_RATE = 24000


class DurationUsage(BaseModel):
    """What a transcription cost: the seconds of audio heard (OpenAI's audio-priced usage)."""

    type: Literal["duration"] = "duration"
    seconds: float


class TranscriptionJson(BaseModel):
    """``response_format=json``."""

    text: str
    usage: DurationUsage | None = Field(None, description="Transcriptions only, as OpenAI.")


class VerboseSegment(BaseModel):
    id: int
    seek: int = Field(description="Start of the window the segment was decoded in (10 ms).")
    start: float
    end: float
    text: str
    tokens: list[int] = Field(description="The segment's text token ids (Whisper).")
    temperature: float
    avg_logprob: float
    compression_ratio: float
    no_speech_prob: float


class VerboseWord(BaseModel):
    word: str
    start: float
    end: float


class TranscriptionVerboseJson(BaseModel):
    """``response_format=verbose_json``: segments, and words when asked for."""

    task: Literal["transcribe", "translate"]
    language: str = Field(description='English name of the language ("english").')
    duration: float
    text: str
    segments: list[VerboseSegment]
    words: list[VerboseWord] | None = None
    usage: DurationUsage | None = Field(None, description="Transcriptions only, as OpenAI.")


class VoiceRef(BaseModel):
    id: str


class OpenAISpeechRequest(BaseModel):
    """OpenAI's ``audio.speech.create`` body."""

    model_config = ConfigDict(extra="forbid", protected_namespaces=())

    model: str = Field(
        "tts-1", description="A tts model, or an OpenAI name (tts-1) for the default."
    )
    input: str
    voice: str | VoiceRef | None = Field(
        None, description="A voice of the model; OpenAI voice names mean its default voice."
    )
    instructions: str | None = Field(
        None, description="Refused when set: no served model takes speaking instructions."
    )
    response_format: SpeechFormat = "mp3"
    speed: float = Field(1.0, ge=0.25, le=4.0)
    stream_format: Literal["audio", "sse"] = Field(
        "audio",
        description="audio: a chunked body, sentence by sentence (flac and aac come whole); "
        "sse: speech.audio.delta events, then speech.audio.done.",
    )


def _compression_ratio(text: str) -> float:
    # Whisper's repetition measure: raw bytes over zlib-compressed bytes.
    raw = text.encode()
    return round(len(raw) / len(zlib.compress(raw)), 4) if raw else 0.0


def transcription_json(result: Transcription, usage: bool) -> TranscriptionJson:
    return TranscriptionJson(
        text=result.text, usage=DurationUsage(seconds=result.duration) if usage else None
    )


def verbose_json(
    result: Transcription, task: str, temperature: float, *, words: bool, usage: bool
) -> TranscriptionVerboseJson:
    """OpenAI's ``verbose_json`` body from a Sonaray transcription."""
    return TranscriptionVerboseJson(
        task=task,
        language=language_name(result.language),
        duration=result.duration,
        text=result.text,
        segments=[
            VerboseSegment(
                id=seg.id,
                # engines without decoding windows (CTC) report none: the segment's start
                seek=seg.seek if seg.seek is not None else round(seg.start * 100),
                start=seg.start,
                end=seg.end,
                text=seg.text,
                tokens=seg.tokens or [],
                temperature=temperature,
                avg_logprob=seg.avg_logprob or 0.0,
                compression_ratio=_compression_ratio(seg.text),
                no_speech_prob=seg.no_speech_prob or 0.0,
            )
            for seg in result.segments
        ],
        words=[VerboseWord(word=w.word, start=w.start, end=w.end) for w in result.words or []]
        if words
        else None,
        usage=DurationUsage(seconds=result.duration) if usage else None,
    )
