"""What every transformers TTS engine shares (VITS/MMS-TTS, SpeechT5, Bark).

Every engine splits long text into
sentences, synthesizes the pieces of all items as one padded batch, trims each piece to
its own length and joins an item's pieces with a short pause.

Seeds: these models draw noise from torch's global RNG for the whole batch, so a row's
noise depends on its batch. Items with a seed therefore run as their own batch under that
seed (same seed, text and options → same audio, alone or in any request batch); items
without one share a batch and are not reproducible.
"""

from __future__ import annotations

import re
from abc import ABC, abstractmethod
from collections import defaultdict
from collections.abc import Hashable
from typing import Any, ClassVar

import numpy as np
import torch
from sonaray_client.types import SpeechOptions

from deployments.errors import InvalidRequest
from deployments.protocol import TextItem, Waveform, check_text
from deployments.tasks.base import model_dir, pick_device, set_torch_threads

SpeechItem = TextItem[SpeechOptions]
_SENTENCE_END = re.compile(r"(?<=[.!?;:])\s+")


def split_sentences(text: str, max_piece_chars: int) -> list[str]:
    """Sentences of ``text``, each cut at word boundaries into pieces of ``max_piece_chars``."""
    pieces = []
    for sentence in _SENTENCE_END.split(text):
        rest = sentence.strip()
        while len(rest) > max_piece_chars:
            cut = rest.rfind(" ", 0, max_piece_chars + 1)
            cut = cut if cut > 0 else max_piece_chars
            pieces.append(rest[:cut].strip())
            rest = rest[cut:].strip()
        if rest:
            pieces.append(rest)
    return pieces


class SpeechEngine(ABC):
    """Sentence splitting, seed grouping and joining; subclasses synthesize one batch."""

    task: ClassVar[str] = "tts"
    name: str
    sampling_rate: int
    device: str
    stochastic: bool = True

    def __init__(
        self,
        path: str,
        *,
        name: str,
        device: str | None,
        num_threads: int | None,
        max_chars: int,
        max_piece_chars: int,
        sentence_gap_s: float,
    ):
        set_torch_threads(num_threads)
        self.name = name
        self.device = pick_device(device)
        self.directory = model_dir(path)
        self.max_chars = max_chars
        self.max_piece_chars = max_piece_chars
        self.sentence_gap_s = sentence_gap_s

    @abstractmethod
    def prepare(self, item: SpeechItem) -> Any:
        """Validate an item's voice/speed/reference audio; return what ``synthesize`` needs."""

    @abstractmethod
    def synthesize(self, texts: list[str], contexts: list[Any]) -> list[np.ndarray]:
        """One float waveform per text piece, each trimmed to its own length."""

    def batch_key(self, item: SpeechItem, context: Any) -> Hashable:
        """Items whose keys differ cannot share one model call (e.g. a per-call speed)."""
        return None

    def forward(self, items: list[SpeechItem]) -> list[Waveform]:
        texts = [check_text(item.options.input, max_chars=self.max_chars) for item in items]
        contexts = [self.prepare(item) for item in items]
        groups: dict[tuple, list[int]] = defaultdict(list)
        for i, (item, context) in enumerate(zip(items, contexts, strict=True)):
            seed = item.options.seed if self.stochastic else None
            alone = i if seed is not None else None
            groups[(seed, alone, self.batch_key(item, context))].append(i)
        pieces: dict[int, list[np.ndarray]] = {}
        for (seed, _, _), indices in groups.items():
            owners = [(i, piece) for i in indices for piece in self._pieces(texts[i])]
            with torch.random.fork_rng(devices=self._rng_devices()):
                if seed is not None:
                    torch.manual_seed(seed)
                audio = self.synthesize([p for _, p in owners], [contexts[i] for i, _ in owners])
            for (i, _), wave in zip(owners, audio, strict=True):
                pieces.setdefault(i, []).append(wave)
        return [self._join(pieces[i], item) for i, item in enumerate(items)]

    def _pieces(self, text: str) -> list[str]:
        pieces = split_sentences(text, self.max_piece_chars)
        if not pieces:
            raise InvalidRequest("text is empty", param="input")
        return pieces

    def _rng_devices(self) -> list:
        return [torch.device(self.device)] if self.device.startswith("cuda") else []

    def _join(self, waves: list[np.ndarray], item: SpeechItem) -> Waveform:
        gap = np.zeros(round(self.sentence_gap_s * self.sampling_rate), dtype=np.float32)
        parts = [part for wave in waves for part in (gap, wave)][1:]
        audio = np.clip(np.concatenate(parts), -1.0, 1.0).astype(np.float32)
        seed = item.options.seed if self.stochastic else None
        extras = {"seed": seed, "sentences": len(waves), "sentence_gap_s": self.sentence_gap_s}
        return Waveform(audio, self.sampling_rate, extras)
