"""What the ctc, classify and frames engines share: load, validate, pad a batch, run.

One subclass per task family names its Auto class and turns logits into results; the
padding, attention masks, sub-batching, device and frame bookkeeping live here once.
"""

from __future__ import annotations

import logging
from typing import Any, ClassVar

import numpy as np

from deployments.errors import ModelError, ModelNotFound
from deployments.tasks.base import AudioItem, check_audio, pick_device

logger = logging.getLogger("sonaray.engine")

# An fbank frame (AST) spans 25 ms; a clip shorter than one gives the extractor nothing.
_FBANK_WINDOW_S = 0.025


class HFAudioEngine:
    """Base of the transformers audio engines: batch-first logits for 16 kHz-style models.

    path: a local model directory or a Hub id.
    max_audio_seconds: longer clips raise PayloadTooLarge (None: no limit).
    batch_size: the most clips (or windows, or chunks) in one forward pass.
    """

    task: ClassVar[str]
    auto_model: ClassVar[str]

    def __init__(
        self,
        path: str,
        *,
        name: str,
        device: str | None = None,
        max_audio_seconds: float | None = 600.0,
        batch_size: int = 8,
    ):
        import torch
        import transformers

        self.name = name
        self.device = pick_device(device)
        self.max_audio_seconds = max_audio_seconds
        self.batch_size = max(1, batch_size)
        try:
            self.feature_extractor = self._load_feature_extractor(path)
            auto = getattr(transformers, self.auto_model)
            self.model = auto.from_pretrained(path).to(self.device).eval()
        except OSError as exc:
            raise ModelNotFound(
                f"cannot load {self.task} model {name!r} from {path}: {exc}"
            ) from exc
        self.sampling_rate: int = self.feature_extractor.sampling_rate
        self.min_samples = self._receptive_field()
        self._torch = torch
        logger.info("loaded %s model %s on %s", self.task, name, self.device)

    def _load_feature_extractor(self, path: str) -> Any:
        from transformers import AutoFeatureExtractor

        return AutoFeatureExtractor.from_pretrained(path)

    def _receptive_field(self) -> int:
        """Fewest samples that give one output frame (400 for wav2vec2's conv stack)."""
        kernels = getattr(self.model.config, "conv_kernel", None)
        strides = getattr(self.model.config, "conv_stride", None)
        if not kernels or not strides:
            return int(round(_FBANK_WINDOW_S * self.sampling_rate))
        field = 1
        for kernel, stride in zip(reversed(kernels), reversed(strides), strict=True):
            field = (field - 1) * stride + kernel
        return field

    @property
    def samples_per_frame(self) -> int:
        """Input samples per output frame of a frame-level head (320 for wav2vec2)."""
        return int(getattr(self.model.config, "inputs_to_logits_ratio", 1))

    def validate(self, item: AudioItem) -> np.ndarray:
        """The item's audio as float32, or a typed error (rate, empty, NaN, too short or long)."""
        return check_audio(
            item,
            self.sampling_rate,
            min_seconds=self.min_samples / self.sampling_rate,
            max_seconds=self.max_audio_seconds,
        )

    def logits(self, clips: list[np.ndarray]) -> list[np.ndarray]:
        """float32 logits per clip, in order; frame-level outputs cut to the clip's own frames.

        Clips are sorted by length into sub-batches of ``batch_size`` so padding stays small.
        """
        results: list[np.ndarray] = [np.empty(0)] * len(clips)
        order = sorted(range(len(clips)), key=lambda i: len(clips[i]))
        for start in range(0, len(order), self.batch_size):
            batch = order[start : start + self.batch_size]
            for i, row in zip(batch, self._run([clips[i] for i in batch]), strict=True):
                results[i] = row
        return results

    def _run(self, clips: list[np.ndarray]) -> list[np.ndarray]:
        torch = self._torch
        # The extractor's own return_attention_mask setting is the model's: wav2vec2-base
        # style (group-norm) checkpoints must not get a mask, layer-norm ones need it.
        inputs = self.feature_extractor(
            clips, sampling_rate=self.sampling_rate, padding=True, return_tensors="pt"
        ).to(self.device)
        try:
            with torch.inference_mode():
                logits = self.model(**inputs).logits.float().cpu()
        except RuntimeError as exc:
            raise ModelError(f"{self.name} failed on a batch of {len(clips)}: {exc}") from exc
        if logits.ndim == 2:
            return list(logits.numpy())
        lengths = self.model._get_feat_extract_output_lengths(
            torch.tensor([len(clip) for clip in clips])
        )
        return [row[: int(n)].numpy() for row, n in zip(logits, lengths, strict=True)]
