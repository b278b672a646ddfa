"""Audio classification (``classify``): top-k labels per clip, long clips windowed.

A clip longer than the model's window (AST: ``max_length`` fbank frames; Whisper: the
extractor's ``chunk_length``; wav2vec2: the configured ``window_s``) is cut into
full-length windows, the last one aligned to the clip's end, and the per-window scores
are averaged: nothing is truncated.
"""

from __future__ import annotations

from typing import ClassVar

import numpy as np
from sonaray_client.types import Classification, ClassificationOptions, LabelScore

from deployments.errors import ConfigError
from deployments.protocol import AudioItem
from deployments.tasks.hf_audio import HFAudioEngine

# Kaldi fbank framing used by ASTFeatureExtractor: 25 ms windows every 10 ms.
_FBANK_WINDOW_S, _FBANK_HOP_S = 0.025, 0.010


class AudioClassificationEngine(HFAudioEngine):
    """``AutoModelForAudioClassification`` (AST, wav2vec2 or Whisper keyword spotting, ...).

    window_s: window length for models without a fixed input size (None: whole clip);
        for a fixed-size model (AST) it may only shorten the model's window.
    hop_s: step between windows (default: the window, i.e. no overlap).
    multi_label: sigmoid scores instead of softmax (default: the config's problem_type).
    """

    task: ClassVar[str] = "classify"
    auto_model: ClassVar[str] = "AutoModelForAudioClassification"

    def __init__(
        self,
        path: str,
        *,
        name: str,
        device: str | None = None,
        window_s: float | None = None,
        hop_s: float | None = None,
        multi_label: bool | None = None,
        **options,
    ):
        super().__init__(path, name=name, device=device, **options)
        config = self.model.config
        self.labels = [config.id2label[i] for i in range(config.num_labels)]
        if multi_label is None:
            multi_label = config.problem_type == "multi_label_classification"
        self.multi_label = multi_label
        fixed = self._fixed_window()
        window = round(window_s * self.sampling_rate) if window_s else fixed
        if window is not None and fixed is not None and window > fixed:
            raise ConfigError(f"window_s={window_s} is longer than {name}'s {fixed} samples")
        if window is not None and window < self.min_samples:
            raise ConfigError(f"window_s={window_s} is shorter than one model frame")
        self.window = window
        self.hop = round(hop_s * self.sampling_rate) if hop_s else window
        if self.hop is not None and window is not None and self.hop > window:
            raise ConfigError(f"hop_s={hop_s} is longer than the window: audio would be skipped")

    def _fixed_window(self) -> int | None:
        """Samples of the model's fixed input (AST, Whisper); None if unbounded."""
        samples = getattr(self.feature_extractor, "n_samples", None)  # Whisper's chunk_length
        if samples:
            return int(samples)
        frames = getattr(self.feature_extractor, "max_length", None)
        if not frames:
            return None
        return round(((frames - 1) * _FBANK_HOP_S + _FBANK_WINDOW_S) * self.sampling_rate)

    def windows(self, n: int) -> list[tuple[int, int]]:
        """[start, end) sample spans covering a clip of ``n`` samples."""
        if self.window is None or n <= self.window:
            return [(0, n)]
        starts = list(range(0, n - self.window + 1, self.hop))
        if starts[-1] + self.window < n:
            starts.append(n - self.window)
        return [(s, s + self.window) for s in starts]

    def _scores(self, logits: np.ndarray) -> np.ndarray:
        if self.multi_label:
            return 1.0 / (1.0 + np.exp(-logits))
        shifted = np.exp(logits - logits.max(axis=-1, keepdims=True))
        return shifted / shifted.sum(axis=-1, keepdims=True)

    def forward(self, items: list[AudioItem[ClassificationOptions]]) -> list[Classification]:
        """Top-k labels with scores for each clip, in order."""
        clips = [self.validate(item) for item in items]
        spans = [self.windows(len(clip)) for clip in clips]
        logits = self.logits(
            [clip[s:e] for clip, sp in zip(clips, spans, strict=True) for s, e in sp]
        )
        results, first = [], 0
        for item, sp in zip(items, spans, strict=True):
            scores = self._scores(np.stack(logits[first : first + len(sp)])).mean(axis=0)
            first += len(sp)
            top_k = (item.options or ClassificationOptions()).top_k
            best = np.argsort(-scores, kind="stable")[:top_k]
            labels = [LabelScore(label=self.labels[i], score=float(scores[i])) for i in best]
            results.append(Classification(labels=labels, model=self.name))
        return results
