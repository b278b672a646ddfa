"""16-bit mono PCM for live sessions: from arrays, bytes or files, at the session's rate.

Plain Python (``array``, ``wave``): the SDK installs without numpy, and a live session's
audio comes in small chunks, where a resampler's per-chunk state matters more than speed.
"""

from __future__ import annotations

import sys
import wave
from array import array
from pathlib import Path
from typing import Any

from sonaray_client.audio import array_pcm16


def pcm16(audio: Any) -> array:
    """Samples as a mono int16 ``array``: pcm16 bytes, or a float/int16 array (channels
    averaged)."""
    if isinstance(audio, bytes | bytearray | memoryview):
        data, channels = bytes(audio), 1
    elif hasattr(audio, "dtype") and hasattr(audio, "astype"):
        channels, data = array_pcm16(audio)
    else:
        raise TypeError(
            f"cannot send {type(audio).__name__} as audio: pass pcm16 bytes or an array"
        )
    if len(data) % 2:
        raise ValueError("pcm16 audio has an even number of bytes, got an odd number")
    samples = array("h", data)
    if sys.byteorder == "big":
        samples.byteswap()
    return _downmix(samples, channels)


def to_bytes(samples: array) -> bytes:
    """Little-endian bytes of int16 samples (the wire's pcm16)."""
    if sys.byteorder == "big":
        samples = array("h", samples)
        samples.byteswap()
    return samples.tobytes()


class Resampler:
    """pcm16 from one rate to another, chunk after chunk, by linear interpolation.

    The position between chunks is kept, so a stream cut into chunks resamples as it would
    whole. No low-pass filter: downsampling aliases above the new Nyquist rate, which
    speech (little energy above 8 kHz) and the server's recognizer tolerate.
    """

    def __init__(self, source_rate: int, target_rate: int) -> None:
        self.step = source_rate / target_rate
        self._position = 0.0  # of the next output sample, from the last input kept
        self._last: int | None = None

    def __call__(self, samples: array) -> array:
        if self.step == 1.0:
            return samples
        held = samples if self._last is None else array("h", [self._last]) + samples
        out = array("h")
        position, end = self._position, len(held) - 1
        while position < end:
            index = int(position)
            frac = position - index
            out.append(round(held[index] * (1.0 - frac) + held[index + 1] * frac))
            position += self.step
        if held:
            self._position, self._last = position - end, held[-1]
        return out


def read_pcm16(path: Path) -> tuple[array, int]:
    """A file's audio as mono int16 samples and its rate: WAV directly, other formats
    through ``soundfile`` when it is installed."""
    with path.open("rb") as file:
        is_wav = file.read(4) == b"RIFF"
    if is_wav:
        with wave.open(str(path), "rb") as wav:
            if wav.getsampwidth() != 2:
                raise ValueError(f"{path}: only 16-bit PCM WAV is read without soundfile")
            samples = array("h", wav.readframes(wav.getnframes()))
            if sys.byteorder == "big":
                samples.byteswap()
            return _downmix(samples, wav.getnchannels()), wav.getframerate()
    try:
        import soundfile
    except ImportError:
        raise ValueError(
            f"{path}: not a WAV file; install soundfile (pip install soundfile) to read it"
        ) from None
    data, rate = soundfile.read(str(path), dtype="int16", always_2d=True)
    return pcm16(data), int(rate)


def _downmix(samples: array, channels: int) -> array:
    if channels == 1:
        return samples
    frames = len(samples) // channels
    return array(
        "h",
        (sum(samples[i * channels : (i + 1) * channels]) // channels for i in range(frames)),
    )
