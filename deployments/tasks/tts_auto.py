"""Any other ``AutoModelForTextToWaveform`` checkpoint as a tts engine, one text at a time.

Model types without a dedicated engine (VITS, SpeechT5 and Bark have theirs) still load
here: their processor turns text into inputs, and ``generate`` (or a forward pass, for
non-generative models) gives the waveform. Nothing is known about their padding, so each
text piece runs alone and no padded tail can leak into a shorter row. They have one
voice, no speaking rate and no cloning; asking for those is a 400.
"""

from __future__ import annotations

import numpy as np
import torch

from deployments.errors import InvalidRequest
from deployments.tasks.base import logger
from deployments.tasks.speech_engine import SpeechEngine, SpeechItem

DEFAULT_VOICE = "default"


def sampling_rate_of(model) -> int:
    """Where text-to-waveform models keep their output rate (config, generation, codec)."""
    codec = getattr(model.config, "audio_encoder", None)
    for owner in (model.config, model.generation_config, codec):
        for key in ("sampling_rate", "sample_rate"):
            rate = getattr(owner, key, None)
            if rate:
                return int(rate)
    raise InvalidRequest(f"{type(model).__name__} does not say its sampling rate")


class TextToWaveformEngine(SpeechEngine):
    """``AutoModelForTextToWaveform`` + ``AutoProcessor``; ``max_new_tokens`` caps generation."""

    def __init__(
        self,
        path: str,
        *,
        name: str,
        device: str | None = None,
        max_new_tokens: int | None = None,
        max_chars: int = 4096,
        max_piece_chars: int = 300,
        sentence_gap_s: float = 0.15,
        num_threads: int | None = None,
    ):
        from transformers import AutoModelForTextToWaveform, AutoProcessor

        super().__init__(
            path,
            name=name,
            device=device,
            num_threads=num_threads,
            max_chars=max_chars,
            max_piece_chars=max_piece_chars,
            sentence_gap_s=sentence_gap_s,
        )
        self.processor = AutoProcessor.from_pretrained(self.directory)
        model = AutoModelForTextToWaveform.from_pretrained(self.directory)
        self.model = model.to(self.device).eval()
        self.sampling_rate = sampling_rate_of(model)
        self.generate_options = {"max_new_tokens": max_new_tokens} if max_new_tokens else {}
        kind = type(model).__name__
        logger.info("loaded %s %s on %s (%d Hz)", kind, name, self.device, self.sampling_rate)

    @property
    def voices(self) -> list[str]:
        return [DEFAULT_VOICE]

    def prepare(self, item: SpeechItem) -> None:
        if item.audio is not None:
            raise InvalidRequest(f"{self.name} cannot clone a voice from audio", param="audio")
        if item.options.voice not in (None, DEFAULT_VOICE):
            raise InvalidRequest(
                f"unknown voice {item.options.voice!r} for {self.name}; voices: default",
                param="voice",
            )
        if item.options.speed != 1.0:
            raise InvalidRequest(f"{self.name} supports only speed 1.0", param="speed")

    @torch.inference_mode()
    def synthesize(self, texts: list[str], contexts: list) -> list[np.ndarray]:
        waves = []
        for text in texts:
            inputs = self.processor(text=[text], return_tensors="pt").to(self.device)
            if self.model.can_generate():
                audio = self.model.generate(**inputs, **self.generate_options)
            else:
                audio = self.model(**inputs).waveform
            waves.append(audio.float().cpu().numpy().reshape(-1))
        return waves
