"""Decode, validate, resample and encode audio: once at the router, never in engines.

soundfile (libsndfile) reads WAV/FLAC/OGG/MP3 without a subprocess; PyAV (FFmpeg's
libraries, in-process) takes what libsndfile cannot (m4a/aac, webm/opus, mp4). soxr
resamples (high quality, faster than torchaudio or scipy here).
"""

from __future__ import annotations

import contextlib
import io
from dataclasses import dataclass

import numpy as np
import soundfile as sf
import soxr

from deployments.errors import InvalidAudio, InvalidRequest, PayloadTooLarge

ENCODINGS = {
    "wav": "audio/wav",
    "flac": "audio/flac",
    "pcm": "audio/pcm",
    "mp3": "audio/mpeg",
    "ogg": "audio/ogg",
}


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


def encode_audio(audio: np.ndarray, sampling_rate: int, fmt: str = "wav") -> tuple[bytes, str]:
    """Encode mono float32 audio; returns (bytes, media type)."""
    if fmt not in ENCODINGS:
        raise InvalidRequest(
            f"unsupported response_format {fmt!r}; choose one of {', '.join(ENCODINGS)}",
            param="response_format",
        )
    clipped = np.clip(np.asarray(audio, dtype=np.float32), -1.0, 1.0)
    pcm16 = (clipped * 32767.0).astype("<i2")
    if fmt == "pcm":
        return pcm16.tobytes(), ENCODINGS[fmt]
    if fmt == "mp3":
        import lameenc

        encoder = lameenc.Encoder()
        encoder.set_bit_rate(64)
        encoder.set_in_sample_rate(sampling_rate)
        encoder.set_channels(1)
        encoder.set_quality(5)
        return bytes(encoder.encode(pcm16.tobytes()) + encoder.flush()), ENCODINGS[fmt]
    buf = io.BytesIO()
    if fmt == "ogg":
        sf.write(buf, clipped, sampling_rate, format="OGG", subtype="VORBIS")
    else:
        sf.write(buf, pcm16, sampling_rate, format=fmt.upper(), subtype="PCM_16")
    return buf.getvalue(), ENCODINGS[fmt]
