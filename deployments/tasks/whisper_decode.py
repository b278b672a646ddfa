"""One padded batch of <= 30 s chunks through Whisper: language probe, generate, score, align.

``generate`` runs on encoder states computed once per batch; a teacher-forced decoder
pass then scores what it produced (no-speech probability at the start-of-transcript
position, token log-probabilities), the same way under greedy, beams or sampling.
"""

from __future__ import annotations

import zlib
from dataclasses import dataclass, field

import numpy as np
from sonaray_client.types import TranscriptionOptions

from deployments.tasks.whisper_timestamps import (
    FRAME_SECONDS,
    TokenSpan,
    WordSpan,
    align_words,
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


class WhisperDecoder:
    """Token bookkeeping and batched decoding for one Whisper model and processor."""

    def __init__(self, model, processor, *, max_new_tokens: int, silence_threshold_db: float):
        gc = model.generation_config
        self.model = model
        self.processor = processor
        self.tokenizer = processor.tokenizer
        self.max_new_tokens = max_new_tokens
        self.silence_threshold_db = silence_threshold_db
        self.sot: int = gc.decoder_start_token_id
        self.eot: int = gc.eos_token_id
        self.no_timestamps: int = gc.no_timestamps_token_id
        self.timestamp_begin = self.no_timestamps + 1
        self.no_speech = (
            self.no_timestamps - 1
        )  # <|nospeech|> (<|nocaptions|> in older vocabularies)
        self.lang_to_id: dict[str, int] = dict(getattr(gc, "lang_to_id", None) or {})
        self.task_to_id: dict[str, int] = dict(getattr(gc, "task_to_id", None) or {})
        self.multilingual = bool(getattr(gc, "is_multilingual", False)) and bool(self.lang_to_id)
        self.alignment_heads = getattr(gc, "alignment_heads", None)
        self.max_target_positions: int = model.config.max_target_positions

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

    def _encode(self, audios: list[np.ndarray]):
        features = self.processor.feature_extractor(
            audios,
            sampling_rate=self.processor.feature_extractor.sampling_rate,
            return_tensors="pt",
        ).input_features.to(self.model.device, self.model.dtype)
        return self.model.get_encoder()(features).last_hidden_state

    def detect_language(self, audios: list[np.ndarray]) -> list[tuple[str, float]]:
        """(code, probability) per chunk from the language-token logits after the start token."""
        import torch

        encoded = self._encode(audios)
        start = torch.full((len(audios), 1), self.sot, device=self.model.device)
        hidden = self.model.model.decoder(input_ids=start, encoder_hidden_states=encoded)
        logits = self.model.proj_out(hidden.last_hidden_state[:, -1]).float()
        tokens = list(self.lang_to_id)
        probs = logits[:, [self.lang_to_id[t] for t in tokens]].softmax(-1)
        best = probs.argmax(-1).tolist()
        return [(tokens[b][2:-2], float(probs[i, b])) for i, b in enumerate(best)]

    def _start_tokens(self, language: str | None, options: TranscriptionOptions) -> list[int]:
        """``<|startoftranscript|> [<|lang|> <|task|>]``: the prompt-free score prefix."""
        tokens = [self.sot]
        if self.multilingual:
            tokens += [self.lang_to_id[f"<|{language}|>"], self.task_to_id[options.task]]
        return tokens

    def _prompt_ids(self, prompt: str):
        import torch

        ids = self.processor.get_prompt_ids(prompt).tolist()  # <|startofprev|> + text tokens
        return torch.tensor(ids[:1] + ids[1:][-MAX_PROMPT_TOKENS:], device=self.model.device)

    def _generated(self, row: list[int]) -> list[int]:
        """The tokens generate produced: after the start sequence, up to end-of-text."""
        prefix = {self.no_timestamps, *self.lang_to_id.values(), *self.task_to_id.values()}
        i = row.index(self.sot) + 1
        while i < len(row) and row[i] in prefix:
            i += 1
        out = []
        for token in row[i:]:
            if token == self.eot:
                break
            out.append(token)
        return out

    def decode(
        self, audios: list[np.ndarray], languages: list[str | None], options: TranscriptionOptions
    ) -> list[ChunkResult]:
        """Decode one batch of chunks that share ``options`` (languages may differ)."""
        from transformers.modeling_outputs import BaseModelOutput

        encoded = self._encode(audios)
        kwargs: dict = {}
        prefix = 1
        if self.multilingual:
            kwargs.update(language=list(languages), task=options.task)
            prefix += 2
        if options.prompt:
            kwargs["prompt_ids"] = self._prompt_ids(options.prompt)
            prefix += len(kwargs["prompt_ids"])
        timestamps = options.timestamps != "none"
        out = self.model.generate(
            encoder_outputs=BaseModelOutput(last_hidden_state=encoded),
            return_timestamps=timestamps,
            # chunks are <= 30 s: one generate call, no seeking inside the window
            force_unique_generate_call=True,
            return_dict_in_generate=True,
            temperature=options.temperature,
            num_beams=options.num_beams,
            max_new_tokens=min(self.max_new_tokens, self.max_target_positions - prefix - 2),
            **kwargs,
        )
        generated = [self._generated(row) for row in out.sequences.tolist()]
        starts = [self._start_tokens(lang, options) for lang in languages]
        if not timestamps:
            starts = [s + [self.no_timestamps] for s in starts]
        scored = self._score(encoded, starts, generated)
        sampling_rate = self.processor.feature_extractor.sampling_rate
        results = []
        for audio, tokens, (no_speech, logprobs) in zip(audios, generated, scored, strict=True):
            duration = len(audio) / sampling_rate
            result = self._chunk_result(tokens, logprobs, no_speech, duration, timestamps)
            runs = sound_runs(audio, sampling_rate, floor_db=self.silence_threshold_db)
            for seg in result.segments:
                seg.start, seg.end = snap_to_sound(runs, seg.start, seg.end)
            results.append(result)
        if options.timestamps == "word":
            self._add_words(encoded, languages, options, audios, results)
        return results

    def _score(self, encoded, starts: list[list[int]], generated: list[list[int]]):
        """(no-speech probability, log-probability of each generated token and EOT) per row."""
        import torch

        rows = [s + g + [self.eot] for s, g in zip(starts, generated, strict=True)]
        width = max(len(r) for r in rows)
        ids = torch.tensor([r + [self.eot] * (width - len(r)) for r in rows], device=encoded.device)
        hidden = self.model.model.decoder(input_ids=ids, encoder_hidden_states=encoded)
        out = []
        for i, (row, start) in enumerate(zip(rows, starts, strict=True)):
            logprobs = self.model.proj_out(hidden.last_hidden_state[i, : len(row)]).float()
            logprobs = logprobs.log_softmax(-1)
            targets = torch.tensor(row[len(start) :], device=logprobs.device)
            picked = logprobs[len(start) - 1 : -1].gather(-1, targets[:, None])[:, 0]
            out.append((float(logprobs[0, self.no_speech].exp()), picked.cpu().numpy()))
        return out

    def _chunk_result(
        self,
        tokens: list[int],
        logprobs: np.ndarray,
        no_speech: float,
        duration: float,
        timestamps: bool,
    ) -> ChunkResult:
        resume_at = None
        if timestamps:
            spans = split_timestamped(
                tokens, timestamp_begin=self.timestamp_begin, eot=self.eot, duration=duration
            )
            if len(tokens) >= 2 and min(tokens[-2:]) >= self.timestamp_begin:
                last = (tokens[-1] - self.timestamp_begin) * FRAME_SECONDS
                resume_at = last if 0 < last < duration - RESUME_MARGIN_S else None
        else:
            text = [t for t in tokens if t < self.eot]
            spans = [TokenSpan(0.0, duration, text, 0)] if text else []
        segments = [
            SegmentResult(
                start=s.start,
                end=min(s.end, duration),
                text=self.tokenizer.decode(s.tokens, skip_special_tokens=True).strip(),
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

    def _add_words(self, encoded, languages, options, audios, results: list[ChunkResult]) -> None:
        """Word timings by cross-attention DTW over each chunk's text tokens (OpenAI's method)."""
        import torch

        sampling_rate = self.processor.feature_extractor.sampling_rate
        texts = [[s.tokens for s in r.segments] for r in results]
        starts = [self._start_tokens(lang, options) + [self.no_timestamps] for lang in languages]
        rows = [
            s + [t for seg in tx for t in seg] + [self.eot]
            for s, tx in zip(starts, texts, strict=True)
        ]
        width = max(len(r) for r in rows)
        ids = torch.tensor([r + [self.eot] * (width - len(r)) for r in rows], device=encoded.device)
        previous = self.model.config._attn_implementation
        self.model.set_attn_implementation("eager")  # only eager attention returns weights
        try:
            out = self.model.model.decoder(
                input_ids=ids, encoder_hidden_states=encoded, output_attentions=True
            )
        finally:
            self.model.set_attn_implementation(previous)
        heads = torch.stack(
            [out.cross_attentions[layer][:, head] for layer, head in self.alignment_heads], 1
        )
        for i, (row, start, result) in enumerate(zip(rows, starts, results, strict=True)):
            text = row[len(start) : -1]
            lo = len(start) - 1
            logprobs = self.model.proj_out(out.last_hidden_state[i, lo : lo + len(text)]).float()
            probs = (
                logprobs.softmax(-1)
                .gather(-1, torch.tensor(text, device=logprobs.device)[:, None])[:, 0]
                .cpu()
                .numpy()
            )
            words = align_words(
                heads[i, :, lo : lo + len(text) + 1].float().cpu().numpy(),
                [self.tokenizer.decode([t]) for t in text],
                probs,
                num_frames=len(audios[i]) * 50 // sampling_rate,
            )
            bounds = np.cumsum([len(t) for t in texts[i]])
            for w in words:
                seg = result.segments[int(np.searchsorted(bounds, w.token_range[0], side="right"))]
                # DTW stretches edge words over the surrounding silence; the segment's edges
                # already sit on the audible speech
                w.start = min(max(w.start, seg.start), seg.end)
                w.end = min(max(w.end, w.start), seg.end)
                seg.words.append(w)
