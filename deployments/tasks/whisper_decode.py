"""One padded batch of <= 30 s chunks through transformers Whisper: generate, score, align.

``generate`` runs on encoder states computed once per batch; a teacher-forced decoder
pass then scores what it produced (no-speech probability at the start-of-transcript
position, token log-probabilities), the same way under greedy, beams or sampling.

``generate`` gets ``max_length`` (Whisper adds the prompt's length itself), not
``max_new_tokens``: with both set (the checkpoint's generation config carries
``max_length``) transformers warns on every call.
"""

from __future__ import annotations

import logging

import numpy as np
from sonaray_client.types import TranscriptionOptions

from deployments.tasks.whisper_timestamps import align_words
from deployments.tasks.whisper_tokens import (
    ChunkResult,
    WhisperVocab,
    attach_words,
    chunk_result,
    snap_segments,
)


class _WhisperWrapperWarning(logging.Filter):
    """Drop the warning transformers 5.24 raises against itself once per process.

    ``WhisperGenerationMixin.generate`` passes ``suppress_tokens`` and
    ``begin_suppress_tokens`` next to its own ``generation_config`` to
    ``GenerationMixin.generate``, which then warns that both were given; no argument a
    caller passes avoids it.
    """

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        return not (
            message.startswith("Passing `generation_config` together with")
            and "suppress_tokens" in message
        )


logging.getLogger("transformers.generation.utils").addFilter(_WhisperWrapperWarning())


class WhisperDecoder:
    """Batched decoding for one transformers Whisper model and its vocabulary."""

    def __init__(self, model, processor, *, max_new_tokens: int, silence_threshold_db: float):
        self.model = model
        self.vocab = WhisperVocab(
            model.generation_config, processor, model.config.max_target_positions
        )
        self.max_new_tokens = max_new_tokens
        self.silence_threshold_db = silence_threshold_db

    def _encode(self, audios: list[np.ndarray]):
        features = self.vocab.features(audios, return_tensors="pt")
        features = features.to(self.model.device, self.model.dtype)
        return self.model.get_encoder()(features).last_hidden_state

    def detect_language(self, audios: list[np.ndarray]) -> list[tuple[str, float]]:
        """(code, probability) per chunk from the language-token logits after the start token."""
        import torch

        v = self.vocab
        with torch.inference_mode():
            encoded = self._encode(audios)
            start = torch.full((len(audios), 1), v.sot, device=self.model.device)
            hidden = self.model.model.decoder(input_ids=start, encoder_hidden_states=encoded)
            logits = self.model.proj_out(hidden.last_hidden_state[:, -1]).float()
            tokens = list(v.lang_to_id)
            probs = logits[:, [v.lang_to_id[t] for t in tokens]].softmax(-1)
            best = probs.argmax(-1).tolist()
        return [(tokens[b][2:-2], float(probs[i, b])) for i, b in enumerate(best)]

    def _generated(self, row: list[int]) -> list[int]:
        """The tokens generate produced: after the start sequence, up to end-of-text."""
        v = self.vocab
        prefix = {v.no_timestamps, *v.lang_to_id.values(), *v.task_to_id.values()}
        i = row.index(v.sot) + 1
        while i < len(row) and row[i] in prefix:
            i += 1
        out = []
        for token in row[i:]:
            if token == v.eot:
                break
            out.append(token)
        return out

    def decode(
        self, audios: list[np.ndarray], languages: list[str | None], options: TranscriptionOptions
    ) -> list[ChunkResult]:
        """Decode one batch of chunks that share ``options`` (languages may differ)."""
        import torch
        from transformers.modeling_outputs import BaseModelOutput

        v = self.vocab
        kwargs: dict = {}
        prefix = 1
        if v.multilingual:
            kwargs.update(language=list(languages), task=options.task)
            prefix += 2
        if options.prompt:
            kwargs["prompt_ids"] = torch.tensor(
                v.prompt_ids(options.prompt), device=self.model.device
            )
            prefix += len(kwargs["prompt_ids"])
        timestamps = options.timestamps != "none"
        with torch.inference_mode():
            encoded = self._encode(audios)
            out = self.model.generate(
                encoder_outputs=BaseModelOutput(last_hidden_state=encoded),
                return_timestamps=timestamps,
                # chunks are <= 30 s: one generate call, no seeking inside the window
                force_unique_generate_call=True,
                return_dict_in_generate=True,
                temperature=options.temperature,
                num_beams=options.num_beams,
                max_length=min(self.max_new_tokens, v.max_target_positions - prefix - 2),
                **kwargs,
            )
            generated = [self._generated(row) for row in out.sequences.tolist()]
            starts = [v.start_tokens(lang, options) for lang in languages]
            if not timestamps:
                starts = [s + [v.no_timestamps] for s in starts]
            scored = self._score(encoded, starts, generated)
            results = []
            for audio, tokens, (no_speech, logprobs) in zip(audios, generated, scored, strict=True):
                duration = len(audio) / v.sampling_rate
                result = chunk_result(v, tokens, logprobs, no_speech, duration, timestamps)
                snap_segments(result, audio, v.sampling_rate, self.silence_threshold_db)
                results.append(result)
            if options.timestamps == "word":
                self._add_words(encoded, languages, options, audios, results)
        return results

    def _score(self, encoded, starts: list[list[int]], generated: list[list[int]]):
        """(no-speech probability, log-probability of each generated token and EOT) per row."""
        import torch

        eot = self.vocab.eot
        rows = [s + g + [eot] for s, g in zip(starts, generated, strict=True)]
        width = max(len(r) for r in rows)
        ids = torch.tensor([r + [eot] * (width - len(r)) for r in rows], device=encoded.device)
        hidden = self.model.model.decoder(input_ids=ids, encoder_hidden_states=encoded)
        out = []
        for i, (row, start) in enumerate(zip(rows, starts, strict=True)):
            logprobs = self.model.proj_out(hidden.last_hidden_state[i, : len(row)]).float()
            logprobs = logprobs.log_softmax(-1)
            targets = torch.tensor(row[len(start) :], device=logprobs.device)
            picked = logprobs[len(start) - 1 : -1].gather(-1, targets[:, None])[:, 0]
            out.append((float(logprobs[0, self.vocab.no_speech].exp()), picked.cpu().numpy()))
        return out

    def _add_words(self, encoded, languages, options, audios, results: list[ChunkResult]) -> None:
        """Word timings by cross-attention DTW over each chunk's text tokens (OpenAI's method)."""
        import torch

        v = self.vocab
        texts = [[s.tokens for s in r.segments] for r in results]
        starts = [v.start_tokens(lang, options) + [v.no_timestamps] for lang in languages]
        rows = [
            s + [t for seg in tx for t in seg] + [v.eot]
            for s, tx in zip(starts, texts, strict=True)
        ]
        width = max(len(r) for r in rows)
        ids = torch.tensor([r + [v.eot] * (width - len(r)) for r in rows], device=encoded.device)
        previous = self.model.config._attn_implementation
        self.model.set_attn_implementation("eager")  # only eager attention returns weights
        try:
            out = self.model.model.decoder(
                input_ids=ids, encoder_hidden_states=encoded, output_attentions=True
            )
        finally:
            self.model.set_attn_implementation(previous)
        heads = torch.stack(
            [out.cross_attentions[layer][:, head] for layer, head in v.alignment_heads], 1
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
                v.pieces(text),
                probs,
                num_frames=len(audios[i]) * 50 // v.sampling_rate,
            )
            attach_words(result, texts[i], words)
