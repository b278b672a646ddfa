"""Real speech for tests: the Piper voice speaking sentences Whisper tiny.en gets word for word.

Output is repeatable (Piper's noise is switched off) and cached per (text, rate); arrays
come back read-only so one test cannot change another's audio.
"""

from __future__ import annotations

import functools
import itertools
import re

import jiwer
import numpy as np
import soxr
from sonaray_client.types import SpeechOptions

from deployments.models import store
from deployments.protocol import TextItem
from deployments.tasks.piper_tts import PiperEngine

VOICE_MODEL = "piper-joe-medium"
# Piper draws its sampling noise inside the ONNX graph, where no seed reaches it.
NOISE_FREE_PIPER = {"noise_scale": 0.0, "noise_w_scale": 0.0}

# Each was checked: Whisper tiny.en (greedy) transcribes the Piper audio of it exactly.
SENTENCES: tuple[str, ...] = (
    "Hello world, this is a test of speech recognition.",
    "The quick brown fox jumps over the lazy dog.",
    "Please call me back when you get home tonight.",
    "I would like a cup of coffee with milk.",
    "We are going to the park this afternoon.",
    "My favorite color is blue.",
    "She sells fresh bread at the market every morning.",
)

# A sample quieter than this fraction of the peak counts as silence when trimming.
_SILENCE = 0.02


@functools.lru_cache(maxsize=1)
def _engine() -> PiperEngine:
    store.build_one(VOICE_MODEL)
    path = store.store_root() / VOICE_MODEL
    return PiperEngine(path, name=VOICE_MODEL, **NOISE_FREE_PIPER)


@functools.lru_cache(maxsize=256)
def synthesize(text: str, sampling_rate: int = 16000) -> np.ndarray:
    """``text`` spoken by the Piper voice: float32 mono at ``sampling_rate`` (read-only)."""
    wave = _engine().forward([TextItem(SpeechOptions(input=text))])[0]
    audio = wave.audio
    if sampling_rate != wave.sampling_rate:
        audio = soxr.resample(audio, wave.sampling_rate, sampling_rate)
    audio = np.ascontiguousarray(audio, dtype=np.float32)
    audio.flags.writeable = False
    return audio


def _trimmed(text: str) -> np.ndarray:
    """The sentence at 16 kHz without its leading and trailing silence."""
    audio = synthesize(text, 16000)
    loud = np.flatnonzero(np.abs(audio) > _SILENCE * np.abs(audio).max())
    return audio[loud[0] : loud[-1] + 1]


@functools.lru_cache(maxsize=4)
def long_clip(seconds: float = 90.0) -> tuple[np.ndarray, list[tuple[float, float, str]]]:
    """``seconds`` of 16 kHz audio: SENTENCES in turn, 1-2 s of silence around each.

    Returns the audio (read-only) and the true ``(start, end, text)`` of every sentence.
    """
    rate = 16000
    rng = np.random.default_rng(0)
    total = int(seconds * rate)
    parts: list[np.ndarray] = []
    truth: list[tuple[float, float, str]] = []
    position = 0
    for k in itertools.count():
        gap = int(rng.uniform(1.0, 2.0) * rate)
        text = SENTENCES[k % len(SENTENCES)]
        speech = _trimmed(text)
        if position + gap + len(speech) + rate > total:
            break
        parts += [np.zeros(gap, dtype=np.float32), speech]
        truth.append(((position + gap) / rate, (position + gap + len(speech)) / rate, text))
        position += gap + len(speech)
    parts.append(np.zeros(total - position, dtype=np.float32))
    audio = np.concatenate(parts)
    audio.flags.writeable = False
    return audio, truth


def words(text: str) -> list[str]:
    """Lower-case words without punctuation, for word-for-word comparisons."""
    return re.findall(r"[a-z0-9']+", text.lower())


def same_samples(a: np.ndarray, b: np.ndarray, tolerance: int = 32) -> bool:
    """Two int16 renderings of one text are the same audio up to float rounding: a
    sentence synthesized in a padded batch with other requests' sentences can differ from
    one synthesized alone in its last bits (``tolerance`` of 32768)."""
    a, b = np.asarray(a, dtype=np.int32), np.asarray(b, dtype=np.int32)
    return a.shape == b.shape and int(np.abs(a - b).max(initial=0)) <= tolerance


def heard_as(text: str, sentence: str) -> bool:
    """``text`` is ``sentence`` give or take one word.

    For speech that went through a served TTS route (encoded, sent, decoded, resampled):
    Whisper tiny.en sometimes hears its "a" as "the". Speech from ``synthesize`` goes
    straight to the engine under test and is compared word for word instead.
    """
    expected, got = words(sentence), words(text)
    return jiwer.wer(" ".join(expected), " ".join(got)) <= 1.5 / len(expected)


def spoken_commands(
    commands: list[str], voice: str = "en-us+f3", pause_s: float = 1.0
) -> tuple[np.ndarray, list[tuple[float, float]]]:
    """``commands`` said one by one by an espeak-ng voice, ``pause_s`` of silence around each.

    The default voice is a variant the keyword spotter's training leaves out. Returns
    16 kHz audio (read-only) and the true ``(start, end)`` of every command.
    """
    from deployments.models.builders.keyword_speech import Voice, say_espeak, trim

    rate, pause = 16000, np.zeros(int(pause_s * 16000), dtype=np.float32)
    parts, spans, position = [pause], [], len(pause)
    for command in commands:
        word = 0.5 * trim(say_espeak(Voice("espeak", voice), command))
        parts += [word, pause]
        spans.append((position / rate, (position + len(word)) / rate))
        position += len(word) + len(pause)
    audio = np.concatenate(parts).astype(np.float32)
    audio.flags.writeable = False
    return audio, spans
