"""Frame classification (``frames``): per-frame probabilities -> speech segments (VAD).

Speech probability per frame is ``1 - p(non_speech)``; for heads with speaker labels
(diarization shape) each segment also names the speaker that wins most of its frames.
"""

from __future__ import annotations

from typing import ClassVar

import numpy as np
from sonaray_client.types import SpeechSegments, VadOptions

from deployments.errors import ConfigError, InvalidRequest
from deployments.protocol import AudioItem
from deployments.tasks.hf_audio import Chunker, HFAudioEngine
from deployments.tasks.segments import probabilities_to_segments
from deployments.tasks.vad_stream import VadBlock


class FrameClassificationEngine(HFAudioEngine):
    """``AutoModelForAudioFrameClassification`` (wav2vec2 VAD or speaker heads).

    non_speech_label: the label meaning "nobody speaks"; every other label is speech.
    chunk_length_s: longer clips run in overlapping chunks (attention cost grows with the
        square of the length); stride_length_s: context dropped at each inner chunk edge.
    """

    task: ClassVar[str] = "frames"
    auto_model: ClassVar[str] = "AutoModelForAudioFrameClassification"

    def __init__(
        self,
        path: str,
        *,
        name: str,
        device: str | None = None,
        non_speech_label: str = "non_speech",
        chunk_length_s: float | None = 30.0,
        stride_length_s: float | None = None,
        **options,
    ):
        super().__init__(path, name=name, device=device, **options)
        self.chunker = Chunker.from_seconds(
            chunk_length_s, stride_length_s, self.sampling_rate, self.samples_per_frame
        )
        config = self.model.config
        self.labels = [config.id2label[i] for i in range(config.num_labels)]
        if non_speech_label not in self.labels:
            raise ConfigError(f"{name} has no {non_speech_label!r} label; labels: {self.labels}")
        self.non_speech = self.labels.index(non_speech_label)
        self.speakers = [i for i in range(len(self.labels)) if i != self.non_speech]
        self.frame_seconds = self.samples_per_frame / self.sampling_rate

    def probabilities(self, clips: list[np.ndarray]) -> list[np.ndarray]:
        """Softmax (frames, labels) per clip, padded frames already cut off."""
        probs = []
        for logits in self.frame_logits(clips, self.chunker):
            shifted = np.exp(logits - logits.max(axis=-1, keepdims=True))
            probs.append(shifted / shifted.sum(axis=-1, keepdims=True))
        return probs

    def forward(self, items: list[AudioItem[VadOptions]]) -> list[SpeechSegments]:
        """Speech segments for each clip, in order."""
        if any(isinstance(item, VadBlock) for item in items):
            # Attention over the whole clip has no state to carry from block to block.
            raise InvalidRequest(
                f"frames model {self.name} cannot score a live stream block by block; "
                "realtime turn detection needs a Silero VAD model (engine: silero)",
                param="turn_detection",
            )
        clips = [self.validate(item) for item in items]
        results = []
        for item, clip, probs in zip(items, clips, self.probabilities(clips), strict=True):
            duration = len(clip) / self.sampling_rate
            labels = None
            if len(self.speakers) > 1:
                winners = probs[:, self.speakers].argmax(axis=-1)
                labels = [self.labels[self.speakers[w]] for w in winners]
            segments = probabilities_to_segments(
                1.0 - probs[:, self.non_speech],
                self.frame_seconds,
                item.options or VadOptions(),
                duration,
                labels,
            )
            results.append(SpeechSegments(segments=segments, duration=duration, model=self.name))
        return results
