"""Server VAD turn detection: per-window speech probabilities in, turn edges out.

The rule is Silero's own (``get_speech_timestamps``) run live: speech starts when a run of
windows at or above ``threshold`` lasts ``min_speech_ms``; it stops once the probability
has stayed under ``threshold - 0.15`` for ``silence_duration_ms``. Between the two
thresholds nothing changes, so a wavering probability neither starts nor ends a turn.
Positions are samples since the session started, at the VAD's rate.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

HYSTERESIS = 0.15


@dataclass(frozen=True)
class TurnSettings:
    threshold: float = 0.5
    prefix_padding_ms: int = 300
    silence_duration_ms: int = 500
    min_speech_ms: int = 100


@dataclass(frozen=True)
class SpeechStarted:
    start: int  # where the turn's audio begins: speech start less the prefix padding
    speech: int  # the first speech window


@dataclass(frozen=True)
class SpeechStopped:
    end: int  # where the turn's audio ends: after the silence that ended it
    speech_end: int  # the end of the last speech window


class TurnDetector:
    def __init__(self, settings: TurnSettings, rate: int, window: int):
        self.settings = settings
        self.rate = rate
        self.window = window
        self.reset(0)

    def reset(self, floor: int) -> None:
        """Forget the turn in progress; no turn starts before ``floor`` (committed audio)."""
        self.floor = floor
        self.speaking = False
        self._run_start: int | None = None
        self._silence_start: int | None = None

    @property
    def keep_from(self) -> int | None:
        """The earliest sample a turn may still need (None: only the prefix padding)."""
        if self.speaking or self._run_start is not None:
            return max(
                self.floor, (self._run_start or 0) - self._samples(self.settings.prefix_padding_ms)
            )
        return None

    def feed(self, probabilities: np.ndarray, position: int) -> list[SpeechStarted | SpeechStopped]:
        """Edges found in consecutive windows starting at sample ``position``."""
        s = self.settings
        low = max(s.threshold - HYSTERESIS, 0.01)
        events: list[SpeechStarted | SpeechStopped] = []
        for i, p in enumerate(probabilities):
            at = position + i * self.window
            if at < self.floor:
                continue
            if not self.speaking:
                if p < s.threshold:
                    self._run_start = None
                    continue
                if self._run_start is None:
                    self._run_start = at
                if at + self.window - self._run_start >= self._samples(s.min_speech_ms):
                    self.speaking = True
                    self._silence_start = None
                    start = max(self.floor, self._run_start - self._samples(s.prefix_padding_ms))
                    events.append(SpeechStarted(start, self._run_start))
            elif p >= s.threshold:
                self._silence_start = None
            elif p < low:
                if self._silence_start is None:
                    self._silence_start = at
                if at + self.window - self._silence_start >= self._samples(s.silence_duration_ms):
                    events.append(SpeechStopped(at + self.window, self._silence_start))
                    self.speaking = False
                    self._run_start = None
                    self.floor = at + self.window
        return events

    def _samples(self, ms: int) -> int:
        return ms * self.rate // 1000
