"""What the ctc, classify and frames engines share: load, validate, pad a batch, run.

One subclass per task family names its Auto class and turns logits into results; the
padding, attention masks, sub-batching, device and frame bookkeeping live here once.

Long audio for frame-level heads (ctc, frames) is cut like transformers' ASR pipeline
(``chunk_length_s``/``stride_length_s``): overlapping chunks whose edges (the strides)
are dropped from the logits. Chunk starts and strides are whole model frames, so the
kept frames tile the clip's own frame grid exactly and offsets stay in clip time.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np

from deployments.errors import ConfigError, ModelError, ModelNotFound
from deployments.protocol import AudioItem
from deployments.tasks.base import check_audio, pick_device

logger = logging.getLogger("sonaray.engine")

# An fbank frame (AST) spans 25 ms; a clip shorter than one gives the extractor nothing.
_FBANK_WINDOW_S = 0.025


@dataclass(frozen=True)
class Chunk:
    """Samples [start, end) of a clip; keep its frames [keep_from, keep_to) (None: to the end)."""

    start: int
    end: int
    keep_from: int
    keep_to: int | None


@dataclass(frozen=True)
class Chunker:
    """How clips longer than ``chunk_len`` samples are cut; all lengths in samples."""

    chunk_len: int
    stride: int
    align: int

    @classmethod
    def from_seconds(
        cls, chunk_length_s: float | None, stride_length_s: float | None, rate: int, align: int
    ) -> Chunker | None:
        """None when chunking is off; stride defaults to chunk_length_s / 6 as in transformers."""
        if not chunk_length_s:
            return None
        chunk_len = round(chunk_length_s * rate / align) * align
        stride_s = chunk_length_s / 6 if stride_length_s is None else stride_length_s
        # At least one frame: a chunk's last frame sees less audio than the others.
        stride = max(align, round(stride_s * rate / align) * align)
        if chunk_len <= 2 * stride:
            raise ConfigError(
                f"chunk_length_s={chunk_length_s} must exceed twice stride_length_s={stride_s}"
            )
        return cls(chunk_len, stride, align)

    def chunks(self, n: int) -> list[Chunk]:
        """How a clip of ``n`` samples is cut; one chunk when it fits."""
        if n <= self.chunk_len:
            return [Chunk(0, n, 0, None)]
        chunks = []
        for start in range(0, n, self.chunk_len - 2 * self.stride):
            last = start + self.chunk_len >= n
            keep_from = 0 if start == 0 else self.stride // self.align
            keep_to = None if last else (self.chunk_len - self.stride) // self.align
            chunks.append(Chunk(start, min(start + self.chunk_len, n), keep_from, keep_to))
            if last:
                break
        return chunks


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

    def frame_logits(self, clips: list[np.ndarray], chunker: Chunker | None) -> list[np.ndarray]:
        """(frames, labels) logits per clip on its own frame grid, chunks stitched together."""
        if chunker is None:
            return self.logits(clips)
        plans = [chunker.chunks(len(clip)) for clip in clips]
        pieces = [
            clip[c.start : c.end] for clip, plan in zip(clips, plans, strict=True) for c in plan
        ]
        logits = iter(self.logits(pieces))
        return [
            np.concatenate([next(logits)[c.keep_from : c.keep_to] for c in plan]) for plan in plans
        ]

    def _run(self, clips: list[np.ndarray]) -> list[np.ndarray]:
        import torch

        # The extractor's own return_attention_mask setting is the model's: wav2vec2-base
        # style (group-norm) checkpoints must not get a mask, layer-norm ones need it.
        # Whisper's encoder takes exactly its window (``n_samples``, padded with zeros).
        padding = "max_length" if getattr(self.feature_extractor, "n_samples", None) else True
        inputs = self.feature_extractor(
            clips, sampling_rate=self.sampling_rate, padding=padding, return_tensors="pt"
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
