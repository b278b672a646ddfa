"""Transcribing many files in one go: find them, decide where each output goes (and which
already exist), send them through ``AsyncSonaray.transcribe_many``, write as each ends."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeRemainingColumn,
)

from sonaray_client.async_client import AsyncSonaray
from sonaray_client.audio import HEADER_BYTES, AudioInput, estimate_duration_s
from sonaray_client.subtitles import SEGMENT_CUES, CueLayout
from sonaray_client.transcript_formats import OutputFormat, render, suffix
from sonaray_client.types import Transcription

AUDIO_SUFFIXES = frozenset({".wav", ".flac", ".mp3", ".ogg", ".opus", ".m4a", ".webm", ".aac"})
STDIN = "-"
STDOUT = "-"


class PlanError(ValueError):
    """The inputs and output options do not make sense together (a usage error)."""


@dataclass
class Job:
    """One input and the outputs still to write for it (``None`` is standard output)."""

    name: str
    audio: AudioInput
    seconds: float
    outputs: dict[OutputFormat, Path | None]


@dataclass
class Plan:
    jobs: list[Job] = field(default_factory=list)
    # Inputs left alone because every output they would write exists already.
    skipped: list[str] = field(default_factory=list)


@dataclass
class BatchResult:
    """Output files written, text for standard output (in input order), inputs that failed."""

    written: list[Path] = field(default_factory=list)
    stdout: list[str] = field(default_factory=list)
    failed: list[tuple[str, Exception]] = field(default_factory=list)


def collect_audio(paths: Iterable[Path]) -> list[tuple[Path, Path]]:
    """``(file, name)`` for the given files and the audio files under given folders.

    ``name`` is the file's path relative to the folder it was found in (its own name for a
    file given directly), which is how an output folder mirrors the inputs.
    """
    found: dict[Path, Path] = {}
    for path in paths:
        if path.is_dir():
            for child in sorted(path.rglob("*")):
                if child.is_file() and child.suffix.lower() in AUDIO_SUFFIXES:
                    found.setdefault(child, child.relative_to(path))
        else:
            found.setdefault(path, Path(path.name))
    return list(found.items())


def plan_jobs(
    inputs: list[str],
    formats: tuple[OutputFormat, ...],
    *,
    output_dir: Path | None,
    output: str | None,
    overwrite: bool,
    read_stdin: Callable[[], bytes],
) -> Plan:
    """What to transcribe and where each result goes; existing outputs are kept unless
    ``overwrite``. Audio from standard input goes to standard output unless told otherwise.
    """
    if output is not None and output_dir is not None:
        raise PlanError("give --output or --output-dir, not both")
    if output == STDOUT and len(formats) > 1:
        raise PlanError("--format all writes several files: use --output-dir, not -o -")
    if inputs.count(STDIN) > 1:
        raise PlanError("standard input ('-') can be read only once")
    missing = [p for p in inputs if p != STDIN and not Path(p).exists()]
    if missing:
        raise PlanError(f"no such file or folder: {', '.join(missing)}")
    sources: list[tuple[str, AudioInput, float, Path | None]] = []
    for path, name in collect_audio(Path(p) for p in inputs if p != STDIN):
        with path.open("rb") as head:
            seconds = estimate_duration_s(head.read(HEADER_BYTES), path.stat().st_size)
        target = output_dir / name if output_dir else path
        sources.append((str(path), path, seconds, target))
    if STDIN in inputs:
        data = read_stdin()
        target = output_dir / "stdin" if output_dir else None
        sources.insert(inputs.index(STDIN), ("<stdin>", data, _seconds(data), target))
    if not sources:
        raise PlanError("no audio files found")
    if output not in (None, STDOUT) and (len(sources) > 1 or len(formats) > 1):
        raise PlanError("-o FILE takes one input and one format: use --output-dir for more")

    plan, claimed = Plan(), set[Path]()
    for name, audio, seconds, target in sources:
        outputs: dict[OutputFormat, Path | None] = {}
        for fmt in formats:
            out = _output_path(target, fmt, output)
            if out is not None and out in claimed:
                raise PlanError(f"two inputs would both write {out}: use separate folders")
            if out is not None:
                claimed.add(out)
            if out is None or overwrite or not out.exists():
                outputs[fmt] = out
        if outputs:
            plan.jobs.append(Job(name, audio, seconds, outputs))
        else:
            plan.skipped.append(name)
    return plan


def _output_path(target: Path | None, fmt: OutputFormat, output: str | None) -> Path | None:
    if output is not None:
        return None if output == STDOUT else Path(output)
    return None if target is None else target.with_suffix(suffix(fmt))


def _seconds(data: bytes) -> float:
    return estimate_duration_s(data[:HEADER_BYTES], len(data))


def transcribe_progress(console: Console) -> Progress:
    """A bar over seconds of audio, with files done and the time left."""
    return Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        TextColumn("{task.fields[files]} files"),
        MofNCompleteColumn(),
        TextColumn("s of audio"),
        TimeRemainingColumn(),
        console=console,
    )


async def run_jobs(
    client: AsyncSonaray,
    jobs: list[Job],
    *,
    concurrency: int,
    progress: Progress,
    layout: CueLayout = SEGMENT_CUES,
    **request: Any,
) -> BatchResult:
    """Transcribe every job, ``concurrency`` at a time, writing its outputs as it ends.

    ``request`` goes to ``AsyncSonaray.transcribe`` (model, engine, language...). One job
    failing does not stop the others; it is listed in the result.
    """
    result = BatchResult()
    to_stdout: dict[int, str] = {}
    total = sum(job.seconds for job in jobs)
    bar = progress.add_task("Transcribing", total=total, files=f"0/{len(jobs)}")
    done = 0

    def finished(index: int, outcome: Transcription | Exception) -> None:
        nonlocal done, total
        job = jobs[index]
        if isinstance(outcome, Exception):
            result.failed.append((job.name, outcome))
        else:
            try:
                for fmt, out in job.outputs.items():
                    text = render(outcome, fmt, layout)
                    if out is None:
                        to_stdout[index] = text
                    else:
                        out.parent.mkdir(parents=True, exist_ok=True)
                        out.write_text(text, encoding="utf-8")
                        result.written.append(out)
            except OSError as exc:
                result.failed.append((job.name, exc))
        done += 1
        # The estimate gives way to the length the server measured, so the total stays true.
        seconds = outcome.duration if isinstance(outcome, Transcription) else job.seconds
        total += seconds - job.seconds
        progress.update(bar, total=total, advance=seconds, files=f"{done}/{len(jobs)}")

    await client.transcribe_many(
        [job.audio for job in jobs],
        concurrency=concurrency,
        return_exceptions=True,
        on_result=finished,
        **request,
    )
    result.stdout = [to_stdout[i] for i in sorted(to_stdout)]
    return result
