"""What every task engine shares: the Engine protocol, audio checks, device and threads.

Engines are plain Python (no Ray): ``load`` once, then ``forward(items) -> results``,
batch-first, same length and order as ``items``. Audio arrives as float32 mono at the
engine's ``sampling_rate``; the router has already decoded and resampled it.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import ClassVar, Protocol, TypeVar, runtime_checkable

import numpy as np

from deployments.errors import InvalidAudio, PayloadTooLarge
from deployments.protocol import AudioItem

logger = logging.getLogger("sonaray.engine")

InT = TypeVar("InT", contravariant=True)
OutT = TypeVar("OutT", covariant=True)


@runtime_checkable
class Engine(Protocol[InT, OutT]):
    """A loaded model for one task family."""

    task: ClassVar[str]
    name: str
    sampling_rate: int

    def forward(self, items: list[InT]) -> list[OutT]: ...


def pick_device(prefer: str | None = None) -> str:
    """CUDA when torch sees a GPU (Ray assigned one), else CPU with a log line saying so."""
    import torch

    if prefer:
        return prefer
    if torch.cuda.is_available():
        return "cuda"
    gpus = os.environ.get("CUDA_VISIBLE_DEVICES")
    if gpus:
        logger.warning("GPU %s assigned but torch sees no CUDA device: running on CPU", gpus)
    else:
        logger.info("no GPU assigned: running on CPU")
    return "cpu"


def cpu_threads(num_threads: int | None) -> int:
    """Threads for a model: ``num_threads``, else the replica's CPU share.

    Ray sets ``OMP_NUM_THREADS`` to a replica's ``num_cpus``; outside Ray, every core.
    """
    if num_threads is None:
        num_threads = int(os.environ.get("OMP_NUM_THREADS", "0")) or (os.cpu_count() or 1)
    return max(1, num_threads)


def set_torch_threads(num_threads: int | None) -> None:
    """Match torch's intra-op threads to the replica's CPU share (Ray's num_cpus)."""
    import torch

    torch.set_num_threads(cpu_threads(num_threads))


def check_audio(
    item: AudioItem, sampling_rate: int, *, min_seconds: float = 0.0, max_seconds: float | None
) -> np.ndarray:
    """Raise a typed error for audio an engine cannot use; return it as contiguous float32."""
    audio = item.audio
    if item.sampling_rate != sampling_rate:
        raise InvalidAudio(
            f"audio is at {item.sampling_rate} Hz; this model takes {sampling_rate} Hz",
            param="file",
        )
    if not isinstance(audio, np.ndarray) or audio.ndim != 1:
        raise InvalidAudio("audio must be a 1-D mono array", param="file")
    if audio.size == 0:
        raise InvalidAudio("audio is empty", param="file")
    seconds = audio.size / sampling_rate
    if seconds < min_seconds:
        raise InvalidAudio(
            f"audio is {seconds:.3f}s long; at least {min_seconds}s needed", param="file"
        )
    if max_seconds is not None and seconds > max_seconds:
        raise PayloadTooLarge(
            f"audio is {seconds:.1f}s long; the limit is {max_seconds}s", param="file"
        )
    if not np.all(np.isfinite(audio)):
        raise InvalidAudio("audio contains NaN or infinite samples", param="file")
    return np.ascontiguousarray(audio, dtype=np.float32)


def model_dir(path: str | Path) -> Path:
    """A local model directory, or a typed error naming it."""
    p = Path(path)
    if not p.is_dir():
        from deployments.errors import ModelNotFound

        raise ModelNotFound(f"model directory {p} does not exist")
    return p
