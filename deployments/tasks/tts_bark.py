"""Bark (``BarkModel``): text to semantic, coarse and fine codes, decoded by EnCodec at 24 kHz."""

from __future__ import annotations

import numpy as np
import torch

from deployments.errors import InvalidRequest
from deployments.tasks.base import logger
from deployments.tasks.speech_engine import SpeechEngine, SpeechItem


class BarkEngine(SpeechEngine):
    """``voice`` is a voice preset (``v2/en_speaker_6``); without one Bark invents a speaker.

    Bark takes one voice preset per call, so items batch per voice. It has no speaking
    rate and its pitch would move under resampling: ``speed`` other than 1 is refused.
    """

    def __init__(
        self,
        path: str,
        *,
        name: str,
        device: str | None = None,
        max_chars: int = 4096,
        max_piece_chars: int = 200,
        sentence_gap_s: float = 0.15,
        min_semantic_tokens: int = 8,
        num_threads: int | None = None,
    ):
        from transformers import BarkModel, BarkProcessor

        super().__init__(
            path,
            name=name,
            device=device,
            num_threads=num_threads,
            max_chars=max_chars,
            max_piece_chars=max_piece_chars,
            sentence_gap_s=sentence_gap_s,
        )
        directory = self.directory
        self.processor = BarkProcessor.from_pretrained(directory)
        self.model = BarkModel.from_pretrained(directory).to(self.device).eval()
        self.sampling_rate = self.model.generation_config.sample_rate
        # An end-of-text at the first step leaves EnCodec no frames to decode, and it fails.
        self.min_semantic_tokens = min_semantic_tokens
        # The semantic model reads at most this many tokens; a word-piece token covers at
        # least one character, so pieces this short are never truncated.
        self.max_tokens = self.model.generation_config.semantic_config["max_input_semantic_length"]
        self.max_piece_chars = min(max_piece_chars, self.max_tokens)
        logger.info("loaded Bark %s on %s (%d Hz)", name, self.device, self.sampling_rate)

    @property
    def voices(self) -> list[str]:
        return sorted(self.processor.available_voice_presets)

    def prepare(self, item: SpeechItem) -> str | None:
        if item.audio is not None:
            raise InvalidRequest(f"{self.name} cannot clone a voice from audio", param="audio")
        if item.options.speed != 1.0:
            raise InvalidRequest(f"{self.name} (Bark) supports only speed 1.0", param="speed")
        voice = item.options.voice
        if voice is not None and voice not in self.voices:
            raise InvalidRequest(
                f"unknown voice {voice!r} for {self.name}; voices: {', '.join(self.voices)}",
                param="voice",
            )
        return voice

    def batch_key(self, item: SpeechItem, context: str | None):
        return context

    @torch.inference_mode()
    def synthesize(self, texts: list[str], contexts: list) -> list[np.ndarray]:
        inputs = self.processor(texts, voice_preset=contexts[0], max_length=self.max_tokens)
        audio, lengths = self.model.generate(
            **inputs.to(self.device),
            return_output_lengths=True,
            semantic_min_new_tokens=self.min_semantic_tokens,
        )
        # generate decodes each row at its own length, so no padding leaks into a row.
        waves = audio.float().cpu().numpy()
        return [wave[:length] for wave, length in zip(waves, list(lengths), strict=True)]
