"""VITS / MMS-TTS (``VitsModel``): text to waveform in one non-autoregressive pass."""

from __future__ import annotations

import numpy as np
import torch

from deployments.errors import InvalidRequest
from deployments.tasks.base import logger
from deployments.tasks.speech_engine import SpeechEngine, SpeechItem


class VitsEngine(SpeechEngine):
    """``speed`` scales predicted durations (VITS ``speaking_rate``): no resampling, same pitch.

    ``noise_scale``/``noise_scale_duration`` override the checkpoint's sampling noise; with
    both at 0 the output is deterministic and seeds are not needed to reproduce it.
    """

    def __init__(
        self,
        path: str,
        *,
        name: str,
        device: str | None = None,
        noise_scale: float | None = None,
        noise_scale_duration: float | None = None,
        max_chars: int = 4096,
        max_piece_chars: int = 400,
        sentence_gap_s: float = 0.15,
        num_threads: int | None = None,
    ):
        from transformers import AutoTokenizer, VitsModel

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
        # Noise settings are read from the config at construction: set them at load time.
        overrides = {
            key: value
            for key, value in (
                ("noise_scale", noise_scale),
                ("noise_scale_duration", noise_scale_duration),
            )
            if value is not None
        }
        model = VitsModel.from_pretrained(directory, **overrides)
        self.model = model.to(self.device).eval()
        self.tokenizer = AutoTokenizer.from_pretrained(directory)
        self.sampling_rate = model.config.sampling_rate
        self.stochastic = model.noise_scale > 0 or model.noise_scale_duration > 0
        self.num_speakers = model.config.num_speakers
        logger.info("loaded VITS %s on %s (%d Hz)", name, self.device, self.sampling_rate)

    @property
    def voices(self) -> list[str]:
        return [str(i) for i in range(self.num_speakers)] if self.num_speakers > 1 else ["default"]

    def prepare(self, item: SpeechItem) -> tuple[int | None, float]:
        voice = item.options.voice
        if item.audio is not None:
            raise InvalidRequest(f"{self.name} cannot clone a voice from audio", param="audio")
        if voice is not None and voice not in self.voices:
            raise InvalidRequest(
                f"unknown voice {voice!r} for {self.name}; voices: {', '.join(self.voices)}",
                param="voice",
            )
        speaker = int(voice) if self.num_speakers > 1 and voice is not None else None
        return speaker, item.options.speed

    def batch_key(self, item: SpeechItem, context: tuple[int | None, float]):
        return context  # speaker id and speaking rate are per call in VitsModel

    @torch.inference_mode()
    def synthesize(self, texts: list[str], contexts: list) -> list[np.ndarray]:
        speaker, speed = contexts[0]
        inputs = self.tokenizer(texts, padding=True, return_tensors="pt").to(self.device)
        speakable = (inputs["input_ids"] != self.tokenizer.pad_token_id).any(dim=-1)
        if not bool(speakable.all()):
            text = texts[int((~speakable).nonzero()[0])]
            raise InvalidRequest(f"{self.name} cannot pronounce any of {text!r}", param="input")
        captured: list = []
        # VitsModel would vocode the padded batch, and the HiFi-GAN's receptive field carries
        # the padding into the end of shorter rows; skip that pass and vocode each length alone.
        handle = self.model.decoder.register_forward_pre_hook(_keep_spectrogram(captured))
        try:
            out = self.model(**inputs, speaker_id=speaker, speaking_rate=speed)
        finally:
            handle.remove()
        spectrogram, conditioning = captured
        hop = int(np.prod(self.model.config.upsample_rates))
        frames = (out.sequence_lengths // hop).tolist()
        waves: list[np.ndarray] = [np.zeros(0, np.float32)] * len(texts)
        for length in set(frames):
            rows = [i for i, n in enumerate(frames) if n == length]
            audio = self.model.decoder(spectrogram[rows, :, :length], conditioning)
            for row, wave in zip(rows, audio[:, 0].float().cpu().numpy(), strict=True):
                waves[row] = wave
        return waves


def _keep_spectrogram(captured: list):
    """A decoder pre-hook that stores the batch's latents and lets the decoder see one frame."""

    def hook(module, args):
        spectrogram, conditioning = args
        captured.extend([spectrogram, conditioning])
        return spectrogram[..., :1], conditioning

    return hook
