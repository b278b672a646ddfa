"""Rendering a ``Transcription`` as plain text, SRT or WebVTT, client-side from its segments."""

from __future__ import annotations

from typing import Literal

from sonaray_client.types import Transcription, TranscriptSegment

OutputFormat = Literal["txt", "srt", "vtt", "json"]


def render(transcription: Transcription, fmt: OutputFormat) -> str:
    """The file content for ``fmt``."""
    if fmt == "json":
        return transcription.model_dump_json(indent=2, exclude_none=True) + "\n"
    if fmt == "srt":
        return to_srt(transcription)
    if fmt == "vtt":
        return to_vtt(transcription)
    return transcription.text.strip() + "\n"


def to_srt(transcription: Transcription) -> str:
    """SubRip cues, numbered from 1."""
    cues = [
        f"{n}\n{_clock(seg.start, ',')} --> {_clock(seg.end, ',')}\n{seg.text.strip()}\n"
        for n, seg in enumerate(_cues(transcription), start=1)
    ]
    return "\n".join(cues)


def to_vtt(transcription: Transcription) -> str:
    """WebVTT with one cue per segment."""
    cues = [
        f"{_clock(seg.start, '.')} --> {_clock(seg.end, '.')}\n{seg.text.strip()}\n"
        for seg in _cues(transcription)
    ]
    return "\n".join(["WEBVTT\n", *cues])


def _cues(transcription: Transcription) -> list[TranscriptSegment]:
    # A model without timestamps (CTC, timestamps="none") still gets one cue for the clip.
    if transcription.segments:
        return [seg for seg in transcription.segments if seg.text.strip()]
    if not transcription.text.strip():
        return []
    end = transcription.duration
    return [TranscriptSegment(id=0, start=0.0, end=end, text=transcription.text)]


def _clock(seconds: float, decimal: str) -> str:
    millis = max(0, round(seconds * 1000))
    hours, millis = divmod(millis, 3_600_000)
    minutes, millis = divmod(millis, 60_000)
    secs, millis = divmod(millis, 1000)
    return f"{hours:02d}:{minutes:02d}:{secs:02d}{decimal}{millis:03d}"
