"""Voice activity detection with Silero VAD (ONNX), a second ``frames`` engine.

The store holds Silero's sequence export: one ONNX call scores a whole block of 512-sample
windows, each prefixed with the previous window's last 64 samples, carrying the LSTM
state (h, c) from block to block. Its state has batch size one, so items cannot share a
call; each item keeps its own state and costs one call per block of up to 4096 windows
(131 s). Probabilities become segments through the shared ``probabilities_to_segments``.

A realtime session sends ``VadBlock`` items instead: whole windows of a live stream with
the session's state, scored in one call and answered with the state to send next.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import ClassVar

import numpy as np
import onnxruntime as ort
from sonaray_client.types import SpeechSegments, VadOptions

from deployments.errors import InvalidAudio, ModelNotFound
from deployments.protocol import AudioItem
from deployments.tasks.base import check_audio, model_dir
from deployments.tasks.segments import probabilities_to_segments
from deployments.tasks.vad_stream import VadBlock, VadScores, VadState

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

    def forward(self, items: list[AudioItem[VadOptions] | VadBlock]) -> list:
        """Speech segments of each clip, or scores and next state of each block, in order."""
        return [
            self.score_block(item) if isinstance(item, VadBlock) else self.segments(item)
            for item in items
        ]

    def segments(self, item: AudioItem[VadOptions]) -> SpeechSegments:
        audio = check_audio(item, self.sampling_rate, max_seconds=self.max_seconds)
        duration = audio.size / self.sampling_rate
        segments = probabilities_to_segments(
            self.probabilities(audio),
            self.window / self.sampling_rate,
            item.options or VadOptions(),
            duration,
        )
        return SpeechSegments(segments=segments, duration=duration, model=self.name)

    def score_block(self, block: VadBlock) -> VadScores:
        """Score a live stream's next whole windows, carrying the session's state."""
        if block.sampling_rate != self.sampling_rate:
            raise InvalidAudio(
                f"VAD blocks must be at {self.sampling_rate} Hz, not {block.sampling_rate} Hz"
            )
        audio = np.ascontiguousarray(block.audio, dtype=np.float32)
        if audio.ndim != 1 or audio.size % self.window:
            raise InvalidAudio(f"a VAD block is a whole number of {self.window}-sample windows")
        state = block.state or VadState(
            np.zeros(STATE_SHAPE, np.float32),
            np.zeros(STATE_SHAPE, np.float32),
            np.zeros(self.context, np.float32),
        )
        if audio.size == 0:
            return VadScores(np.zeros(0, np.float32), state, self.window)
        frames = audio.reshape(-1, self.window)
        probs, h, c = self._run(frames, state.context, state.h, state.c)
        return VadScores(probs, VadState(h, c, frames[-1, -self.context :].copy()), self.window)

    def probabilities(self, audio: np.ndarray) -> np.ndarray:
        """Speech probability of each 512-sample window of ``audio`` (the last one zero-padded)."""
        count = -(-audio.size // self.window)
        frames = np.zeros((count, self.window), dtype=np.float32)
        frames.reshape(-1)[: audio.size] = audio
        zeros = np.zeros(STATE_SHAPE, dtype=np.float32)
        return self._run(frames, np.zeros(self.context, np.float32), zeros, zeros)[0]

    def _run(
        self, frames: np.ndarray, context: np.ndarray, h: np.ndarray, c: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Windows -> probabilities; each window sees the samples before it, as the
        streaming model does (the first one sees ``context``)."""
        before = np.empty((len(frames), self.context), dtype=np.float32)
        before[0] = context
        before[1:] = frames[:-1, -self.context :]
        windows = np.concatenate([before, frames], axis=1)
        probs = []
        for start in range(0, len(frames), self.block_windows):
            block = windows[start : start + self.block_windows]
            p, h, c = self.session.run(None, {"input": block, "h": h, "c": c})
            probs.append(p)
        return np.concatenate(probs).reshape(-1), h, c
