"""Decode, validate, resample and encode audio: once at the router, never in engines.

soundfile (libsndfile) reads WAV/FLAC/OGG/MP3 without a subprocess; PyAV (FFmpeg's
libraries, in-process) takes what libsndfile cannot (m4a/aac, webm/opus, mp4). soxr
resamples (high quality, faster than torchaudio or scipy here).
"""

from __future__ import annotations

import contextlib
import io
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import soundfile as sf
import soxr
from sonaray_client.types import AudioFormat

from deployments.errors import InvalidAudio, InvalidRequest, PayloadTooLarge


@dataclass(frozen=True)
class DecodedAudio:
    """Mono float32 samples and where they came from."""

    audio: np.ndarray
    sampling_rate: int
    source_rate: int
    source_channels: int

    @property
    def duration(self) -> float:
        return len(self.audio) / self.sampling_rate


def _decode_soundfile(data: bytes, max_seconds: float | None) -> tuple[np.ndarray, int, int]:
    with sf.SoundFile(io.BytesIO(data)) as f:
        # Read at most one frame past the limit: memory stays bounded whatever the header.
        frames = -1 if max_seconds is None else int(max_seconds * f.samplerate) + 1
        samples = f.read(frames=frames, dtype="float32", always_2d=True)
        rate = f.samplerate
    mono = samples.mean(axis=1) if samples.shape[1] > 1 else samples[:, 0]
    return mono, rate, samples.shape[1]


def _decode_av(data: bytes, max_seconds: float | None) -> tuple[np.ndarray, int, int]:
    import av

    with av.open(io.BytesIO(data), mode="r") as container:
        if not container.streams.audio:
            raise InvalidAudio("the file has no audio stream", param="file")
        stream = container.streams.audio[0]
        resampler = av.AudioResampler(format="flt", layout="mono", rate=stream.rate)
        chunks = []
        decoded = 0
        for frame in container.decode(stream):
            for out in resampler.resample(frame):
                chunks.append(out.to_ndarray().reshape(-1))
                decoded += chunks[-1].size
            # Stop as soon as the limit is passed: no need to decode the rest to refuse it.
            _check_seconds(decoded / stream.rate, max_seconds)
        for out in resampler.resample(None):
            chunks.append(out.to_ndarray().reshape(-1))
        channels, rate = stream.channels, stream.rate
    mono = np.concatenate(chunks).astype(np.float32) if chunks else np.zeros(0, np.float32)
    return mono, rate, channels


def _check_seconds(seconds: float, max_seconds: float | None) -> None:
    if max_seconds is not None and seconds > max_seconds:
        raise PayloadTooLarge(
            f"audio is {seconds:.1f}s long; the limit is {max_seconds:.0f}s", param="file"
        )


def decode_audio(
    data: bytes, *, target_rate: int | None = None, max_seconds: float | None = None
) -> DecodedAudio:
    """Decode any common audio format to mono float32, resampled to ``target_rate``.

    Over-long audio is refused from the header where the format has one, and decoding
    stops one frame past ``max_seconds`` whatever the header says: a small compressed
    file can hide hours of samples, and memory stays bounded by the limit.
    """
    if not data:
        raise InvalidAudio("the audio file is empty (0 bytes)", param="file")
    with contextlib.suppress(sf.LibsndfileError, RuntimeError, TypeError):  # not libsndfile's
        _check_seconds(sf.info(io.BytesIO(data)).duration, max_seconds)
    try:
        mono, rate, channels = _decode_soundfile(data, max_seconds)
    except (sf.LibsndfileError, RuntimeError, TypeError):
        try:
            mono, rate, channels = _decode_av(data, max_seconds)
        except (InvalidAudio, PayloadTooLarge):
            raise
        except Exception as exc:
            raise InvalidAudio(
                "could not decode the audio: not a supported audio format or the file is corrupt",
                param="file",
            ) from exc
    if mono.size == 0:
        raise InvalidAudio("the audio file holds no samples", param="file")
    _check_seconds(mono.size / rate, max_seconds)
    if not np.all(np.isfinite(mono)):
        raise InvalidAudio("the audio holds NaN or infinite samples", param="file")
    out_rate = target_rate or rate
    return DecodedAudio(resample(mono, rate, out_rate), out_rate, rate, channels)


def resample(audio: np.ndarray, from_rate: int, to_rate: int) -> np.ndarray:
    """Resample mono float32 audio (a no-op when the rates match)."""
    audio = np.ascontiguousarray(audio, dtype=np.float32)
    if from_rate == to_rate:
        return audio
    return soxr.resample(audio, from_rate, to_rate, quality="HQ").astype(np.float32, copy=False)


def _pcm16(audio: np.ndarray) -> np.ndarray:
    return (audio * 32767.0).astype("<i2")


def _write_mp3(audio: np.ndarray, rate: int) -> bytes:
    import lameenc

    encoder = lameenc.Encoder()
    encoder.set_bit_rate(64)
    encoder.set_in_sample_rate(rate)
    encoder.set_channels(1)
    encoder.set_quality(5)
    return bytes(encoder.encode(_pcm16(audio).tobytes()) + encoder.flush())


def _write_soundfile(fmt: str, subtype: str, pcm16: bool) -> Callable[[np.ndarray, int], bytes]:
    def write(audio: np.ndarray, rate: int) -> bytes:
        buf = io.BytesIO()
        sf.write(buf, _pcm16(audio) if pcm16 else audio, rate, format=fmt, subtype=subtype)
        return buf.getvalue()

    return write


def _write_aac(audio: np.ndarray, rate: int) -> bytes:
    """AAC-LC in ADTS frames (what OpenAI's ``aac`` is), by FFmpeg's encoder through PyAV."""
    import av

    buf = io.BytesIO()
    with av.open(buf, mode="w", format="adts") as container:
        stream = container.add_stream("aac", rate=rate, layout="mono")
        stream.bit_rate = 64000
        frame = av.AudioFrame.from_ndarray(audio.reshape(1, -1), format="flt", layout="mono")
        frame.sample_rate = rate
        for packet in [*stream.encode(frame), *stream.encode(None)]:
            container.mux(packet)
    return buf.getvalue()


@dataclass(frozen=True)
class Encoding:
    """How one ``response_format`` is written; ``rates`` are the only rates its codec takes."""

    media_type: str
    write: Callable[[np.ndarray, int], bytes]
    rates: tuple[int, ...] | None = None


# The one table of output formats every route encodes with (names in ``AUDIO_FORMATS``).
ENCODINGS: dict[AudioFormat, Encoding] = {
    "wav": Encoding("audio/wav", _write_soundfile("WAV", "PCM_16", pcm16=True)),
    "flac": Encoding("audio/flac", _write_soundfile("FLAC", "PCM_16", pcm16=True)),
    "pcm": Encoding("audio/pcm", lambda audio, _rate: _pcm16(audio).tobytes()),
    "mp3": Encoding("audio/mpeg", _write_mp3),
    "ogg": Encoding("audio/ogg", _write_soundfile("OGG", "VORBIS", pcm16=False)),
    # libopus encodes at these rates only
    "opus": Encoding(
        "audio/ogg",
        _write_soundfile("OGG", "OPUS", pcm16=False),
        (8000, 12000, 16000, 24000, 48000),
    ),
    "aac": Encoding(
        "audio/aac",
        _write_aac,
        (7350, 8000, 11025, 12000, 16000, 22050, 24000, 32000, 44100, 48000, 64000, 88200, 96000),
    ),
}


def output_rate(fmt: str, sampling_rate: int) -> int:
    """The rate ``fmt`` is written at: the audio's own, or the codec's next rate up."""
    rates = ENCODINGS[fmt].rates
    if rates is None or sampling_rate in rates:
        return sampling_rate
    return next((r for r in rates if r >= sampling_rate), rates[-1])


def encode_audio(
    audio: np.ndarray, sampling_rate: int, fmt: str = "wav", *, rate: int | None = None
) -> tuple[bytes, str]:
    """Encode mono float32 audio as ``fmt``; returns (bytes, media type).

    ``rate`` asks for a sampling rate (OpenAI's pcm is 24 kHz); a codec that cannot
    take the rate gets its next one up (see ``output_rate``).
    """
    if fmt not in ENCODINGS:
        raise InvalidRequest(
            f"unsupported response_format {fmt!r}; choose one of {', '.join(ENCODINGS)}",
            param="response_format",
        )
    out_rate = output_rate(fmt, rate or sampling_rate)
    clipped = np.clip(resample(audio, sampling_rate, out_rate), -1.0, 1.0)
    encoding = ENCODINGS[fmt]
    return encoding.write(clipped, out_rate), encoding.media_type
