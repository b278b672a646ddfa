"""Decoding once at the router: formats, channels, rates, limits and bad files."""

from __future__ import annotations

import io

import numpy as np
import pytest
import soundfile as sf
from sonaray_client.types import AUDIO_FORMATS, SPEECH_FORMATS

from deployments.audio import ENCODINGS, decode_audio, encode_audio, output_rate
from deployments.errors import InvalidAudio, InvalidRequest, PayloadTooLarge

RATE = 44100


def tone(seconds: float = 1.0, rate: int = RATE) -> np.ndarray:
    t = np.arange(int(seconds * rate), dtype=np.float32) / rate
    return (0.3 * np.sin(2 * np.pi * 440 * t)).astype(np.float32)


@pytest.mark.parametrize("fmt", [f for f in AUDIO_FORMATS if f != "pcm"])
@pytest.mark.parametrize("rate", [RATE, 22050])
def test_every_encoding_decodes_back_to_the_same_tone(fmt, rate):
    data, media_type = encode_audio(tone(rate=rate), rate, fmt)
    assert media_type == ENCODINGS[fmt].media_type
    decoded = decode_audio(data, target_rate=16000)
    # opus takes 8/12/16/24/48 kHz only: 22050 Hz is written at 24 kHz
    assert decoded.source_rate == output_rate(fmt, rate) >= rate
    assert decoded.sampling_rate == 16000
    assert decoded.audio.dtype == np.float32 and decoded.audio.ndim == 1
    assert decoded.duration == pytest.approx(1.0, abs=0.08)  # mp3/aac add encoder padding
    spectrum = np.abs(np.fft.rfft(decoded.audio))
    assert np.argmax(spectrum) * 16000 / decoded.audio.size == pytest.approx(440, abs=5)


def test_pcm_is_raw_16_bit_at_the_asked_rate():
    data, media_type = encode_audio(tone(rate=22050), 22050, "pcm", rate=24000)
    assert media_type == "audio/pcm" and len(data) == 2 * 24000
    samples = np.frombuffer(data, "<i2") / 32767
    assert np.abs(samples).max() == pytest.approx(0.3, abs=0.01)


def test_one_encoding_per_wire_format():
    assert set(ENCODINGS) == set(AUDIO_FORMATS) >= set(SPEECH_FORMATS)


def test_stereo_is_mixed_down_and_resampled():
    left, right = tone(), np.zeros(RATE, np.float32)
    buf = io.BytesIO()
    sf.write(buf, np.stack([left, right], axis=1), RATE, format="WAV")
    decoded = decode_audio(buf.getvalue(), target_rate=16000)
    assert decoded.source_channels == 2
    assert np.abs(decoded.audio).max() == pytest.approx(0.15, abs=0.01)


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"", "empty"),
        (b"RIFF\x24\x00\x00\x00WAVEfmt ", "could not decode"),
        (b"this is a text file, renamed to speech.wav\n" * 20, "could not decode"),
    ],
)
def test_bad_files_raise_invalid_audio(data, message):
    with pytest.raises(InvalidAudio, match=message):
        decode_audio(data)


def test_over_long_audio_is_refused_before_it_is_decoded():
    buf = io.BytesIO()
    sf.write(buf, np.zeros(8000 * 120, np.float32), 8000, format="FLAC")
    with pytest.raises(PayloadTooLarge, match="limit is 60s"):
        decode_audio(buf.getvalue(), target_rate=16000, max_seconds=60)


def test_unknown_response_format_names_the_supported_ones():
    with pytest.raises(InvalidRequest, match="wav, flac"):
        encode_audio(tone(), RATE, "aiff")
