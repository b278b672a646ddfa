"""CTC speech recognition (``ctc``): greedy decoding with word offsets, long audio chunked."""

from __future__ import annotations

from typing import Any, ClassVar

import numpy as np
from sonaray_client.types import (
    Transcription,
    TranscriptionOptions,
    TranscriptSegment,
    WordTiming,
)

from deployments.errors import InvalidRequest
from deployments.protocol import AudioItem
from deployments.tasks.hf_audio import Chunker, HFAudioEngine


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
        self.chunker = Chunker.from_seconds(
            chunk_length_s, stride_length_s, self.sampling_rate, self.samples_per_frame
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

    def frame_tokens(self, clips: list[np.ndarray]) -> list[tuple[np.ndarray, np.ndarray]]:
        """Greedy token id and its probability for every frame of each clip."""
        results = []
        for frames in self.frame_logits(clips, self.chunker):
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
