"""Voice activity detection with Silero VAD (ONNX), a second ``frames`` engine.

The store holds Silero's sequence export: one ONNX call scores a whole block of 512-sample
windows, each prefixed with the previous window's last 64 samples, carrying the LSTM
state (h, c) from block to block. Its state has batch size one, so items cannot share a
call; each item keeps its own state and costs one call per block of up to 4096 windows
(131 s). Probabilities become segments through the shared ``probabilities_to_segments``.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import ClassVar

import numpy as np
import onnxruntime as ort
from sonaray_client.types import SpeechSegments, VadOptions

from deployments.errors import ModelNotFound
from deployments.protocol import AudioItem
from deployments.tasks.base import check_audio, model_dir
from deployments.tasks.segments import probabilities_to_segments

logger = logging.getLogger("sonaray.engine.silero")

STATE_SHAPE = (1, 1, 128)


class SileroVadEngine:
    """A store ``silero-vad`` directory (``sonaray.json`` + ONNX) as a ``frames`` engine.

    Runs on CPU whatever ``device`` says: the model is 1 MB and a GPU round trip per block
    costs more than the LSTM itself.
    """

    task: ClassVar[str] = "frames"

    def __init__(
        self,
        path: str | Path,
        *,
        name: str,
        device: str | None = None,
        max_seconds: float | None = None,
        block_windows: int = 4096,
        threads: int = 1,
    ):
        root = model_dir(path)
        config_file = root / "sonaray.json"
        if not config_file.is_file():
            raise ModelNotFound(f"{root} has no sonaray.json: build it with the silero-vad recipe")
        config = json.loads(config_file.read_text())
        if device not in (None, "cpu"):
            logger.info("Silero VAD runs on CPU (asked for %s)", device)
        options = ort.SessionOptions()
        # One thread per replica: scale Silero out with replicas, not intra-op threads.
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
        self.session = ort.InferenceSession(
            str(root / config["model"]), sess_options=options, providers=["CPUExecutionProvider"]
        )
        self.name = name
        self.sampling_rate: int = config["sampling_rate"]
        self.window: int = config["window"]
        self.context: int = config["context"]
        self.max_seconds = max_seconds
        self.block_windows = block_windows

    def forward(self, items: list[AudioItem[VadOptions]]) -> list[SpeechSegments]:
        """Speech segments of each item, in order."""
        audios = [
            check_audio(item, self.sampling_rate, max_seconds=self.max_seconds) for item in items
        ]
        frame_seconds = self.window / self.sampling_rate
        results = []
        for item, audio in zip(items, audios, strict=True):
            duration = audio.size / self.sampling_rate
            segments = probabilities_to_segments(
                self.probabilities(audio), frame_seconds, item.options or VadOptions(), duration
            )
            results.append(SpeechSegments(segments=segments, duration=duration, model=self.name))
        return results

    def probabilities(self, audio: np.ndarray) -> np.ndarray:
        """Speech probability of each 512-sample window of ``audio`` (the last one zero-padded)."""
        count = -(-audio.size // self.window)
        frames = np.zeros((count, self.window), dtype=np.float32)
        frames.reshape(-1)[: audio.size] = audio
        # Each window sees the 64 samples before it, as the streaming model does.
        context = np.zeros((count, self.context), dtype=np.float32)
        context[1:] = frames[:-1, -self.context :]
        windows = np.concatenate([context, frames], axis=1)
        h = np.zeros(STATE_SHAPE, dtype=np.float32)
        c = np.zeros(STATE_SHAPE, dtype=np.float32)
        probs = []
        for start in range(0, count, self.block_windows):
            block = windows[start : start + self.block_windows]
            p, h, c = self.session.run(None, {"input": block, "h": h, "c": c})
            probs.append(p)
        return np.concatenate(probs).reshape(-1)
