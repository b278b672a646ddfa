"""Text to speech with a Piper VITS voice (ONNX), a second ``tts`` engine beside transformers.

Text is phonemized offline by the espeak-ng bridge bundled in the ``piper-tts`` wheel and
split into sentences; the sentences of every item in a batch are run together, grouped by
speed and sorted by length, and each sentence's audio is cut to its true length using the
phoneme durations the voice computes (exposed as an extra ONNX output at load time).
"""

from __future__ import annotations

import json
import logging
import os
from collections import defaultdict
from pathlib import Path
from typing import ClassVar

import numpy as np
import onnxruntime as ort
from piper.config import PiperConfig
from piper.voice import PiperVoice
from sonaray_client.types import SpeechOptions

from deployments.errors import InvalidRequest, ModelNotFound
from deployments.tasks.base import TextItem, Waveform, check_text, model_dir

logger = logging.getLogger("sonaray.engine.piper")

# Longer espeak sentences are cut at word boundaries: VITS attention cost grows with the
# square of the phoneme count, and a run-on text should not become one huge forward pass.
MAX_SENTENCE_PHONEMES = 400
PEAK = 0.95


def _providers(device: str | None) -> list[str]:
    """ONNX Runtime providers: CUDA only when asked for and this onnxruntime build has it."""
    if device == "cuda" and "CUDAExecutionProvider" in ort.get_available_providers():
        return ["CUDAExecutionProvider", "CPUExecutionProvider"]
    if device == "cuda":
        logger.warning("CUDA requested but onnxruntime has no CUDA provider: running on CPU")
    return ["CPUExecutionProvider"]


def _load_session(model: Path, device: str | None, threads: int | None) -> ort.InferenceSession:
    """The voice's session with the phoneme durations (piper's ``w_ceil``) as a second output."""
    model_bytes: str | bytes = str(model)
    try:
        import onnx
        from piper.patch_voice_with_alignment import add_alignment_output

        proto = onnx.load(str(model))
        add_alignment_output(proto)
        model_bytes = proto.SerializeToString()
    except ImportError:
        logger.warning("onnx is not installed: Piper sentences run one at a time")
    except ValueError:
        pass  # the voice file already exposes its durations
    options = ort.SessionOptions()
    threads = threads or int(os.environ.get("OMP_NUM_THREADS", "0"))
    if threads:
        options.intra_op_num_threads = threads
    return ort.InferenceSession(model_bytes, sess_options=options, providers=_providers(device))


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
        self.name = name
        self.voice = PiperVoice(session=_load_session(models[0], device, threads), config=config)
        self.sampling_rate = config.sample_rate
        self.voices: tuple[str, ...] = (models[0].name.removesuffix(".onnx"),)
        self.max_chars = max_chars
        self.max_batch_sentences = max_batch_sentences
        self.sentence_silence_s = sentence_silence_s
        self.noise_scale = config.noise_scale if noise_scale is None else noise_scale
        self.noise_w_scale = config.noise_w_scale if noise_w_scale is None else noise_w_scale
        self._has_durations = len(self.voice.session.get_outputs()) > 1

    def forward(self, items: list[TextItem[SpeechOptions]]) -> list[Waveform]:
        """Speak each item's text; one waveform per item, in order."""
        sentences = [self._preprocess(item.options) for item in items]
        # Jobs that share a speed share a forward pass: ``scales`` is one tensor per call.
        by_scale: dict[float, list[tuple[int, int]]] = defaultdict(list)
        for i, (item, ids) in enumerate(zip(items, sentences, strict=True)):
            length_scale = self.voice.config.length_scale / item.options.speed
            by_scale[length_scale].extend((i, j) for j in range(len(ids)))
        audio: dict[tuple[int, int], np.ndarray] = {}
        batch_size = self.max_batch_sentences if self._has_durations else 1
        for length_scale, jobs in by_scale.items():
            jobs.sort(key=lambda job: len(sentences[job[0]][job[1]]))
            for start in range(0, len(jobs), batch_size):
                batch = jobs[start : start + batch_size]
                outputs = self._run([sentences[i][j] for i, j in batch], length_scale)
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
            for piece in _split_long(sentence, MAX_SENTENCE_PHONEMES)
        ]
        ids = [self.voice.phonemes_to_ids(piece) for piece in pieces]
        if not ids:
            raise InvalidRequest("text has nothing to speak", param="input")
        return ids

    def _run(self, batch: list[list[int]], length_scale: float) -> list[np.ndarray]:
        """One padded forward pass; each output trimmed to its own length."""
        lengths = np.array([len(ids) for ids in batch], dtype=np.int64)
        inputs = np.zeros((len(batch), lengths.max()), dtype=np.int64)
        for row, ids in zip(inputs, batch, strict=True):
            row[: len(ids)] = ids
        scales = np.array([self.noise_scale, length_scale, self.noise_w_scale], dtype=np.float32)
        outputs = self.voice.session.run(
            None, {"input": inputs, "input_lengths": lengths, "scales": scales}
        )
        wave = outputs[0].reshape(len(batch), -1)
        if not self._has_durations:
            return [wave[0]]
        # The padded tail of a shorter row is decoder output, not silence: cut it off.
        samples = outputs[1].reshape(len(batch), -1).sum(axis=1) * self.voice.config.hop_length
        return [row[: int(n)] for row, n in zip(wave, samples, strict=True)]

    def _postprocess(self, pieces: list[np.ndarray], count: int) -> Waveform:
        """Join sentences with short silences and normalize the peak."""
        gap = np.zeros(int(self.sentence_silence_s * self.sampling_rate), dtype=np.float32)
        joined = [part for piece in pieces for part in (piece, gap)][:-1]
        audio = np.concatenate(joined).astype(np.float32)
        peak = float(np.abs(audio).max()) if audio.size else 0.0
        if peak > 1e-8:
            audio *= PEAK / peak
        return Waveform(
            audio, self.sampling_rate, extras={"voice": self.voices[0], "sentences": count}
        )
