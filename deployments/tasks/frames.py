"""Frame classification (``frames``): per-frame probabilities -> speech segments.

Two kinds of head. A softmax head with a non-speech label (VAD, or non-speech plus
speakers): speech probability per frame is ``1 - p(non_speech)``, and with several
speaker labels each segment names the speaker that wins most of its frames. A sigmoid
head with one output per speaker and no non-speech label (SUPERB speaker diarization,
``anton-l/wav2vec2-base-superb-sd``: transformers' own test thresholds ``logits > 0``):
each speaker's activity is segmented on its own, so overlapping speech gives overlapping
segments, one per speaker.
"""

from __future__ import annotations

from typing import ClassVar, Literal

import numpy as np
from sonaray_client.types import SpeechSegments, VadOptions

from deployments.errors import ConfigError, InvalidRequest
from deployments.protocol import AudioItem
from deployments.tasks.hf_audio import Chunker, HFAudioEngine
from deployments.tasks.segments import probabilities_to_segments
from deployments.tasks.vad_stream import VadBlock


class FrameClassificationEngine(HFAudioEngine):
    """``AutoModelForAudioFrameClassification`` (wav2vec2 VAD or speaker heads).

    non_speech_label: the label meaning "nobody speaks" in a softmax head.
    activation: "softmax" (one label per frame) or "sigmoid" (each speaker on its own);
        default: softmax when the head has ``non_speech_label``, else sigmoid.
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
        activation: Literal["softmax", "sigmoid"] | None = None,
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
        if activation is None:
            activation = "softmax" if non_speech_label in self.labels else "sigmoid"
        self.activation = activation
        self.non_speech: int | None = None
        if activation == "softmax":
            if non_speech_label not in self.labels:
                raise ConfigError(
                    f"{name} has no {non_speech_label!r} label; labels: {self.labels}"
                )
            self.non_speech = self.labels.index(non_speech_label)
        self.speakers = [i for i in range(len(self.labels)) if i != self.non_speech]
        self.frame_seconds = self.samples_per_frame / self.sampling_rate

    @property
    def speaker_labels(self) -> list[str] | None:
        """The speakers this head tells apart (None for a VAD head: one speech output)."""
        if len(self.speakers) < 2:
            return None
        return [self.labels[i] for i in self.speakers]

    def probabilities(self, clips: list[np.ndarray]) -> list[np.ndarray]:
        """(frames, labels) probabilities per clip, padded frames already cut off."""
        probs = []
        for logits in self.frame_logits(clips, self.chunker):
            if self.activation == "sigmoid":
                probs.append(1.0 / (1.0 + np.exp(-logits)))
                continue
            shifted = np.exp(logits - logits.max(axis=-1, keepdims=True))
            probs.append(shifted / shifted.sum(axis=-1, keepdims=True))
        return probs

    def _per_speaker(self, probs: np.ndarray, options: VadOptions, duration: float):
        """Each speaker's own segments, merged in time order (overlaps kept)."""
        segments = [
            segment.model_copy(update={"speaker": self.labels[i]})
            for i in self.speakers
            for segment in probabilities_to_segments(
                probs[:, i], self.frame_seconds, options, duration
            )
        ]
        return sorted(segments, key=lambda s: (s.start, s.end, s.speaker))

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
            options = item.options or VadOptions()
            if self.non_speech is None:
                segments = self._per_speaker(probs, options, duration)
                results.append(
                    SpeechSegments(segments=segments, duration=duration, model=self.name)
                )
                continue
            labels = None
            if len(self.speakers) > 1:
                winners = probs[:, self.speakers].argmax(axis=-1)
                labels = [self.labels[self.speakers[w]] for w in winners]
            segments = probabilities_to_segments(
                1.0 - probs[:, self.non_speech],
                self.frame_seconds,
                options,
                duration,
                labels,
            )
            results.append(SpeechSegments(segments=segments, duration=duration, model=self.name))
        return results
