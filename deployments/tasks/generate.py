"""Text (and optional audio prompt) to music/sound with MusicGen.

Reproducibility: every item samples from its own seeded RNG (``SeededSampler``), so the
same prompt, options and seed give the same audio alone or inside any batch, up to float
rounding of batched kernels (tests hold batched and single runs to 1e-4). An item without
a seed gets a fresh one, reported in ``Waveform.extras["seed"]``.

An audio prompt (``TextItem.audio``, mono at the model's 32 kHz) is continued; the output
is the continuation only, ``duration_s`` long, with the prompt stripped.
"""

from __future__ import annotations

import math
from collections import defaultdict
from typing import ClassVar

import numpy as np
import torch
from sonaray_client.types import GenerationOptions

from deployments.errors import InvalidAudio, PayloadTooLarge
from deployments.protocol import AudioItem, TextItem, Waveform, check_text
from deployments.tasks.base import check_audio, logger, model_dir, pick_device, set_torch_threads
from deployments.tasks.sampling import SeededSampler, resolve_seed

GenerationItem = TextItem[GenerationOptions]


class MusicgenEngine:
    """MusicGen (``MusicgenForConditionalGeneration``): batched prompts to 32 kHz audio."""

    task: ClassVar[str] = "generate"

    def __init__(
        self,
        path: str,
        *,
        name: str,
        device: str | None = None,
        max_prompt_chars: int = 2000,
        max_audio_prompt_s: float = 30.0,
        num_threads: int | None = None,
    ):
        from transformers import AutoProcessor, MusicgenForConditionalGeneration

        set_torch_threads(num_threads)
        self.name = name
        self.device = pick_device(device)
        directory = model_dir(path)
        self.processor = AutoProcessor.from_pretrained(directory)
        model = MusicgenForConditionalGeneration.from_pretrained(directory)
        self.model = model.to(self.device).eval()
        audio_config = model.config.audio_encoder
        self.sampling_rate: int = audio_config.sampling_rate
        self.frame_rate: float = audio_config.frame_rate
        self.hop_length: int = audio_config.hop_length
        self.num_codebooks: int = model.decoder.config.num_codebooks
        self.max_positions: int = model.decoder.config.max_position_embeddings
        self.top_k: int | None = model.generation_config.top_k
        self.max_prompt_chars = max_prompt_chars
        self.max_audio_prompt_s = max_audio_prompt_s
        logger.info("loaded MusicGen %s on %s (%d Hz)", name, self.device, self.sampling_rate)

    def new_tokens(self, duration_s: float) -> int:
        """Decoder steps for ``duration_s`` of audio: a frame per step plus the codebook delay."""
        return math.ceil(duration_s * self.frame_rate) + self.num_codebooks - 1

    def _prompt_frames(self, samples: int) -> int:
        return math.ceil(samples / self.hop_length)

    def _check(self, item: GenerationItem) -> tuple[str, np.ndarray | None]:
        prompt = check_text(item.options.prompt, max_chars=self.max_prompt_chars, param="prompt")
        if item.audio is None:
            return prompt, None
        rate = item.sampling_rate or self.sampling_rate
        audio = check_audio(
            AudioItem(item.audio, rate, None),
            self.sampling_rate,
            max_seconds=self.max_audio_prompt_s,
        )
        if audio.size < self.hop_length:
            raise InvalidAudio("audio prompt is shorter than one codec frame", param="file")
        steps = self._prompt_frames(audio.size) + self.new_tokens(item.options.duration_s)
        if steps > self.max_positions:
            raise PayloadTooLarge(
                f"audio prompt plus duration_s exceed {self.name}'s "
                f"{self.max_positions / self.frame_rate:.0f}s context",
                param="duration_s",
            )
        return prompt, audio

    def forward(self, items: list[GenerationItem]) -> list[Waveform]:
        """One waveform per item; items sharing a length and prompt length run as one batch."""
        checked = [self._check(item) for item in items]
        groups: dict[tuple[int, int], list[int]] = defaultdict(list)
        for i, (item, (_, audio)) in enumerate(zip(items, checked, strict=True)):
            prompt_len = 0 if audio is None else audio.size
            groups[(self.new_tokens(item.options.duration_s), prompt_len)].append(i)
        results: list[Waveform | None] = [None] * len(items)
        for (steps, prompt_len), indices in groups.items():
            group = [items[i] for i in indices]
            prompts = [checked[i][0] for i in indices]
            audios = [checked[i][1] for i in indices] if prompt_len else None
            for i, wave in zip(indices, self._generate(group, prompts, audios, steps), strict=True):
                results[i] = wave
        return results

    @torch.inference_mode()
    def _generate(
        self,
        items: list[GenerationItem],
        prompts: list[str],
        audios: list[np.ndarray] | None,
        steps: int,
    ) -> list[Waveform]:
        inputs = self.processor(
            text=prompts,
            audio=audios,
            sampling_rate=self.sampling_rate if audios else None,
            padding=True,
            return_tensors="pt",
        ).to(self.device)
        inputs.pop("padding_mask", None)  # equal-length prompts only: nothing is padded
        seeds = [resolve_seed(item.options.seed) for item in items]
        guidance = [item.options.guidance_scale for item in items]
        sampler = SeededSampler(
            seeds,
            rows_per_item=self.num_codebooks,
            temperatures=[item.options.temperature for item in items],
            guidance_scales=guidance,
            top_k=self.top_k,
        )
        # Any value > 1 makes generate run the unconditional half; SeededSampler guides per item.
        batch_guidance = 2.0 if any(g != 1.0 for g in guidance) else None
        audio = self.model.generate(
            **inputs,
            do_sample=False,
            top_k=None,
            guidance_scale=batch_guidance,
            max_new_tokens=steps,
            logits_processor=[sampler],
        )
        # The codec pads the prompt to whole frames; the continuation starts after them.
        skip = 0 if audios is None else self._prompt_frames(audios[0].size) * self.hop_length
        waveforms = []
        for row, item, seed in zip(audio[:, 0].float().cpu().numpy(), items, seeds, strict=True):
            samples = round(item.options.duration_s * self.sampling_rate)
            clip = np.clip(row[skip : skip + samples], -1.0, 1.0).astype(np.float32)
            extras = {"seed": seed, "prompt_stripped_s": skip / self.sampling_rate}
            waveforms.append(Waveform(clip, self.sampling_rate, extras))
        return waveforms
