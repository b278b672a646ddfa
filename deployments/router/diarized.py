"""OpenAI's ``diarized_json`` transcription body, from the diarization pipeline's turns."""

from __future__ import annotations

import math

from deployments.graph.diarize import Turn

SEGMENT_TYPE = "transcript.text.segment"


def diarized_json(turns: list[Turn], duration: float) -> dict:
    """``{task, duration, text, segments: [{type, id, start, end, text, speaker}], usage}``;
    turns with no recognized text are left out, as OpenAI leaves silence out."""
    spoken = [t for t in turns if t.text]
    return {
        "task": "transcribe",
        "duration": duration,
        "text": " ".join(t.text for t in spoken),
        "segments": [
            {
                "type": SEGMENT_TYPE,
                "id": f"seg_{i}",
                "start": t.start,
                "end": t.end,
                "text": t.text,
                "speaker": t.speaker,
            }
            for i, t in enumerate(spoken)
        ],
        "usage": {"type": "duration", "seconds": math.ceil(duration)},
    }
