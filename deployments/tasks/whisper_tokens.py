"""What every Whisper decoder shares: the special tokens, and what decoded tokens become.

Both seq2seq engines (transformers, CTranslate2) read the same vocabulary and generation
config, and turn a chunk's decoded tokens into segments, no-speech scores and word
timings with the functions here, so they give the same results for the same tokens.
"""

from __future__ import annotations

import functools
import zlib
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from sonaray_client.types import TranscriptionOptions

from deployments.tasks.whisper_timestamps import (
    FRAME_SECONDS,
    TokenSpan,
    WordSpan,
    snap_to_sound,
    sound_runs,
    split_timestamped,
)

# Whisper truncates the prompt to the last half of its 448-token context, as OpenAI does.
MAX_PROMPT_TOKENS = 223
# A chunk whose unfinished segment starts this close to its end has nothing left to decode.
RESUME_MARGIN_S = 0.5


@dataclass
class SegmentResult:
    """One segment of a chunk; times relative to the chunk's start."""

    start: float
    end: float
    text: str
    avg_logprob: float
    tokens: list[int]
    words: list[WordSpan] = field(default_factory=list)


@dataclass
class ChunkResult:
    segments: list[SegmentResult]
    avg_logprob: float
    no_speech_prob: float
    compression_ratio: float  # text bytes / zlib-compressed bytes; loops compress well
    # Whisper opened a segment it did not finish (ends "<|t|><|t|>"): decode again from t
    resume_at: float | None = None


class WhisperVocab:
    """Special token ids, languages and features of one Whisper checkpoint."""

    def __init__(self, generation_config, processor, max_target_positions: int = 448):
        gc = generation_config
        self.processor = processor
        self.tokenizer = processor.tokenizer
        self.sampling_rate: int = processor.feature_extractor.sampling_rate
        self.max_target_positions = max_target_positions
        self.sot: int = gc.decoder_start_token_id
        self.eot: int = gc.eos_token_id
        self.no_timestamps: int = gc.no_timestamps_token_id
        self.timestamp_begin = self.no_timestamps + 1
        # <|nospeech|> (<|nocaptions|> in older vocabularies)
        self.no_speech = self.no_timestamps - 1
        self.lang_to_id: dict[str, int] = dict(getattr(gc, "lang_to_id", None) or {})
        self.task_to_id: dict[str, int] = dict(getattr(gc, "task_to_id", None) or {})
        self.multilingual = bool(getattr(gc, "is_multilingual", False)) and bool(self.lang_to_id)
        self.alignment_heads = getattr(gc, "alignment_heads", None)

    @classmethod
    def from_pretrained(cls, path: str | Path) -> WhisperVocab:
        """The vocabulary of a Whisper directory (or Hub id): processor, generation config."""
        from transformers import AutoConfig, GenerationConfig, WhisperProcessor

        try:
            positions = AutoConfig.from_pretrained(str(path)).max_target_positions
        except ValueError:  # a CTranslate2 directory: its config.json is CTranslate2's
            positions = 448
        return cls(
            GenerationConfig.from_pretrained(str(path)),
            WhisperProcessor.from_pretrained(str(path)),
            positions,
        )

    @property
    def has_alignment_heads(self) -> bool:
        return bool(self.alignment_heads)

    def language_code(self, language: str) -> str | None:
        """ISO-639-1 code this model can decode for ``language`` (code or English name)."""
        from transformers.models.whisper.tokenization_whisper import TO_LANGUAGE_CODE

        lang = language.strip().lower()
        code = TO_LANGUAGE_CODE.get(lang, lang)
        if not self.multilingual:
            return "en" if code == "en" else None
        return code if f"<|{code}|>" in self.lang_to_id else None

    def languages(self) -> list[str]:
        """The language tokens, in id order (``<|en|>``, ...)."""
        return sorted(self.lang_to_id, key=self.lang_to_id.__getitem__)

    def features(self, audios: list[np.ndarray], return_tensors: str = "np"):
        """Log-mel features padded to 30 s, one row per chunk (at most 30 s each).

        They equal the feature extractor's (to float rounding), which pads each chunk with
        zeros to 30 s first. Here the STFT runs over the chunk alone: the frames that see
        only padding are one constant, so a 4 s clip costs 4 s of STFT, not 30.
        """
        extractor = self.processor.feature_extractor
        if getattr(extractor, "dither", 0.0):  # random noise in the padding: no shortcut
            return extractor(
                audios, sampling_rate=self.sampling_rate, return_tensors=return_tensors
            ).input_features
        features = np.stack([self._log_mel(a) for a in audios])
        if return_tensors == "pt":
            import torch

            return torch.from_numpy(features)
        return features

    @functools.cached_property
    def _stft_bases(self):
        """The Hann window and the mel filterbank (n_mels, n_freqs), as torch tensors."""
        import torch

        extractor = self.processor.feature_extractor
        mel = torch.from_numpy(np.ascontiguousarray(extractor.mel_filters.T, np.float32))
        return torch.hann_window(extractor.n_fft), mel

    def _log_mel(self, audio: np.ndarray) -> np.ndarray:
        """One chunk's Whisper log-mel spectrogram (n_mels, 3000), as on 30 s of padding."""
        import torch

        extractor = self.processor.feature_extractor
        window, mel_basis = self._stft_bases
        hop, n_fft, total = extractor.hop_length, extractor.n_fft, extractor.n_samples
        frames = extractor.nb_max_frames
        n = min(len(audio), total)
        # A tail of zeros so that the last frames computed see padding alone, and their
        # centred windows reflect only zeros, as they would inside the full 30 s.
        length = min(n + n_fft + (-n) % hop, total)
        wave = np.zeros(length, np.float32)
        wave[:n] = audio[:n]
        stft = torch.stft(
            torch.from_numpy(wave),
            n_fft,
            hop,
            window=window,
            return_complex=True,
        )
        power = (stft.abs() ** 2).contiguous()
        if length == total:
            power = power[:, :frames].contiguous()  # the extractor drops the last frame
        mel = mel_basis @ power
        log_spec = torch.clamp(mel, min=1e-10).log10()
        # Padding frames are log10(1e-10) = -10, never above the chunk's own maximum
        # (the last frame computed above is padding already).
        floor = log_spec.max() - 8.0
        out = torch.full((mel.shape[0], frames), max(-10.0, float(floor)))
        out[:, : log_spec.shape[1]] = torch.maximum(log_spec, floor)
        return ((out + 4.0) / 4.0).numpy()

    def start_tokens(self, language: str | None, options: TranscriptionOptions) -> list[int]:
        """``<|startoftranscript|> [<|lang|> <|task|>]``: the prompt-free score prefix."""
        tokens = [self.sot]
        if self.multilingual:
            tokens += [self.lang_to_id[f"<|{language}|>"], self.task_to_id[options.task]]
        return tokens

    def prompt_ids(self, prompt: str) -> list[int]:
        """``<|startofprev|>`` and the prompt's last ``MAX_PROMPT_TOKENS`` text tokens."""
        ids = self.processor.get_prompt_ids(prompt).tolist()
        return ids[:1] + ids[1:][-MAX_PROMPT_TOKENS:]

    def text(self, tokens: list[int]) -> str:
        return self.tokenizer.decode(tokens, skip_special_tokens=True).strip()

    def pieces(self, tokens: list[int]) -> list[str]:
        """Each token's text, for word grouping."""
        return [self.tokenizer.decode([t]) for t in tokens]


def chunk_result(
    vocab: WhisperVocab,
    tokens: list[int],
    logprobs: np.ndarray,
    no_speech: float,
    duration: float,
    timestamps: bool,
) -> ChunkResult:
    """Segments and scores of one chunk from its generated tokens (before end-of-text).

    ``logprobs`` holds one log-probability per token and one for end-of-text.
    """
    resume_at = None
    if timestamps:
        spans = split_timestamped(
            tokens, timestamp_begin=vocab.timestamp_begin, eot=vocab.eot, duration=duration
        )
        if len(tokens) >= 2 and min(tokens[-2:]) >= vocab.timestamp_begin:
            last = (tokens[-1] - vocab.timestamp_begin) * FRAME_SECONDS
            resume_at = last if 0 < last < duration - RESUME_MARGIN_S else None
    else:
        text = [t for t in tokens if t < vocab.eot]
        spans = [TokenSpan(0.0, duration, text, 0)] if text else []
    segments = [
        SegmentResult(
            start=s.start,
            end=min(s.end, duration),
            text=vocab.text(s.tokens),
            avg_logprob=float(np.mean(logprobs[s.first : s.first + len(s.tokens)])),
            tokens=s.tokens,
        )
        for s in spans
    ]
    text = " ".join(s.text for s in segments).encode()
    return ChunkResult(
        segments=[s for s in segments if s.text],
        avg_logprob=float(np.mean(logprobs)),
        no_speech_prob=no_speech,
        compression_ratio=len(text) / len(zlib.compress(text)) if text else 0.0,
        resume_at=resume_at,
    )


def snap_segments(result: ChunkResult, audio: np.ndarray, sampling_rate: int, floor_db: float):
    """Move each segment's edges onto the audible speech of its chunk."""
    runs = sound_runs(audio, sampling_rate, floor_db=floor_db)
    for seg in result.segments:
        seg.start, seg.end = snap_to_sound(runs, seg.start, seg.end)


def attach_words(result: ChunkResult, texts: list[list[int]], words: list[WordSpan]) -> None:
    """Give each segment its words (``texts``: the text tokens the words index into)."""
    bounds = np.cumsum([len(t) for t in texts])
    for w in words:
        seg = result.segments[int(np.searchsorted(bounds, w.token_range[0], side="right"))]
        # DTW stretches edge words over the surrounding silence; the segment's edges
        # already sit on the audible speech
        w.start = min(max(w.start, seg.start), seg.end)
        w.end = min(max(w.end, w.start), seg.end)
        seg.words.append(w)
