"""Encode audio that arrives in pieces (sentences of speech): bytes out as each comes in.

Every encoder keeps its state between pieces, so the concatenated output is one valid
file or stream: WAV gets a header with unknown sizes (0xFFFFFFFF, as OpenAI streams it
and browsers play it), MP3 frames come from lame's incremental encoder, Ogg (Vorbis or
Opus) pages from libsndfile writing to a sink that is drained after every piece, and a
rate change goes through soxr's streaming resampler so no seam is heard between pieces.
FLAC and AAC are not streamed (their headers are finished last).
"""

from __future__ import annotations

import struct
from typing import Protocol

import numpy as np
import soundfile as sf
import soxr

from deployments.audio import ENCODINGS, output_rate
from deployments.errors import InvalidRequest

UNKNOWN_SIZE = 0xFFFFFFFF
# The formats that stream (flac and aac need the whole file: their headers are written last).
STREAM_FORMATS = ("pcm", "wav", "mp3", "ogg", "opus")


class StreamEncoder(Protocol):
    """Mono float32 pieces in, encoded bytes out; ``finish`` flushes what is buffered."""

    media_type: str

    def encode(self, audio: np.ndarray) -> bytes: ...

    def finish(self) -> bytes: ...


def pcm16(audio: np.ndarray) -> bytes:
    """Float samples as 16-bit little-endian PCM, clipped to [-1, 1]."""
    return (np.clip(np.asarray(audio, np.float32), -1.0, 1.0) * 32767.0).astype("<i2").tobytes()


def wav_stream_header(rate: int) -> bytes:
    """A 16-bit mono WAV header whose RIFF and data sizes say "unknown" (streamed)."""
    fmt = struct.pack("<HHIIHH", 1, 1, rate, rate * 2, 2, 16)
    return (
        b"RIFF"
        + struct.pack("<I", UNKNOWN_SIZE)
        + b"WAVEfmt "
        + struct.pack("<I", len(fmt))
        + fmt
        + b"data"
        + struct.pack("<I", UNKNOWN_SIZE)
    )


class PcmStream:
    media_type = ENCODINGS["pcm"].media_type

    def __init__(self, header: bytes = b""):
        self._header = header

    def encode(self, audio: np.ndarray) -> bytes:
        head, self._header = self._header, b""
        return head + pcm16(audio)

    def finish(self) -> bytes:
        head, self._header = self._header, b""
        return head


class WavStream(PcmStream):
    media_type = ENCODINGS["wav"].media_type

    def __init__(self, rate: int):
        super().__init__(wav_stream_header(rate))


class Mp3Stream:
    media_type = ENCODINGS["mp3"].media_type

    def __init__(self, rate: int):
        import lameenc

        self._lame = lameenc.Encoder()
        self._lame.set_bit_rate(64)
        self._lame.set_in_sample_rate(rate)
        self._lame.set_channels(1)
        self._lame.set_quality(5)

    def encode(self, audio: np.ndarray) -> bytes:
        return bytes(self._lame.encode(pcm16(audio)))

    def finish(self) -> bytes:
        return bytes(self._lame.flush())


class _Sink:
    """A write-only file for libsndfile: it only seeks where it already is."""

    def __init__(self):
        self._parts: list[bytes] = []
        self._position = 0

    def write(self, data: bytes) -> int:
        self._parts.append(bytes(data))
        self._position += len(data)
        return len(data)

    def tell(self) -> int:
        return self._position

    def seek(self, offset: int, whence: int = 0) -> int:
        target = offset if whence == 0 else self._position + offset
        if target != self._position:
            raise OSError("a streamed file cannot seek")
        return self._position

    def read(self, size: int = -1) -> bytes:
        return b""

    def drain(self) -> bytes:
        out, self._parts = b"".join(self._parts), []
        return out


class OggStream:
    media_type = ENCODINGS["ogg"].media_type

    def __init__(self, rate: int, subtype: str = "VORBIS"):
        self._sink = _Sink()
        self._file = sf.SoundFile(
            self._sink, "w", samplerate=rate, channels=1, format="OGG", subtype=subtype
        )

    def encode(self, audio: np.ndarray) -> bytes:
        self._file.write(np.clip(np.asarray(audio, np.float32), -1.0, 1.0))
        return self._sink.drain()

    def finish(self) -> bytes:
        self._file.close()
        return self._sink.drain()


class Resampled:
    """Another encoder fed through soxr's streaming resampler (e.g. OpenAI's 24 kHz pcm)."""

    def __init__(self, inner: StreamEncoder, from_rate: int, to_rate: int):
        self.media_type = inner.media_type
        self._inner = inner
        self._soxr = soxr.ResampleStream(from_rate, to_rate, 1, dtype="float32", quality="HQ")

    def encode(self, audio: np.ndarray) -> bytes:
        return self._inner.encode(self._soxr.resample_chunk(np.asarray(audio, np.float32)))

    def finish(self) -> bytes:
        tail = self._soxr.resample_chunk(np.zeros(0, np.float32), last=True)
        return self._inner.encode(tail) + self._inner.finish()


def check_stream_format(fmt: str) -> str:
    """The media type of a streamable ``fmt``, or a 400 that lists them."""
    if fmt not in STREAM_FORMATS:
        raise InvalidRequest(
            f"response_format {fmt!r} cannot be streamed; stream one of "
            f"{', '.join(STREAM_FORMATS)}, or ask without streaming",
            param="response_format",
        )
    return ENCODINGS[fmt].media_type


def stream_encoder(fmt: str, rate: int, out_rate: int | None = None) -> StreamEncoder:
    """The incremental encoder of ``fmt`` for audio at ``rate``, resampled to ``out_rate``.

    A codec that cannot take the rate gets its next one up, as in ``encode_audio``.
    """
    target = output_rate(fmt, out_rate or rate) if fmt in ENCODINGS else rate
    if fmt == "pcm":
        encoder: StreamEncoder = PcmStream()
    elif fmt == "wav":
        encoder = WavStream(target)
    elif fmt == "mp3":
        encoder = Mp3Stream(target)
    elif fmt in ("ogg", "opus"):
        encoder = OggStream(target, "OPUS" if fmt == "opus" else "VORBIS")
    else:
        check_stream_format(fmt)
    return encoder if target == rate else Resampled(encoder, rate, target)
