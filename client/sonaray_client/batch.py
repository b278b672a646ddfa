"""Transcribing many files at once: gather them, send N at a time, write results beside them."""

from __future__ import annotations

import asyncio
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pydantic import ValidationError
from rich.progress import Progress

from sonaray_client.async_client import AsyncSonaray
from sonaray_client.errors import SonarayError, describe_error
from sonaray_client.subtitles import OutputFormat, render

AUDIO_SUFFIXES = frozenset({".wav", ".flac", ".mp3", ".ogg", ".opus", ".m4a", ".webm", ".aac"})


@dataclass
class BatchResult:
    """Output files written, and inputs that failed with the reason."""

    written: list[Path] = field(default_factory=list)
    failed: list[tuple[Path, str]] = field(default_factory=list)


def collect_audio(paths: Iterable[Path]) -> list[Path]:
    """The given files, plus the audio files under any given folder (recursively), once each."""
    found: dict[Path, None] = {}
    for path in paths:
        if path.is_dir():
            for child in sorted(path.rglob("*")):
                if child.is_file() and child.suffix.lower() in AUDIO_SUFFIXES:
                    found.setdefault(child)
        else:
            found.setdefault(path)
    return list(found)


def output_path(audio: Path, fmt: OutputFormat) -> Path:
    """Where the transcript of ``audio`` goes: beside it, its suffix replaced."""
    return audio.with_suffix(f".{fmt}")


async def transcribe_files(
    client: AsyncSonaray,
    files: list[Path],
    *,
    fmt: OutputFormat,
    concurrency: int,
    progress: Progress,
    **request: Any,
) -> BatchResult:
    """Transcribe ``files`` with at most ``concurrency`` requests in flight.

    ``request`` goes to ``AsyncSonaray.transcribe`` (model, engine, language...). One file
    failing does not stop the others; it is reported in the result.
    """
    result = BatchResult()
    limit = asyncio.Semaphore(max(1, concurrency))
    task = progress.add_task("Transcribing", total=len(files))

    async def transcribe_one(path: Path) -> None:
        async with limit:
            try:
                transcription = await client.transcribe(path, **request)
                out = output_path(path, fmt)
                out.write_text(render(transcription, fmt), encoding="utf-8")
                result.written.append(out)
            except (SonarayError, ValidationError, OSError) as exc:
                result.failed.append((path, describe_error(exc)))
            finally:
                progress.advance(task)

    await asyncio.gather(*(transcribe_one(path) for path in files))
    return result
