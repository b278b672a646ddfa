"""The session's input audio buffer: pcm16 at the client's rate in, float32 at the VAD's
rate kept, addressed by sample position since the session started.

Resampling is one streaming soxr resampler, so block edges leave no clicks; a rate change
(``session.update``) starts a new one. Only what a turn may still need is kept.
"""

from __future__ import annotations

import numpy as np
import soxr

FLOAT = np.dtype(np.float32).itemsize


class InputAudio:
    def __init__(self, input_rate: int, rate: int):
        self.rate = rate
        self.base = 0  # position of the first sample kept
        self._data = bytearray()
        self.set_input_rate(input_rate)

    @property
    def total(self) -> int:
        """Samples appended since the session started (at ``rate``)."""
        return self.base + len(self._data) // FLOAT

    def set_input_rate(self, input_rate: int) -> None:
        self.input_rate = input_rate
        self._resampler = (
            None
            if input_rate == self.rate
            else soxr.ResampleStream(input_rate, self.rate, 1, dtype="float32")
        )

    def append(self, samples: np.ndarray) -> None:
        if self._resampler is not None:
            samples = self._resampler.resample_chunk(samples)
        self._data += np.ascontiguousarray(samples, dtype=np.float32).tobytes()

    def flush(self) -> None:
        """Take in what the resampler still holds (a commit wants every sample sent)."""
        if self._resampler is not None:
            self._data += self._resampler.resample_chunk(
                np.zeros(0, np.float32), last=True
            ).tobytes()
            self.set_input_rate(self.input_rate)

    def seconds(self, start: int, end: int) -> float:
        return (end - start) / self.rate

    def slice(self, start: int, end: int) -> np.ndarray:
        start, end = max(start, self.base), min(end, self.total)
        view = self._data[(start - self.base) * FLOAT : (end - self.base) * FLOAT]
        return np.frombuffer(bytes(view), dtype=np.float32)

    def drop_before(self, position: int) -> None:
        cut = min(max(position - self.base, 0), len(self._data) // FLOAT)
        del self._data[: cut * FLOAT]
        self.base += cut
