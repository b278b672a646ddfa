"""Text to speech with a Piper VITS voice (ONNX), a second ``tts`` engine beside transformers.

Text is phonemized offline by the espeak-ng bridge bundled in the ``piper-tts`` wheel and
split into sentences; the sentences of every item in a batch are run together, grouped by
speed and sorted by length, and each sentence's audio is cut to its true length using the
phoneme durations the voice computes (exposed as an extra ONNX output at load time). A
second, durations-only graph calibrates the length scale so ``speed`` really divides the
duration (down to the voice's floor of one frame per phoneme id, reached near speed 3).
"""

from __future__ import annotations

import json
import logging
import os
from collections import defaultdict
from pathlib import Path
from typing import ClassVar

import numpy as np
import onnx
import onnxruntime as ort
from piper.config import PiperConfig
from piper.patch_voice_with_alignment import add_alignment_output
from piper.voice import PiperVoice
from sonaray_client.types import SpeechOptions

from deployments.errors import InvalidRequest, ModelNotFound
from deployments.protocol import TextItem, Waveform, check_text
from deployments.tasks.base import model_dir

logger = logging.getLogger("sonaray.engine.piper")

PEAK = 0.95


def _providers(device: str | None) -> list[str]:
    """ONNX Runtime providers: CUDA only when asked for and this onnxruntime build has it."""
    if device == "cuda" and "CUDAExecutionProvider" in ort.get_available_providers():
        return ["CUDAExecutionProvider", "CPUExecutionProvider"]
    if device == "cuda":
        logger.warning("CUDA requested but onnxruntime has no CUDA provider: running on CPU")
    return ["CPUExecutionProvider"]


def _load_sessions(
    model: Path, device: str | None, threads: int | None
) -> tuple[ort.InferenceSession, ort.InferenceSession]:
    """The voice with its phoneme durations as a second output, and its durations alone.

    The durations-only graph (text encoder + duration predictor, ~5% of the compute) is
    what lets ``speed`` be honoured: see ``PiperEngine._length_scale``.
    """
    proto = onnx.load(str(model))
    ceil = next((node for node in proto.graph.node if node.op_type == "Ceil"), None)
    if ceil is None:
        raise ModelNotFound(f"{model} is not a Piper VITS voice: no duration (Ceil) node")
    inputs = [tensor.name for tensor in proto.graph.input]
    durations = onnx.utils.Extractor(proto).extract_model(inputs, [ceil.input[0]])
    if ceil.output[0] not in {tensor.name for tensor in proto.graph.output}:
        add_alignment_output(proto, ceil.output[0])
    options = ort.SessionOptions()
    threads = threads or int(os.environ.get("OMP_NUM_THREADS", "0"))
    if threads:
        options.intra_op_num_threads = threads
    providers = _providers(device)
    return (
        ort.InferenceSession(proto.SerializeToString(), sess_options=options, providers=providers),
        ort.InferenceSession(
            durations.SerializeToString(), sess_options=options, providers=providers
        ),
    )


def _split_long(phonemes: list[str], limit: int) -> list[list[str]]:
    """Cut a phoneme sentence into pieces of at most ``limit``, at spaces where possible."""
    pieces = []
    while len(phonemes) > limit:
        cut = max((i for i, p in enumerate(phonemes[:limit]) if p == " "), default=limit - 1)
        pieces.append(phonemes[: cut + 1])
        phonemes = phonemes[cut + 1 :]
    return [*pieces, phonemes] if phonemes else pieces


class PiperEngine:
    """A Piper voice directory (``<voice>.onnx`` + ``<voice>.onnx.json``) as a ``tts`` engine.

    Piper draws its noise inside the ONNX graph, so ``SpeechOptions.seed`` cannot fix it;
    pass ``noise_scale=0, noise_w_scale=0`` for repeatable output.
    """

    task: ClassVar[str] = "tts"

    def __init__(
        self,
        path: str | Path,
        *,
        name: str,
        device: str | None = None,
        max_chars: int | None = 4096,
        max_batch_sentences: int = 16,
        max_sentence_phonemes: int = 400,
        sentence_silence_s: float = 0.25,
        noise_scale: float | None = None,
        noise_w_scale: float | None = None,
        threads: int | None = None,
    ):
        root = model_dir(path)
        models = sorted(root.glob("*.onnx"))
        if len(models) != 1 or not Path(f"{models[0]}.json").is_file():
            raise ModelNotFound(
                f"{root} must hold one Piper voice: <voice>.onnx + <voice>.onnx.json"
            )
        config = PiperConfig.from_dict(json.loads(Path(f"{models[0]}.json").read_text()))
        if config.num_speakers > 1:
            raise ModelNotFound(
                f"{models[0]} is a multi-speaker voice; only single-speaker voices are supported"
            )
        session, self._durations = _load_sessions(models[0], device, threads)
        self.name = name
        self.voice = PiperVoice(session=session, config=config)
        self.sampling_rate = config.sample_rate
        self.voices: tuple[str, ...] = (models[0].name.removesuffix(".onnx"),)
        self.max_chars = max_chars
        self.max_batch_sentences = max_batch_sentences
        # Longer sentences are cut at word boundaries: attention cost grows with the square
        # of the phoneme count, and a run-on text should not become one huge forward pass.
        self.max_sentence_phonemes = max_sentence_phonemes
        self.sentence_silence_s = sentence_silence_s
        self.noise_scale = config.noise_scale if noise_scale is None else noise_scale
        self.noise_w_scale = config.noise_w_scale if noise_w_scale is None else noise_w_scale

    def forward(self, items: list[TextItem[SpeechOptions]]) -> list[Waveform]:
        """Speak each item's text; one waveform per item, in order."""
        sentences = [self._preprocess(item.options) for item in items]
        # Jobs that share a speed share a forward pass: ``scales`` is one tensor per call.
        by_speed: dict[float, list[tuple[int, int]]] = defaultdict(list)
        for i, (item, ids) in enumerate(zip(items, sentences, strict=True)):
            by_speed[item.options.speed].extend((i, j) for j in range(len(ids)))
        audio: dict[tuple[int, int], np.ndarray] = {}
        for speed, jobs in by_speed.items():
            jobs.sort(key=lambda job: len(sentences[job[0]][job[1]]))
            for start in range(0, len(jobs), self.max_batch_sentences):
                batch = jobs[start : start + self.max_batch_sentences]
                outputs = self._run([sentences[i][j] for i, j in batch], speed)
                audio.update(zip(batch, outputs, strict=True))
        return [
            self._postprocess([audio[(i, j)] for j in range(len(ids))], len(ids))
            for i, ids in enumerate(sentences)
        ]

    def _preprocess(self, options: SpeechOptions) -> list[list[int]]:
        """Validate one request and turn its text into phoneme-id sentences."""
        text = check_text(options.input, max_chars=self.max_chars)
        if options.voice is not None and options.voice not in self.voices:
            raise InvalidRequest(
                f"unknown voice {options.voice!r}; this model has: {', '.join(self.voices)}",
                param="voice",
            )
        pieces = [
            piece
            for sentence in self.voice.phonemize(text)
            for piece in _split_long(sentence, self.max_sentence_phonemes)
        ]
        ids = [self.voice.phonemes_to_ids(piece) for piece in pieces]
        if not ids:
            raise InvalidRequest("text has nothing to speak", param="input")
        return ids

    def _run(self, batch: list[list[int]], speed: float) -> list[np.ndarray]:
        """One padded forward pass; each output trimmed to its own length."""
        lengths = np.array([len(ids) for ids in batch], dtype=np.int64)
        inputs = np.zeros((len(batch), lengths.max()), dtype=np.int64)
        for row, ids in zip(inputs, batch, strict=True):
            row[: len(ids)] = ids
        feed = {"input": inputs, "input_lengths": lengths}
        length_scale = self._length_scale(feed, speed)
        scales = np.array([self.noise_scale, length_scale, self.noise_w_scale], dtype=np.float32)
        wave, frames = self.voice.session.run(None, {**feed, "scales": scales})
        # The padded tail of a shorter row is decoder output, not silence: cut it off.
        samples = frames.reshape(len(batch), -1).sum(axis=1) * self.voice.config.hop_length
        return [row[: int(n)] for row, n in zip(wave.reshape(len(batch), -1), samples, strict=True)]

    def _length_scale(self, feed: dict[str, np.ndarray], speed: float) -> float:
        """The length scale that makes this batch ``speed`` times shorter than at speed 1.

        Each phoneme lasts ``ceil(duration * length_scale)`` frames, at least one, so
        ``length_scale / speed`` alone gives speed 2 only ~1.5x shorter audio. Instead, find
        (by bisection on the predicted durations) the scale whose total frames hit the target.
        """
        base = self.voice.config.length_scale
        if speed == 1.0:
            return base
        scales = np.array([self.noise_scale, base, self.noise_w_scale], dtype=np.float32)
        durations = self._durations.run(None, {**feed, "scales": scales})[0]
        target = np.ceil(durations).sum() / speed
        # At ``high`` every phoneme's frames reach its share of the target, ceil or not.
        low, high = 0.0, (1.0 + np.count_nonzero(durations) / durations.sum()) / speed
        for _ in range(30):
            middle = (low + high) / 2
            low, high = (
                (middle, high) if np.ceil(durations * middle).sum() < target else (low, middle)
            )
        return base * high

    def _postprocess(self, pieces: list[np.ndarray], count: int) -> Waveform:
        """Join sentences with short silences and normalize the peak."""
        gap = np.zeros(int(self.sentence_silence_s * self.sampling_rate), dtype=np.float32)
        joined = [part for piece in pieces for part in (piece, gap)][:-1]
        audio = np.concatenate(joined).astype(np.float32)
        peak = float(np.abs(audio).max()) if audio.size else 0.0
        if peak > 1e-8:
            audio *= PEAK / peak
        return Waveform(
            audio,
            self.sampling_rate,
            extras={
                "voice": self.voices[0],
                "sentences": count,
                "sentence_gap_s": self.sentence_silence_s,
            },
        )
