"""CTC speech recognition (``ctc``): greedy decoding with word offsets, long audio chunked.

Long audio is cut like transformers' ASR pipeline (``chunk_length_s``/``stride_length_s``):
overlapping chunks whose edges (the strides) are dropped from the logits. Chunk starts
and strides are whole model frames, so the kept frames tile the clip's own frame grid
exactly and offsets stay in clip time.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np
from sonaray_client.types import (
    Transcription,
    TranscriptionOptions,
    TranscriptSegment,
    WordTiming,
)

from deployments.errors import ConfigError, InvalidRequest
from deployments.tasks.base import AudioItem
from deployments.tasks.hf_audio import HFAudioEngine


@dataclass(frozen=True)
class Chunk:
    """Samples [start, end) of a clip; keep its frames [keep_from, keep_to) (None: to the end)."""

    start: int
    end: int
    keep_from: int
    keep_to: int | None


class CTCEngine(HFAudioEngine):
    """``AutoModelForCTC`` + ``AutoProcessor`` (wav2vec2, HuBERT, XLS-R).

    chunk_length_s: clips longer than this are chunked (None: never).
    stride_length_s: context dropped at each inner chunk edge (default chunk_length_s / 6).
    """

    task: ClassVar[str] = "ctc"
    auto_model: ClassVar[str] = "AutoModelForCTC"

    def __init__(
        self,
        path: str,
        *,
        name: str,
        device: str | None = None,
        chunk_length_s: float | None = 30.0,
        stride_length_s: float | None = None,
        **options,
    ):
        super().__init__(path, name=name, device=device, **options)
        self.chunk_len = self.stride = None
        if chunk_length_s:
            align = self.samples_per_frame
            self.chunk_len = round(chunk_length_s * self.sampling_rate / align) * align
            stride_s = chunk_length_s / 6 if stride_length_s is None else stride_length_s
            # At least one frame: a chunk's last frame sees less audio than the others.
            self.stride = max(align, round(stride_s * self.sampling_rate / align) * align)
            if self.chunk_len <= 2 * self.stride:
                raise ConfigError(
                    f"chunk_length_s={chunk_length_s} must exceed twice stride_length_s={stride_s}"
                )
        blank = self.tokenizer.pad_token_id
        keep = {blank, self.tokenizer.convert_tokens_to_ids(self.tokenizer.word_delimiter_token)}
        # bos/eos/unk are not text: decoding them as blanks keeps them out of transcripts.
        self._not_text = np.array(
            sorted(set(self.tokenizer.all_special_ids) - keep), dtype=np.int64
        )
        self._blank = blank

    def _load_feature_extractor(self, path: str) -> Any:
        from transformers import AutoProcessor

        processor = AutoProcessor.from_pretrained(path)
        self.tokenizer = processor.tokenizer
        return processor.feature_extractor

    def chunks(self, n: int) -> list[Chunk]:
        """How a clip of ``n`` samples is cut; one chunk when it fits."""
        if self.chunk_len is None or n <= self.chunk_len:
            return [Chunk(0, n, 0, None)]
        align, step = self.samples_per_frame, self.chunk_len - 2 * self.stride
        chunks = []
        for start in range(0, n, step):
            last = start + self.chunk_len >= n
            keep_from = 0 if start == 0 else self.stride // align
            keep_to = None if last else (self.chunk_len - self.stride) // align
            chunks.append(Chunk(start, min(start + self.chunk_len, n), keep_from, keep_to))
            if last:
                break
        return chunks

    def frame_tokens(self, clips: list[np.ndarray]) -> list[tuple[np.ndarray, np.ndarray]]:
        """Greedy token id and its probability for every frame of each clip."""
        plans = [self.chunks(len(clip)) for clip in clips]
        pieces = [
            clip[c.start : c.end] for clip, plan in zip(clips, plans, strict=True) for c in plan
        ]
        logits = iter(self.logits(pieces))
        results = []
        for plan in plans:
            kept = [next(logits)[c.keep_from : c.keep_to] for c in plan]
            frames = np.concatenate(kept)
            shifted = np.exp(frames - frames.max(axis=-1, keepdims=True))
            probs = shifted / shifted.sum(axis=-1, keepdims=True)
            ids = probs.argmax(axis=-1)
            results.append((ids, probs[np.arange(len(ids)), ids]))
        return results

    def _transcribe(
        self,
        ids: np.ndarray,
        confidence: np.ndarray,
        duration: float,
        options: TranscriptionOptions,
    ) -> Transcription:
        ids = np.where(np.isin(ids, self._not_text), self._blank, ids)
        # skip_special_tokens=False: True drops blanks before repeats merge ("HELLO" -> "HELO").
        out = self.tokenizer.decode(
            ids.tolist(), skip_special_tokens=False, output_word_offsets=True
        )
        seconds = self.samples_per_frame / self.sampling_rate
        words = [
            WordTiming(
                word=w["word"],
                start=round(min(w["start_offset"] * seconds, duration), 3),
                end=round(min(w["end_offset"] * seconds, duration), 3),
                probability=round(float(confidence[w["start_offset"] : w["end_offset"]].mean()), 4),
            )
            for w in out.word_offsets
        ]
        text = out.text.strip()
        with_words = options.timestamps == "word"
        segments = []
        if options.timestamps != "none" and text:
            segments = [
                TranscriptSegment(
                    id=0, start=0.0, end=duration, text=text, words=words if with_words else None
                )
            ]
        return Transcription(
            text=text,
            duration=duration,
            segments=segments,
            words=words if with_words else None,
            model=self.name,
        )

    def forward(self, items: list[AudioItem[TranscriptionOptions]]) -> list[Transcription]:
        """Transcripts (with word timings when asked) for each clip, in order."""
        options = [item.options or TranscriptionOptions() for item in items]
        for opts in options:
            if opts.task == "translate":
                raise InvalidRequest(
                    f"{self.name} is a CTC model: it cannot translate", param="task"
                )
        clips = [self.validate(item) for item in items]
        return [
            self._transcribe(ids, conf, len(clip) / self.sampling_rate, opts)
            for (ids, conf), clip, opts in zip(
                self.frame_tokens(clips), clips, options, strict=True
            )
        ]
