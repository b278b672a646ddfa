"""SubRip, WebVTT and TSV from a ``Transcription``, rendered client-side from its timings.

By default a cue is a segment. A ``CueLayout`` regroups the words (which need word
timestamps) into cues of bounded lines, the way whisper's ``--max_line_width``,
``--max_line_count`` and ``--max_words_per_line`` do.
"""

from __future__ import annotations

from dataclasses import dataclass

from sonaray_client.types import Transcription, WordTiming

# With both a width and a line count, words flow across segments and a cue breaks at a
# pause longer than this, as whisper's writer does.
LONG_PAUSE_S = 3.0


@dataclass(frozen=True)
class CueLayout:
    """Limits on a subtitle cue; all None keeps one cue per segment."""

    max_line_width: int | None = None
    max_line_count: int | None = None
    max_words_per_line: int | None = None

    @property
    def regroups(self) -> bool:
        return any(
            limit is not None
            for limit in (self.max_line_width, self.max_line_count, self.max_words_per_line)
        )


SEGMENT_CUES = CueLayout()


@dataclass(frozen=True)
class Cue:
    start: float
    end: float
    text: str


def to_srt(transcription: Transcription, layout: CueLayout = SEGMENT_CUES) -> str:
    """SubRip cues, numbered from 1."""
    return "\n".join(
        f"{n}\n{_clock(cue.start, ',')} --> {_clock(cue.end, ',')}\n{cue.text}\n"
        for n, cue in enumerate(cues(transcription, layout), start=1)
    )


def to_vtt(transcription: Transcription, layout: CueLayout = SEGMENT_CUES) -> str:
    """WebVTT cues."""
    body = [
        f"{_clock(cue.start, '.')} --> {_clock(cue.end, '.')}\n{cue.text}\n"
        for cue in cues(transcription, layout)
    ]
    return "\n".join(["WEBVTT\n", *body])


def to_tsv(transcription: Transcription) -> str:
    """Whisper's TSV: a header, then start and end in integer milliseconds and the text."""
    rows = [
        f"{round(cue.start * 1000)}\t{round(cue.end * 1000)}\t{cue.text.replace(chr(9), ' ')}"
        for cue in _segment_cues(transcription)
    ]
    return "\n".join(["start\tend\ttext", *rows]) + "\n"


def cues(transcription: Transcription, layout: CueLayout = SEGMENT_CUES) -> list[Cue]:
    """The cues of ``transcription`` under ``layout`` (segments when it lacks words)."""
    groups = [seg.words for seg in transcription.segments if seg.words]
    if not groups and transcription.words:
        groups = [transcription.words]
    if not layout.regroups or not groups:
        return _segment_cues(transcription)
    return _word_cues(groups, layout)


def _segment_cues(transcription: Transcription) -> list[Cue]:
    # A model without timestamps (CTC, timestamps="none") still gets one cue for the clip.
    if transcription.segments:
        return [
            Cue(seg.start, seg.end, seg.text.strip())
            for seg in transcription.segments
            if seg.text.strip()
        ]
    if not transcription.text.strip():
        return []
    return [Cue(0.0, transcription.duration, transcription.text.strip())]


def _word_cues(groups: list[list[WordTiming]], layout: CueLayout) -> list[Cue]:
    """Words into lines and lines into cues, breaking where a limit would be passed."""
    width = layout.max_line_width
    per_line = layout.max_words_per_line
    flows = width is not None and layout.max_line_count is not None
    result: list[Cue] = []
    lines: list[list[str]] = []
    first: WordTiming | None = None
    last: WordTiming | None = None

    def close_cue() -> None:
        nonlocal first
        if first is not None and last is not None and lines:
            text = "\n".join(" ".join(line) for line in lines)
            result.append(Cue(first.start, last.end, text))
        lines.clear()
        first = None

    for group in groups:
        if not flows:
            close_cue()  # each segment keeps its own cues
        for word in group:
            text = word.word.strip()
            if not text:
                continue
            pause = flows and last is not None and word.start - last.end > LONG_PAUSE_S
            line = lines[-1] if lines else None
            fits = (
                line is not None
                and (per_line is None or len(line) < per_line)
                and (width is None or len(" ".join([*line, text])) <= width)
            )
            if line is not None and fits and not pause:
                line.append(text)
            else:
                full = layout.max_line_count is not None and len(lines) >= layout.max_line_count
                if pause or full:
                    close_cue()
                lines.append([text])
            if first is None:
                first = word
            last = word
    close_cue()
    return result


def _clock(seconds: float, decimal: str) -> str:
    millis = max(0, round(seconds * 1000))
    hours, millis = divmod(millis, 3_600_000)
    minutes, millis = divmod(millis, 60_000)
    secs, millis = divmod(millis, 1000)
    return f"{hours:02d}:{minutes:02d}:{secs:02d}{decimal}{millis:03d}"
