"""Whisper speech recognition (task ``seq2seq``): batched ``model.generate`` over 30 s chunks.

Long audio (> 30 s) is cut into <= 30 s chunks in the middle of the longest pause near
each window's end, and all chunks of all requests are decoded in padded batches. Where
Whisper opens a segment it cannot finish (output ends ``<|t|><|t|>``), the rest of the
chunk from ``t`` is decoded again, as the sequential algorithm would seek there. Measured
against transformers' sequential long-form ``generate`` (full-length features,
``truncation=False, padding="longest", return_attention_mask=True``) on the 90 s Piper
clip, Whisper tiny.en, greedy, 2 shared CPU cores (``benchmarks/asr_batching.py``):
chunked 3.47 s wall (RTF 26.0), every reference word found; sequential 4.75 s
(RTF 19.0), 98.5 % of the words found. Chunks are independent, so they also batch across
requests and a request's result does not depend on what else is in its batch.

Each chunk passes a no-speech gate, because Whisper hallucinates ("you", "Thank you.")
on silence and low noise, worst with beam search and prompts:
1. energy: a chunk whose loudest 20 ms frame is below ``silence_threshold_db``, or that
   is shorter than ``MIN_SPEECH_SECONDS`` (too short to hold a word), is never decoded;
2. Whisper's rule: ``no_speech_prob > no_speech_threshold`` and either the chunk's
   average token log-probability ``< logprob_threshold`` or its text's compression ratio
   ``> compression_ratio_threshold`` (a repetition loop) drops the chunk's text. These
   come from one teacher-forced decoder pass over the prompt-free start sequence and the
   decoded tokens, so the rule reads the same under greedy, beams, sampling or prompts.
"""

from __future__ import annotations

import threading
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar, Protocol

import numpy as np
from sonaray_client.types import Transcription, TranscriptionOptions, TranscriptSegment, WordTiming

from deployments.errors import InvalidRequest, ModelNotFound
from deployments.protocol import AudioItem
from deployments.tasks.base import check_audio, pick_device, set_torch_threads
from deployments.tasks.whisper_decode import WhisperDecoder
from deployments.tasks.whisper_timestamps import peak_dbfs, plan_chunks
from deployments.tasks.whisper_tokens import ChunkResult, WhisperVocab

CHUNK_SECONDS = 30.0
# Whisper counts window offsets (OpenAI's `seek`) in 10 ms mel frames.
FRAMES_PER_SECOND = 100

# Whisper hears a word ("you") in a few milliseconds of anything; no real word is this short.
MIN_SPEECH_SECONDS = 0.1


@dataclass
class Chunk:
    """A <= 30 s piece of one request's audio."""

    item: int
    offset: float
    audio: np.ndarray
    language: str | None = None
    result: ChunkResult | None = None


def _group_key(o: TranscriptionOptions) -> tuple:
    """Options that must be equal for chunks to share one ``generate`` call."""
    return (o.task, o.prompt or "", o.temperature, o.num_beams, o.timestamps)


class ChunkDecoder(Protocol):
    """Decodes padded batches of <= 30 s chunks; one per engine kind (transformers, ct2)."""

    vocab: WhisperVocab

    def detect_language(self, audios: list[np.ndarray]) -> list[tuple[str, float]]: ...

    def decode(
        self, audios: list[np.ndarray], languages: list[str | None], options: TranscriptionOptions
    ) -> list[ChunkResult]: ...


class ChunkedWhisperEngine:
    """The seq2seq task over any ChunkDecoder: chunking, gating, languages, assembly."""

    task: ClassVar[str] = "seq2seq"

    def __init__(
        self,
        decoder: ChunkDecoder,
        *,
        name: str,
        max_audio_seconds: float | None,
        max_batch_size: int,
        silence_threshold_db: float,
        no_speech_threshold: float,
        logprob_threshold: float,
        compression_ratio_threshold: float,
    ):
        self.name = name
        self.decoder = decoder
        self.vocab = decoder.vocab
        self.sampling_rate: int = decoder.vocab.sampling_rate
        self.max_audio_seconds = max_audio_seconds
        self.max_batch_size = max_batch_size
        self.silence_threshold_db = silence_threshold_db
        self.no_speech_threshold = no_speech_threshold
        self.logprob_threshold = logprob_threshold
        self.compression_ratio_threshold = compression_ratio_threshold
        # forward runs in worker threads (asyncio.to_thread); attention-mode switches for
        # word timing and generate's config copies must not interleave
        self._lock = threading.Lock()

    @property
    def multilingual(self) -> bool:
        return self.vocab.multilingual

    def check_options(self, options: TranscriptionOptions | None) -> TranscriptionOptions:
        """Raise InvalidRequest (with ``param``) for options this model cannot honour."""
        o = options if options is not None else TranscriptionOptions()
        if not isinstance(o, TranscriptionOptions):
            raise InvalidRequest("options must be TranscriptionOptions", param="options")
        if o.task == "translate" and not self.multilingual:
            raise InvalidRequest(
                f"{self.name} is English-only and cannot translate; use a multilingual model",
                param="task",
            )
        if o.language is not None:
            code = self.vocab.language_code(o.language)
            if code is None:
                raise InvalidRequest(
                    f"language {o.language!r} is not supported by {self.name}", param="language"
                )
            o = o.model_copy(update={"language": code})
        if o.num_beams > 1 and o.temperature > 0:
            raise InvalidRequest(
                "beam search is deterministic: use num_beams > 1 with temperature 0, "
                "or sampling (temperature > 0) with num_beams 1",
                param="num_beams",
            )
        if o.timestamps == "word" and not self.vocab.has_alignment_heads:
            raise InvalidRequest(
                f"{self.name} has no alignment heads, so no word timestamps", param="timestamps"
            )
        return o

    def forward(self, items: list[AudioItem[TranscriptionOptions]]) -> list[Transcription]:
        """Transcribe a batch of requests; same length and order as ``items``."""
        checked = [
            (
                check_audio(it, self.sampling_rate, max_seconds=self.max_audio_seconds),
                self.check_options(it.options),
            )
            for it in items
        ]
        chunks = [
            Chunk(i, start / self.sampling_rate, audio[start:end], language=options.language)
            for i, (audio, options) in enumerate(checked)
            for start, end in plan_chunks(audio, self.sampling_rate, max_seconds=CHUNK_SECONDS)
        ]
        loud = [
            c
            for c in chunks
            if len(c.audio) >= MIN_SPEECH_SECONDS * self.sampling_rate
            and peak_dbfs(c.audio, self.sampling_rate) >= self.silence_threshold_db
        ]
        with self._lock:
            detected = self._detect_languages(loud, [o for _, o in checked])
            pending = loud
            while pending:
                self._decode(pending, [o for _, o in checked])
                pending = [tail for c in pending if (tail := self._tail(c)) is not None]
                chunks.extend(pending)
        chunks.sort(key=lambda c: c.offset)
        return [
            self._assemble(i, audio, options, [c for c in chunks if c.item == i], detected.get(i))
            for i, (audio, options) in enumerate(checked)
        ]

    def _decode(self, chunks: list[Chunk], options: list[TranscriptionOptions]) -> None:
        """Decode chunks in padded batches of chunks whose options allow one generate call."""
        groups: dict[tuple, list[Chunk]] = defaultdict(list)
        for c in chunks:
            groups[_group_key(options[c.item])].append(c)
        for members in groups.values():
            shared = options[members[0].item]
            for lo in range(0, len(members), self.max_batch_size):
                batch = members[lo : lo + self.max_batch_size]
                audios, languages = [c.audio for c in batch], [c.language for c in batch]
                for c, r in zip(batch, self.decoder.decode(audios, languages, shared), strict=True):
                    c.result = r

    def _tail(self, c: Chunk) -> Chunk | None:
        """The rest of a chunk after the segment Whisper opened but did not finish, if audible."""
        if c.result is None or c.result.resume_at is None or not self._is_speech(c.result):
            return None
        rest = c.audio[int(c.result.resume_at * self.sampling_rate) :]
        if peak_dbfs(rest, self.sampling_rate) < self.silence_threshold_db:
            return None
        return Chunk(c.item, c.offset + c.result.resume_at, rest, language=c.language)

    def _detect_languages(
        self, loud: list[Chunk], options: list[TranscriptionOptions]
    ) -> dict[int, tuple[str, float]]:
        """Detect each request's language on its first audible chunk; set it on all its chunks."""
        if not self.multilingual:
            return {i: ("en", 1.0) for i in range(len(options))}
        firsts: dict[int, Chunk] = {}
        for c in loud:
            if options[c.item].language is None:
                firsts.setdefault(c.item, c)
        detected: dict[int, tuple[str, float]] = {}
        todo = list(firsts.values())
        for lo in range(0, len(todo), self.max_batch_size):
            batch = todo[lo : lo + self.max_batch_size]
            for c, found in zip(
                batch, self.decoder.detect_language([c.audio for c in batch]), strict=True
            ):
                detected[c.item] = found
        for c in loud:
            if c.item in detected:
                c.language = detected[c.item][0]
        return detected

    def _is_speech(self, r: ChunkResult) -> bool:
        """Whisper's no-speech rule on one decoded chunk, with a repetition loop as low confidence.

        A prompt can make a hallucinated loop ("a test test test ...") confident enough to
        pass the log-probability test; Whisper's compression-ratio test catches it.
        """
        doubtful = (
            r.avg_logprob < self.logprob_threshold
            or r.compression_ratio > self.compression_ratio_threshold
        )
        return not (r.no_speech_prob > self.no_speech_threshold and doubtful)

    def _assemble(
        self,
        index: int,
        audio: np.ndarray,
        options: TranscriptionOptions,
        chunks: list[Chunk],
        detected: tuple[str, float] | None,
    ) -> Transcription:
        language, probability = detected or (options.language, None)
        if options.language is not None:
            language, probability = options.language, 1.0
        segments: list[TranscriptSegment] = []
        words: list[WordTiming] = []
        for c in chunks:
            if c.result is None or not self._is_speech(c.result):
                continue
            for seg in c.result.segments:
                seg_words = [
                    WordTiming(
                        word=w.text,
                        start=round(c.offset + w.start, 3),
                        end=round(c.offset + w.end, 3),
                        probability=round(w.probability, 4),
                    )
                    for w in seg.words
                ]
                words.extend(seg_words)
                segments.append(
                    TranscriptSegment(
                        id=len(segments),
                        start=round(c.offset + seg.start, 3),
                        end=round(c.offset + seg.end, 3),
                        text=seg.text,
                        avg_logprob=round(seg.avg_logprob, 4),
                        no_speech_prob=round(c.result.no_speech_prob, 4),
                        words=seg_words if options.timestamps == "word" else None,
                        tokens=seg.tokens,
                        seek=round(c.offset * FRAMES_PER_SECOND),
                    )
                )
        return Transcription(
            text=" ".join(s.text for s in segments if s.text),
            language=language,
            language_probability=None if probability is None else round(probability, 4),
            duration=round(len(audio) / self.sampling_rate, 3),
            segments=segments,
            words=words if options.timestamps == "word" else None,
            model=self.name,
        )


class WhisperEngine(ChunkedWhisperEngine):
    """Whisper (any ``AutoModelForSpeechSeq2Seq`` Whisper checkpoint) on transformers."""

    def __init__(
        self,
        path: str | Path,
        *,
        name: str,
        device: str | None = None,
        num_threads: int | None = None,
        max_audio_seconds: float | None = None,
        max_batch_size: int = 16,
        max_new_tokens: int = 224,
        silence_threshold_db: float = -50.0,
        no_speech_threshold: float = 0.6,
        logprob_threshold: float = -1.0,
        compression_ratio_threshold: float = 2.4,
    ):
        import torch
        from transformers import AutoModelForSpeechSeq2Seq, AutoProcessor

        self.device = pick_device(device)
        if self.device == "cpu":
            set_torch_threads(num_threads)
        # fp16 halves CPU speed; on GPU it halves memory at no accuracy cost for Whisper
        dtype = torch.float32 if self.device == "cpu" else torch.float16
        try:
            processor = AutoProcessor.from_pretrained(str(path))
            model = AutoModelForSpeechSeq2Seq.from_pretrained(str(path), dtype=dtype)
        except OSError as exc:
            raise ModelNotFound(f"cannot load Whisper model {path}: {exc}", param="model") from exc
        decoder = WhisperDecoder(
            model.to(self.device).eval(),
            processor,
            max_new_tokens=max_new_tokens,
            silence_threshold_db=silence_threshold_db,
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
