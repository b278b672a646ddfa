"""SpeechT5 text-to-spectrogram + HiFi-GAN vocoder, with named or cloned speaker voices."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from deployments.errors import InvalidRequest
from deployments.models.store import resolve
from deployments.protocol import AudioItem
from deployments.tasks.base import check_audio, logger
from deployments.tasks.speech_engine import SpeechEngine, SpeechItem

DEFAULT_VOICE = "default"


class SpeechT5Engine(SpeechEngine):
    """``voice`` names a speaker embedding: ``speaker_embedding.npy`` is ``default`` and each
    ``voices/<name>.npy`` is ``<name>``. ``TextItem.audio`` (16 kHz, mono) clones a voice
    through the x-vector model ``xvector_model`` instead, and takes precedence over ``voice``.
    ``speed`` time-stretches the mel spectrogram before vocoding (pitch is kept).
    """

    def __init__(
        self,
        path: str,
        *,
        name: str,
        device: str | None = None,
        vocoder: str | None = None,
        xvector_model: str | None = None,
        stop_threshold: float = 0.5,
        minlenratio: float = 0.0,
        maxlenratio: float = 20.0,
        max_chars: int = 4096,
        max_piece_chars: int = 300,
        sentence_gap_s: float = 0.15,
        num_threads: int | None = None,
    ):
        from transformers import SpeechT5ForTextToSpeech, SpeechT5HifiGan, SpeechT5Processor

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
        self.processor = SpeechT5Processor.from_pretrained(directory)
        self.model = SpeechT5ForTextToSpeech.from_pretrained(directory).to(self.device).eval()
        # AutoModel cannot load SpeechT5HifiGan: it is loaded by its own class.
        vocoder_path = resolve(vocoder).path if vocoder else directory / "vocoder"
        self.vocoder = SpeechT5HifiGan.from_pretrained(vocoder_path).to(self.device).eval()
        self.sampling_rate = self.vocoder.config.sampling_rate
        self.generate_options = {
            "threshold": stop_threshold,
            "minlenratio": minlenratio,
            "maxlenratio": maxlenratio,
        }
        self.speakers = _load_voices(directory)
        self.xvector = _XVector(resolve(xvector_model).path, self.device) if xvector_model else None
        logger.info("loaded SpeechT5 %s on %s (%d Hz)", name, self.device, self.sampling_rate)

    @property
    def voices(self) -> list[str]:
        return sorted(self.speakers)

    def prepare(self, item: SpeechItem) -> tuple[torch.Tensor, float]:
        if item.audio is not None:
            if self.xvector is None:
                raise InvalidRequest(
                    f"{self.name} has no x-vector model configured to clone a voice from audio",
                    param="audio",
                )
            return self.xvector.embed(item.audio, item.sampling_rate), item.options.speed
        voice = item.options.voice or DEFAULT_VOICE
        if voice not in self.speakers:
            raise InvalidRequest(
                f"unknown voice {voice!r} for {self.name}; voices: {', '.join(self.voices)}",
                param="voice",
            )
        return self.speakers[voice], item.options.speed

    @torch.inference_mode()
    def synthesize(self, texts: list[str], contexts: list) -> list[np.ndarray]:
        inputs = self.processor(text=texts, padding=True, return_tensors="pt").to(self.device)
        speakers = torch.stack([speaker for speaker, _ in contexts]).to(self.device)
        spectrograms, lengths = self.model.generate(
            inputs["input_ids"],
            attention_mask=inputs["attention_mask"],
            speaker_embeddings=speakers,
            return_output_lengths=True,
            **self.generate_options,
        )
        mels = [
            _stretch(spectrogram[:length], speed)
            for spectrogram, length, (_, speed) in zip(spectrograms, lengths, contexts, strict=True)
        ]
        # Vocode equal lengths together: padding would leak into the end of shorter rows.
        waves: list[np.ndarray] = [np.zeros(0, np.float32)] * len(texts)
        for frames in {mel.shape[0] for mel in mels}:
            rows = [i for i, mel in enumerate(mels) if mel.shape[0] == frames]
            audio = self.vocoder(torch.stack([mels[i] for i in rows]))
            for row, wave in zip(
                rows, audio.reshape(len(rows), -1).float().cpu().numpy(), strict=True
            ):
                waves[row] = wave
        return waves


def _stretch(mel: torch.Tensor, speed: float) -> torch.Tensor:
    """Resample a (frames, bins) mel spectrogram in time: ``speed`` 2 halves its length."""
    if speed == 1.0:
        return mel
    frames = max(1, round(mel.shape[0] / speed))
    stretched = torch.nn.functional.interpolate(
        mel.T[None], size=frames, mode="linear", align_corners=True
    )
    return stretched[0].T


def _load_voices(directory: Path) -> dict[str, torch.Tensor]:
    files = {path.stem: path for path in sorted((directory / "voices").glob("*.npy"))}
    if (directory / "speaker_embedding.npy").is_file():
        files[DEFAULT_VOICE] = directory / "speaker_embedding.npy"
    return {
        name: torch.from_numpy(np.load(path).astype(np.float32)) for name, path in files.items()
    }


class _XVector:
    """A speaker encoder (``AutoModelForAudioXVector``) turning a clip into a unit embedding."""

    def __init__(self, path: str, device: str):
        from transformers import AutoFeatureExtractor, AutoModelForAudioXVector

        self.features = AutoFeatureExtractor.from_pretrained(path)
        self.model = AutoModelForAudioXVector.from_pretrained(path).to(device).eval()
        self.device = device
        self.sampling_rate: int = self.features.sampling_rate

    @torch.inference_mode()
    def embed(self, audio: np.ndarray, sampling_rate: int | None) -> torch.Tensor:
        clip = AudioItem(audio, sampling_rate or self.sampling_rate, None)
        samples = check_audio(clip, self.sampling_rate, min_seconds=0.5, max_seconds=60.0)
        inputs = self.features(samples, sampling_rate=self.sampling_rate, return_tensors="pt")
        embedding = self.model(**inputs.to(self.device)).embeddings[0]
        return torch.nn.functional.normalize(embedding, dim=-1).cpu()
