"""Turning what a caller holds (a path, bytes, a file, an array) into an upload.

Arrays are handled duck-typed (``dtype``/``shape``/``astype``), so numpy is used when the
caller has it but never imported here: the SDK installs without it.
"""

from __future__ import annotations

import io
import mimetypes
import os
import struct
import sys
import wave
from array import array
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any, Union

# Compressed audio's length is guessed from its size at a typical 128 kbit/s.
COMPRESSED_BYTES_PER_S = 16_000
# Enough of a file to hold its WAV or FLAC header.
HEADER_BYTES = 4096

# (array, sampling_rate): a float array in [-1, 1] or int16, shaped (frames,) or
# (frames, channels); a plain sequence of floats is taken as mono.
ArrayAudio = tuple[Any, int]
AudioInput = Union[str, "os.PathLike[str]", bytes, bytearray, memoryview, IO[bytes], ArrayAudio]

_MAGIC = (
    (b"RIFF", "audio/wav"),
    (b"fLaC", "audio/flac"),
    (b"OggS", "audio/ogg"),
    (b"ID3", "audio/mpeg"),
    (b"\xff\xfb", "audio/mpeg"),
    (b"\xff\xf3", "audio/mpeg"),
    (b"\x1aE\xdf\xa3", "audio/webm"),
)


@dataclass(frozen=True)
class AudioUpload:
    """One audio file ready to go into a multipart body."""

    filename: str
    content: bytes
    content_type: str

    def as_file(self) -> tuple[str, bytes, str]:
        return (self.filename, self.content, self.content_type)

    @property
    def duration_s(self) -> float:
        return estimate_duration_s(self.content[:HEADER_BYTES], len(self.content))


def to_upload(audio: AudioInput) -> AudioUpload:
    """Read or encode ``audio`` once, so a retried request resends the same bytes."""
    if isinstance(audio, (str, os.PathLike)):
        path = Path(audio)
        content = path.read_bytes()
        # The bytes are surer than the suffix, and mimetypes' names vary by platform.
        content_type = sniff_content_type(content)
        if content_type == "application/octet-stream":
            content_type = mimetypes.guess_type(path.name)[0] or content_type
        return AudioUpload(path.name, content, content_type)
    if isinstance(audio, (bytes, bytearray, memoryview)):
        content = bytes(audio)
        return AudioUpload("audio", content, sniff_content_type(content))
    if isinstance(audio, tuple):
        samples, sampling_rate = audio
        return AudioUpload("audio.wav", encode_wav(samples, int(sampling_rate)), "audio/wav")
    if hasattr(audio, "read"):
        content = audio.read()
        if not isinstance(content, bytes):
            raise TypeError("audio file objects must be opened in binary mode ('rb')")
        name = Path(str(getattr(audio, "name", "audio"))).name
        return AudioUpload(name, content, sniff_content_type(content))
    raise TypeError(
        f"unsupported audio input {type(audio).__name__}: pass a path, bytes, a binary file "
        "or an (array, sampling_rate) tuple"
    )


def sniff_content_type(content: bytes) -> str:
    """The audio MIME type told by the first bytes; octet-stream when unknown."""
    for magic, content_type in _MAGIC:
        if content.startswith(magic):
            return content_type
    return "application/octet-stream"


def estimate_duration_s(head: bytes, size: int) -> float:
    """Seconds of audio in a file of ``size`` bytes starting with ``head``.

    Exact for WAV and FLAC (read from the header, no decoding); otherwise a guess from the
    size. Timeouts and progress bars need a length before the server has decoded anything.
    """
    exact = _wav_seconds(head, size) if head.startswith(b"RIFF") else None
    if exact is None and head.startswith(b"fLaC"):
        exact = _flac_seconds(head)
    return exact if exact is not None else size / COMPRESSED_BYTES_PER_S


def _wav_seconds(head: bytes, size: int) -> float | None:
    byte_rate, pos = None, 12
    while pos + 8 <= len(head):
        chunk, length = head[pos : pos + 4], struct.unpack_from("<I", head, pos + 4)[0]
        if chunk == b"fmt " and pos + 16 <= len(head):
            byte_rate = struct.unpack_from("<I", head, pos + 16)[0]
        elif chunk == b"data" and byte_rate:
            # A streamed WAV may leave the length unset (0 or 0xFFFFFFFF): the rest is data.
            data = min(length, size - pos - 8) if 0 < length < 0xFFFFFFFF else size - pos - 8
            return max(0, data) / byte_rate
        pos += 8 + length + (length & 1)
    return None


def _flac_seconds(head: bytes) -> float | None:
    # STREAMINFO follows the 4-byte magic and its 4-byte block header: after 10 bytes of
    # block and frame sizes come 20 bits of sampling rate, 3 + 5 bits of channels and
    # bit depth, and 36 bits of total samples (0 when the encoder did not know).
    if len(head) < 26:
        return None
    packed = int.from_bytes(head[18:26], "big")
    rate, samples = packed >> 44, packed & (2**36 - 1)
    return samples / rate if rate and samples else None


def encode_wav(samples: Any, sampling_rate: int) -> bytes:
    """16-bit PCM WAV bytes of a float [-1, 1] or int16 array; see ``ArrayAudio``."""
    if sampling_rate <= 0:
        raise ValueError(f"sampling_rate must be positive, got {sampling_rate}")
    if hasattr(samples, "detach"):  # a torch tensor: hand over to its numpy view
        samples = samples.detach().cpu().numpy()
    if hasattr(samples, "dtype") and hasattr(samples, "astype"):
        channels, pcm = array_pcm16(samples)
    elif isinstance(samples, Sequence):
        channels, pcm = 1, _sequence_pcm(samples)
    else:
        raise TypeError(f"cannot encode {type(samples).__name__} as audio")
    buffer = io.BytesIO()
    with wave.open(buffer, "wb") as out:
        out.setnchannels(channels)
        out.setsampwidth(2)
        out.setframerate(sampling_rate)
        out.writeframes(pcm)
    return buffer.getvalue()


def array_pcm16(samples: Any) -> tuple[int, bytes]:
    """(channels, interleaved little-endian int16 bytes) of a float or int16 array."""
    if samples.ndim == 2:
        # soundfile's layout is (frames, channels); a clip has more frames than
        # channels, so a wider-than-tall array is torchaudio's (channels, frames).
        if samples.shape[1] > samples.shape[0]:
            samples = samples.T
        channels = int(samples.shape[1])
    elif samples.ndim == 1:
        channels = 1
    else:
        raise ValueError(f"audio arrays must be 1-D or 2-D, got shape {tuple(samples.shape)}")
    if samples.dtype.kind == "f":
        samples = (samples.clip(-1.0, 1.0) * 32767.0).round()
    elif str(samples.dtype) != "int16":
        raise TypeError(f"audio arrays must be float or int16, got {samples.dtype}")
    # tobytes() writes C order, which for (frames, channels) is interleaved frames.
    return channels, samples.astype("<i2").tobytes()


def _sequence_pcm(samples: Sequence[float]) -> bytes:
    pcm = array("h", (round(max(-1.0, min(1.0, float(x))) * 32767) for x in samples))
    if sys.byteorder == "big":  # WAV samples are little-endian
        pcm.byteswap()
    return pcm.tobytes()
