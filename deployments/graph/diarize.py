"""Diarized transcription as a pipeline: speaker frames, then speech recognition per turn.

Step 1 runs a speaker-frames model (a head whose model card lists speakers) over the whole
clip: per-speaker segments, overlaps included. Consecutive segments of one speaker with
only a short pause between them become one turn, and a turn never runs past
``max_turn_s`` (the ASR window). Step 2 sends every turn to the ASR model at once, so
its deployment batches them with other requests' work. Overlapping speech gives two
turns over the same time, each transcribed from the same (mixed) audio.
"""

from __future__ import annotations

import asyncio
import string
from dataclasses import dataclass

import numpy as np
from sonaray_client.types import SpeechSegment, TranscriptionOptions

from deployments.audio import resample
from deployments.graph.runner import Call
from deployments.protocol import AudioItem, Target


@dataclass(frozen=True)
class Turn:
    """One speaker's stretch of speech and what was said in it."""

    speaker: str
    start: float
    end: float
    text: str = ""


def speaker_turns(
    segments: list[SpeechSegment], *, max_gap_s: float = 0.5, max_turn_s: float = 30.0
) -> list[Turn]:
    """Turns from per-speaker segments (in any order), sorted by start.

    Speakers are renamed ``A``, ``B``, ... in order of first appearance, as OpenAI's
    diarized transcripts name them.
    """
    names: dict[str, str] = {}
    turns: list[Turn] = []
    open_turn: dict[str, int] = {}  # speaker -> index of its latest turn
    for seg in sorted(segments, key=lambda s: (s.start, s.end)):
        label = seg.speaker or "speech"
        name = names.setdefault(label, _letter(len(names)))
        latest = open_turn.get(name)
        if latest is not None:
            turn = turns[latest]
            others_between = any(
                t.speaker != name and t.start >= turn.end for t in turns[latest + 1 :]
            )
            if (
                seg.start - turn.end <= max_gap_s
                and seg.end - turn.start <= max_turn_s
                and not others_between
            ):
                turns[latest] = Turn(name, turn.start, max(turn.end, seg.end))
                continue
        start = seg.start
        while seg.end - start > max_turn_s:  # one long stretch: cut it to the ASR window
            turns.append(Turn(name, start, start + max_turn_s))
            start += max_turn_s
        open_turn[name] = len(turns)
        turns.append(Turn(name, start, seg.end))
    return sorted(turns, key=lambda t: (t.start, t.end))


def _letter(i: int) -> str:
    letters = string.ascii_uppercase
    return letters[i] if i < len(letters) else f"S{i}"


async def diarize(
    call: Call,
    frames: Target,
    asr: Target,
    audio: np.ndarray,
    rate: int,
    frames_rate: int,
    options: TranscriptionOptions,
    max_turn_s: float = 30.0,
) -> list[Turn]:
    """Speaker turns of ``audio`` (at ``rate``, the ASR model's), each with its text."""
    frames_audio = resample(audio, rate, frames_rate)
    found = await call(frames, AudioItem(frames_audio, frames_rate, frames.spec.parse_options({})))
    turns = speaker_turns(found.segments, max_turn_s=max_turn_s)
    texts = await asyncio.gather(
        *(
            call(asr, AudioItem(audio[int(t.start * rate) : int(t.end * rate)], rate, options))
            for t in turns
        )
    )
    return [
        Turn(t.speaker, t.start, t.end, result.text.strip())
        for t, result in zip(turns, texts, strict=True)
    ]
