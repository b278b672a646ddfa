"""Whisper on CTranslate2 (task ``seq2seq``, engine kind ``ctranslate2``).

The same chunking, no-speech gate, language handling and result assembly as the
transformers engine (``ChunkedWhisperEngine``); only the decoder differs. Each padded
batch of chunks is encoded once, and the encoder output feeds language detection,
``generate`` and the word alignment. CTranslate2 runs int8 kernels with its own threads,
where transformers ``generate`` runs float32 with a Python loop per token.

Scores follow faster-whisper's reading of CTranslate2's results: a chunk's average
log-probability comes from ``generate``'s score (``score * len / (len + 1)``), and every
segment of the chunk carries that average. The no-speech probability is CTranslate2's at
the start-of-transcript position. With a prompt, both are read prompt-free instead (a
one-step ``generate`` for no-speech, the alignment's token probabilities for the text),
and sampled text is scored by the alignment too, so the no-speech gate reads the same
under every decoding mode, as in the transformers engine.
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
from sonaray_client.types import TranscriptionOptions

from deployments.errors import ConfigError, ModelNotFound
from deployments.models.ct2_cache import ct2_model_dir
from deployments.tasks.base import cpu_threads
from deployments.tasks.seq2seq import ChunkedWhisperEngine
from deployments.tasks.whisper_timestamps import words_from_path
from deployments.tasks.whisper_tokens import (
    ChunkResult,
    WhisperVocab,
    attach_words,
    chunk_result,
    snap_segments,
)

logger = logging.getLogger("sonaray.engine")

COMPUTE_TYPES = {
    "cpu": ("int8", "int8_float32", "float32"),
    "cuda": ("float16", "int8_float16", "int8", "int8_float32", "float32"),
}
DEFAULT_COMPUTE_TYPE = {"cpu": "int8", "cuda": "float16"}
HOP_LENGTH = 160  # feature frames are 10 ms; CTranslate2's alignment counts them


def ct2_device(prefer: str | None) -> str:
    """CUDA when CTranslate2 sees a GPU (Ray assigned one), else CPU."""
    import ctranslate2

    if prefer:
        return prefer
    if ctranslate2.get_cuda_device_count() > 0:
        return "cuda"
    logger.info("CTranslate2 sees no CUDA device: running on CPU")
    return "cpu"


class CT2WhisperDecoder:
    """Batched decoding for one CTranslate2 Whisper model and its vocabulary."""

    def __init__(
        self,
        model,
        vocab: WhisperVocab,
        *,
        max_new_tokens: int,
        floor_db: float,
        encode_batch_size: int | None,
    ):
        self.model = model
        self.vocab = vocab
        self.max_new_tokens = max_new_tokens
        self.floor_db = floor_db
        self.encode_batch_size = encode_batch_size  # 0 or None: the whole batch at once

    def _encode(self, audios: list[np.ndarray]):
        """The encoder output of a batch of chunks, encoded ``encode_batch_size`` at a time.

        On CPU a batched encode costs more per chunk than one chunk at a time (tiny.en
        int8, one thread: 0.46-0.67 s a chunk alone, 0.71-1.0 s each in a batch of 8), so
        the chunks are encoded one by one and their outputs stacked for one batched
        ``generate``.
        """
        import ctranslate2

        features = np.ascontiguousarray(self.vocab.features(audios), dtype=np.float32)
        step = self.encode_batch_size or len(features)
        if step >= len(features):
            return self.model.encode(ctranslate2.StorageView.from_array(features))
        parts = [
            np.asarray(
                self.model.encode(ctranslate2.StorageView.from_array(features[lo : lo + step]))
            )
            for lo in range(0, len(features), step)
        ]
        return ctranslate2.StorageView.from_array(np.ascontiguousarray(np.concatenate(parts)))

    def detect_language(self, audios: list[np.ndarray]) -> list[tuple[str, float]]:
        """(code, probability) per chunk: CTranslate2's best language token."""
        found = self.model.detect_language(self._encode(audios))
        return [(ranked[0][0][2:-2], float(ranked[0][1])) for ranked in found]

    def decode(
        self, audios: list[np.ndarray], languages: list[str | None], options: TranscriptionOptions
    ) -> list[ChunkResult]:
        """Decode one batch of chunks that share ``options`` (languages may differ)."""
        v = self.vocab
        timestamps = options.timestamps != "none"
        starts = [v.start_tokens(lang, options) for lang in languages]
        if not timestamps:
            starts = [s + [v.no_timestamps] for s in starts]
        prompt = v.prompt_ids(options.prompt) if options.prompt else []
        prompts = [prompt + s for s in starts]
        new_tokens = min(self.max_new_tokens, v.max_target_positions - len(prompts[0]))
        encoded = self._encode(audios)
        if options.temperature > 0:
            search = {"beam_size": 1, "sampling_topk": 0}
            search["sampling_temperature"] = options.temperature
        else:
            search = {"beam_size": options.num_beams}
        out = self.model.generate(
            encoded,
            prompts,
            max_length=len(prompts[0]) + new_tokens,
            return_scores=True,
            return_no_speech_prob=not prompt,
            **search,
        )
        if prompt:
            no_speech = [r.no_speech_prob for r in self._prompt_free_scores(encoded, starts)]
        else:
            no_speech = [r.no_speech_prob for r in out]
        tokens = [[t for t in r.sequences_ids[0] if t != v.eot] for r in out]
        averages = [r.scores[0] * len(t) / (len(t) + 1) for r, t in zip(out, tokens, strict=True)]
        if prompt or options.temperature > 0:
            # a prompt (or sampling's sharpened distribution) makes hallucinated text look
            # confident: score it after the prompt-free start, as the no-speech rule expects
            rows = [[t for t in row if t < v.eot] for row in tokens]
            for i, a in self._align(encoded, audios, languages, options, rows).items():
                averages[i] = float(np.mean(np.log(np.maximum(a.text_token_probs, 1e-10))))
        results = []
        for audio, row, avg, p_none in zip(audios, tokens, averages, no_speech, strict=True):
            logprobs = np.full(len(row) + 1, avg, dtype=np.float32)
            duration = len(audio) / v.sampling_rate
            result = chunk_result(v, row, logprobs, float(p_none), duration, timestamps)
            snap_segments(result, audio, v.sampling_rate, self.floor_db)
            results.append(result)
        if options.timestamps == "word":
            texts = [[s.tokens for s in r.segments] for r in results]
            rows = [[t for seg in tx for t in seg] for tx in texts]
            for i, a in self._align(encoded, audios, languages, options, rows).items():
                path = np.array(a.alignments, dtype=np.int64).reshape(-1, 2)
                probs = np.asarray(a.text_token_probs)
                words = words_from_path(path[:, 0], path[:, 1], v.pieces(rows[i]), probs)
                attach_words(results[i], texts[i], words)
        return results

    def _prompt_free_scores(self, encoded, starts: list[list[int]]):
        """One greedy step from the prompt-free start sequence: its no-speech probability."""
        return self.model.generate(
            encoded, starts, beam_size=1, max_length=len(starts[0]) + 1, return_no_speech_prob=True
        )

    def _align(self, encoded, audios, languages, options, rows: list[list[int]]) -> dict:
        """CTranslate2's alignment (token probabilities, DTW path) of each non-empty row.

        It takes one start sequence per call: chunks group by language, and a group that
        is not the whole batch is encoded again (mixed-language batches only).
        """
        groups: dict[tuple[int, ...], list[int]] = {}
        for i, lang in enumerate(languages):
            groups.setdefault(tuple(self.vocab.start_tokens(lang, options)), []).append(i)
        aligned = {}
        for start, members in groups.items():
            if not any(rows[i] for i in members):
                continue
            features = encoded if len(groups) == 1 else self._encode([audios[i] for i in members])
            results = self.model.align(
                features,
                list(start),
                [rows[i] or [self.vocab.eot] for i in members],  # a row needs a token
                [len(audios[i]) // HOP_LENGTH for i in members],
            )
            aligned.update((i, a) for i, a in zip(members, results, strict=True) if rows[i])
        return aligned


class CT2WhisperEngine(ChunkedWhisperEngine):
    """Whisper on CTranslate2: a CT2 directory as it is, or a transformers one converted once."""

    def __init__(
        self,
        path: str | Path,
        *,
        name: str,
        device: str | None = None,
        compute_type: str | None = None,
        num_threads: int | None = None,
        max_audio_seconds: float | None = None,
        max_batch_size: int = 16,
        encode_batch_size: int | None = None,
        max_new_tokens: int = 224,
        silence_threshold_db: float = -50.0,
        no_speech_threshold: float = 0.6,
        logprob_threshold: float = -1.0,
        compression_ratio_threshold: float = 2.4,
    ):
        import ctranslate2

        self.device = ct2_device(device)
        self.compute_type = compute_type or DEFAULT_COMPUTE_TYPE[self.device]
        if self.compute_type not in COMPUTE_TYPES.get(self.device, ()):
            raise ConfigError(
                f"compute_type {self.compute_type!r} is not offered on {self.device}; "
                f"choose one of {list(COMPUTE_TYPES.get(self.device, ()))}"
            )
        try:
            vocab = WhisperVocab.from_pretrained(path)
            model = ctranslate2.models.Whisper(
                str(ct2_model_dir(path)),
                device=self.device,
                compute_type=self.compute_type,
                intra_threads=cpu_threads(num_threads),
            )
        except (OSError, RuntimeError) as exc:
            raise ModelNotFound(f"cannot load Whisper model {path}: {exc}", param="model") from exc
        if vocab.multilingual and not model.is_multilingual:
            # CTranslate2 reads a model as multilingual from its vocabulary size (51865+);
            # without that it detects no language, so the model serves English only
            logger.warning("%s: CTranslate2 sees an English-only vocabulary", name)
            vocab.multilingual = False
        if encode_batch_size is None:  # the device's default; see CT2WhisperDecoder._encode
            encode_batch_size = 1 if self.device == "cpu" else None
        decoder = CT2WhisperDecoder(
            model,
            vocab,
            max_new_tokens=max_new_tokens,
            floor_db=silence_threshold_db,
            encode_batch_size=encode_batch_size,
        )
        super().__init__(
            decoder,
            name=name,
            max_audio_seconds=max_audio_seconds,
            max_batch_size=max_batch_size,
            silence_threshold_db=silence_threshold_db,
            no_speech_threshold=no_speech_threshold,
            logprob_threshold=logprob_threshold,
            compression_ratio_threshold=compression_ratio_threshold,
        )
