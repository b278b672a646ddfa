"""The files a transcription can be written as: whisper's formats plus OpenAI's two JSONs."""

from __future__ import annotations

import json
from typing import Literal

from sonaray_client.subtitles import SEGMENT_CUES, CueLayout, to_srt, to_tsv, to_vtt
from sonaray_client.types import Transcription

OutputFormat = Literal["txt", "srt", "vtt", "tsv", "json", "verbose_json"]
FormatChoice = Literal["txt", "srt", "vtt", "tsv", "json", "verbose_json", "all"]
# As whisper's ``all``: one file per suffix, the JSON being the full transcription.
ALL_FORMATS: tuple[OutputFormat, ...] = ("txt", "srt", "vtt", "tsv", "verbose_json")


def expand(choice: FormatChoice) -> tuple[OutputFormat, ...]:
    """The formats a ``--format`` choice writes."""
    return ALL_FORMATS if choice == "all" else (choice,)


def suffix(fmt: OutputFormat) -> str:
    """File suffix: both JSON flavours are ``.json``."""
    return ".json" if fmt == "verbose_json" else f".{fmt}"


def render(
    transcription: Transcription, fmt: OutputFormat, layout: CueLayout = SEGMENT_CUES
) -> str:
    """The file content of ``transcription`` in ``fmt``.

    ``json`` is OpenAI's ``{"text": ...}``; ``verbose_json`` is the whole transcription
    (language, duration, segments, words), which ``Transcription`` parses back.
    """
    if fmt == "json":
        return json.dumps({"text": transcription.text}, ensure_ascii=False) + "\n"
    if fmt == "verbose_json":
        return transcription.model_dump_json(indent=2, exclude_none=True) + "\n"
    if fmt == "srt":
        return to_srt(transcription, layout)
    if fmt == "vtt":
        return to_vtt(transcription, layout)
    if fmt == "tsv":
        return to_tsv(transcription)
    return transcription.text.strip() + "\n"
