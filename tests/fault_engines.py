"""Engines for reliability tests: slow on purpose, and broken on demand.

They plug in through the registry's ``module:callable`` engine kind, so a live cluster
serves them through the real TaskDeployment, batch queue and router without model
weights: each batch sleeps a fixed time (a stand-in for a forward pass that the load
estimate can measure), and a replica can be made to fail every batch.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

import numpy as np
from sonaray_client.types import SpeechSegment, SpeechSegments, Transcription

MODULE = "fault_engines"
RATE = 16000
POISON = f"/tmp/sonaray-poison-{os.environ.get('SONARAY_TEST_PORT', '8123')}"
ITEM_SECONDS = 0.25
MAX_QUEUE_SECONDS = 2.0
SEGMENT_SECONDS = 4.0


class SleepyTranscriber:
    """``seq2seq`` engine: each item takes ``item_seconds`` of a batch's forward, batched
    or alone (so a batch re-run item by item costs what it did); says how long its audio
    was.

    If the file ``poison`` exists when a batch starts, this replica claims it (renames it
    away, so no other replica and no replacement sees it) and fails every batch from then
    on: a broken model, as a wedged GPU would be. An item whose first sample is exactly 0.5 is a
    bad item: it fails alone.
    """

    task = "seq2seq"

    def __init__(self, path: str, *, name: str, item_seconds: float = 0.25, poison: str = ""):
        self.name = name
        self.sampling_rate = RATE
        self.item_seconds = item_seconds
        self.poison = poison
        self.broken = False

    def forward(self, items: list) -> list[Transcription]:
        if self.poison and not self.broken and Path(self.poison).exists():
            try:
                os.rename(self.poison, f"{self.poison}.claimed-by-{os.getpid()}")
                self.broken = True
            except FileNotFoundError:
                pass  # another replica claimed it first
        time.sleep(self.item_seconds * len(items))
        if self.broken:
            raise RuntimeError("injected fault: this replica's model is broken")
        if any(len(i.audio) and i.audio[0] == 0.5 for i in items):
            raise ValueError("injected fault: a bad item")
        return [
            Transcription(text=f"{len(i.audio) / RATE:.1f}s", duration=len(i.audio) / RATE)
            for i in items
        ]


class SegmentEveryFewSeconds:
    """``frames`` engine: one speech segment per ``segment_seconds`` (so one ASR chunk
    each), instantly."""

    task = "frames"

    def __init__(self, path: str, *, name: str, segment_seconds: float = SEGMENT_SECONDS):
        self.name = name
        self.sampling_rate = RATE
        self.segment_seconds = segment_seconds

    def forward(self, items: list) -> list[SpeechSegments]:
        out = []
        for item in items:
            duration = len(item.audio) / RATE
            starts = np.arange(0.0, duration, self.segment_seconds)
            ends = np.minimum(starts + self.segment_seconds - 1.0, duration)
            pairs = zip(starts, ends, strict=True)
            segments = [SpeechSegment(start=float(s), end=float(e)) for s, e in pairs]
            out.append(SpeechSegments(segments=segments, duration=duration))
        return out


def faults_app(route_prefix: str = "/faults") -> dict:
    """A Serve config application of the sleepy transcriber and a VAD that cuts long
    audio into 4 s chunks: two replicas of 4-item batches at 0.25 s an item (8 items/s)."""
    source = str(Path(__file__).resolve().parent)  # any directory: the engines load nothing
    models = [
        {
            "name": "sleepy",
            "task": "seq2seq",
            "source": source,
            "engine": f"{MODULE}:SleepyTranscriber",
            "options": {"item_seconds": ITEM_SECONDS, "poison": POISON},
        },
        {
            "name": "cutter",
            "task": "frames",
            "source": source,
            "engine": f"{MODULE}:SegmentEveryFewSeconds",
        },
    ]
    small = {"num_cpus": 0.1, "num_gpus": 0}
    return {
        "name": "faults",
        "route_prefix": route_prefix,
        "import_path": "deployments.app:build_app",
        "args": {
            "models": models,
            "pipelines": {"cut-and-transcribe": ["frames", "seq2seq"]},
            "limits": {
                "long_audio_seconds": 5.0,
                "chunk_seconds": SEGMENT_SECONDS,
                "max_queue_seconds": MAX_QUEUE_SECONDS,
            },
            "auth": {"api_keys_env": None},
        },
        "deployments": [
            {"name": "Router", "ray_actor_options": {"num_cpus": 0.1}},
            {
                "name": "seq2seq",
                "num_replicas": 2,
                "ray_actor_options": small,
                "user_config": {"max_batch_size": 4, "batch_wait_timeout_s": 0.01},
                "health_check_period_s": 1,
                "health_check_timeout_s": 10,
            },
            {"name": "frames", "ray_actor_options": small},
        ],
    }


def sine(seconds: float, first: float | None = None) -> np.ndarray:
    """Audible test audio; ``first`` sets the first sample (0.5 marks a bad item)."""
    t = np.arange(int(seconds * RATE)) / RATE
    audio = (0.1 * np.sin(2 * np.pi * 220 * t)).astype(np.float32)
    if first is not None:
        audio[0] = first
    return audio


def elapsed(since: float) -> float:
    return time.perf_counter() - since
