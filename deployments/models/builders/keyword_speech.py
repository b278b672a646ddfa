"""Labelled keyword clips synthesized offline: espeak-ng voices and the Piper voice, augmented.

Speech Commands v2's twelve labels: ten keywords, ``_unknown_`` (other words, near misses
first) and ``_silence_`` (noise alone). Every clip is 16 kHz float32 of at most
``CLIP_SECONDS``, shaped like what the ``segment-classify`` pipeline hands the model: a
word with a little margin, or the word inside a full window of background. Voices are
split by name into the training and held-out sets, so the held-out accuracy is measured
on voices training never heard. Everything is drawn from seeded generators, and Piper is
run noise-free (its noise is drawn inside the ONNX graph, where no seed reaches), so a
build gives the same clips every time.
"""

from __future__ import annotations

import io
import shutil
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import soundfile
import soxr

from deployments.models.store import BuildError

KEYWORDS = ("yes", "no", "up", "down", "left", "right", "on", "off", "stop", "go")
UNKNOWN, SILENCE = "_unknown_", "_silence_"
LABELS = (*KEYWORDS, UNKNOWN, SILENCE)
# Near misses of each keyword first, then Speech Commands' own auxiliary words.
UNKNOWN_WORDS = (
    "yet", "yeah", "yell", "less", "know", "now", "note", "snow", "cup", "pup", "us",
    "town", "dawn", "done", "lift", "loft", "leaf", "write", "ride", "light", "bright",
    "own", "in", "often", "of", "awful", "stock", "top", "shop", "goal", "gold", "low",
    "bed", "bird", "cat", "dog", "happy", "house", "marvin", "sheila", "tree", "wow",
    "zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine",
    "learn", "follow", "forward", "backward", "visual",
)  # fmt: skip
RATE = 16000
CLIP_SECONDS = 1

ESPEAK_VOICES = ("en-us", "en-gb", "en-gb-scotland", "en-gb-x-rp", "en-gb-x-gbclan", "en-029")
ESPEAK_VARIANTS = (
    "m1", "m2", "m3", "m5", "m6", "m7", "f1", "f2", "f4", "f5", "klatt", "klatt2",
    "klatt4", "adam", "Alex", "aunty", "boris", "david", "ed", "edward", "iven", "john",
    "linda", "max", "michel", "paul", "quincy", "rob", "robert", "steph", "zac", "Mike",
)  # fmt: skip
HELD_OUT_ESPEAK_VOICES = ("en-us-nyc", "en-gb-x-gbcwmd")
HELD_OUT_ESPEAK_VARIANTS = ("m4", "f3", "klatt3", "Andy", "belinda", "benjamin")
PIPER_SPEEDS = (0.75, 0.9, 1.0, 1.15, 1.35)
HELD_OUT_PIPER_SPEEDS = (1.25,)


@dataclass(frozen=True)
class Voice:
    """One way of saying words: an espeak-ng voice+variant at a rate and pitch, or Piper."""

    engine: str  # espeak | piper
    name: str  # espeak "voice+variant"; Piper: the store model
    speed: float = 1.0  # espeak: words per minute / 175
    pitch: int = 50

    def describe(self) -> str:
        return f"{self.engine}:{self.name}@{self.speed:g}/{self.pitch}"


def espeak_binary() -> str:
    """The espeak-ng executable; a BuildError naming the Debian package if it is absent."""
    found = shutil.which("espeak-ng")
    if found is None:
        raise BuildError(
            "the espeak-ng program is not installed; it speaks the keyword spotter's training "
            "words (Debian/Ubuntu: apt-get install -y espeak-ng; scripts/setup does this as root)"
        )
    return found


def voice_sets(seed: int, espeak_voices: int = 110) -> tuple[list[Voice], list[Voice]]:
    """(training voices, held-out voices): disjoint espeak voices/variants and Piper speeds."""
    rng = np.random.default_rng(seed)

    def espeak(voices: tuple[str, ...], variants: tuple[str, ...], count: int) -> list[Voice]:
        return [
            Voice(
                "espeak",
                f"{rng.choice(voices)}+{rng.choice(variants)}",
                speed=float(rng.uniform(0.7, 1.25)),
                pitch=int(rng.integers(25, 76)),
            )
            for _ in range(count)
        ]

    train = espeak(ESPEAK_VOICES, ESPEAK_VARIANTS, espeak_voices)
    train += [Voice("piper", "piper-joe-medium", speed=s) for s in PIPER_SPEEDS]
    held_out = espeak(ESPEAK_VOICES + HELD_OUT_ESPEAK_VOICES, HELD_OUT_ESPEAK_VARIANTS, 12)
    held_out += espeak(HELD_OUT_ESPEAK_VOICES, ESPEAK_VARIANTS, 6)
    held_out += [Voice("piper", "piper-joe-medium", speed=s) for s in HELD_OUT_PIPER_SPEEDS]
    return train, held_out


def say_espeak(voice: Voice, word: str) -> np.ndarray:
    """``word`` spoken by an espeak-ng voice, 16 kHz float32."""
    wav = subprocess.run(
        [
            espeak_binary(),
            "-v",
            voice.name,
            "-s",
            str(round(175 * voice.speed)),
            "-p",
            str(voice.pitch),
            "--stdout",
            word,
        ],
        check=True,
        capture_output=True,
    ).stdout
    audio, rate = soundfile.read(io.BytesIO(wav), dtype="float32")
    return soxr.resample(audio, rate, RATE).astype(np.float32)


def say_piper(store_dir: Path, speeds: list[float], words: list[str]) -> list[list[np.ndarray]]:
    """``words`` spoken by the noise-free Piper voice at each of ``speeds``, 16 kHz float32."""
    from sonaray_client.types import SpeechOptions

    from deployments.protocol import TextItem
    from deployments.tasks.piper_tts import PiperEngine

    engine = PiperEngine(store_dir, name="piper", noise_scale=0.0, noise_w_scale=0.0)
    spoken = []
    for speed in speeds:
        waves = engine.forward([TextItem(SpeechOptions(input=w, speed=speed)) for w in words])
        spoken.append([soxr.resample(w.audio, w.sampling_rate, RATE) for w in waves])
    return spoken


def trim(audio: np.ndarray, floor: float = 0.02) -> np.ndarray:
    """Cut leading and trailing samples quieter than ``floor`` of the peak."""
    loud = np.flatnonzero(np.abs(audio) > floor * np.abs(audio).max())
    return audio[loud[0] : loud[-1] + 1] if loud.size else audio[:0]


def noise(rng: np.random.Generator, n: int) -> np.ndarray:
    """Unit-RMS white, pink or brown noise, or mains hum."""
    kind = rng.integers(4)
    if kind == 3:
        t = np.arange(n) / RATE
        hum = sum(np.sin(2 * np.pi * rng.choice([50, 60]) * k * t) / k for k in (1, 2, 3))
        out = np.asarray(hum) + 0.1 * rng.normal(size=n)
    else:
        spectrum = np.fft.rfft(rng.normal(size=n))
        tilt = np.maximum(np.arange(spectrum.size), 1) ** (-0.5 * kind)
        out = np.fft.irfft(spectrum * tilt, n)
    return (out / (np.sqrt(np.mean(out**2)) + 1e-12)).astype(np.float32)


def room(rng: np.random.Generator, audio: np.ndarray) -> np.ndarray:
    """A simple reverb: the dry sound plus an exponentially decaying noise tail."""
    rt60 = rng.uniform(0.1, 0.6)
    t = np.arange(int(rt60 * RATE)) / RATE
    tail = rng.normal(size=t.size) * np.exp(-6.9 * t / rt60)
    tail *= rng.uniform(0.1, 0.5) / np.sqrt(np.sum(tail**2))
    tail[0] = 1.0
    return np.convolve(audio, tail)[: audio.size + t.size // 2].astype(np.float32)


def augment(rng: np.random.Generator, word: np.ndarray | None) -> np.ndarray:
    """One training clip from a trimmed word (None: a ``_silence_`` clip).

    Half the clips end shortly after the word, as a VAD segment does (the feature
    extractor pads them with zeros); the others fill the window with background.
    """
    window = CLIP_SECONDS * RATE
    if word is None:
        clip = noise(rng, int(rng.uniform(0.3, 1.0) * window))
        return (clip * 10 ** rng.uniform(-4.5, -1.0)).astype(np.float32)
    if rng.random() < 0.4:
        word = room(rng, word)
    word = word[: window - RATE // 50]
    if rng.random() < 0.5:
        lead = int(rng.uniform(0.0, 0.15) * RATE)
        tail = int(rng.uniform(0.02, 0.2) * RATE)
        size = min(window, lead + word.size + tail)
    else:
        size = window
        lead = int(rng.uniform(0, window - word.size))
    clip = np.zeros(size, dtype=np.float32)
    end = min(size, lead + word.size)
    clip[lead:end] = word[: end - lead]
    clip *= rng.uniform(0.05, 0.9) / (np.abs(clip).max() + 1e-9)
    if rng.random() < 0.7:
        snr = 10 ** (rng.uniform(8.0, 35.0) / 20)
        level = np.sqrt(np.mean(word**2)) * clip.max() / (np.abs(word).max() + 1e-9)
        clip += noise(rng, size) * level / snr
    return np.clip(clip, -1.0, 1.0).astype(np.float32)


def spoken_words(
    voices: list[Voice], piper_dir: Path, seed: int, unknown_per_voice: int = 8
) -> Iterator[tuple[str, np.ndarray]]:
    """(label, trimmed word audio): every keyword and some other words, per voice.

    espeak voices say ``unknown_per_voice`` of UNKNOWN_WORDS each, Piper says them all.
    """
    rng = np.random.default_rng(seed)
    for voice in voices:
        if voice.engine == "espeak":
            others = rng.choice(UNKNOWN_WORDS, unknown_per_voice, replace=False)
            for word in (*KEYWORDS, *others):
                yield _label(word), trim(say_espeak(voice, str(word)))
    speeds = [voice.speed for voice in voices if voice.engine == "piper"]
    if speeds:
        words = [*KEYWORDS, *UNKNOWN_WORDS]
        for audio in say_piper(piper_dir, speeds, words):
            for word, clip in zip(words, audio, strict=True):
                yield _label(word), trim(clip.astype(np.float32))


def _label(word: str) -> str:
    return word if word in KEYWORDS else UNKNOWN
