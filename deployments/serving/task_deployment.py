"""One generic Ray Serve deployment that serves any task engine, batched across requests.

Each task family is this class bound under its task id (``seq2seq``, ``frames``, ...).
Requests for several models of one task are routed with Serve model multiplexing, and
the batch queue (``batch_queue.BatchQueue``) splits batches by multiplexed model id, so
one forward pass never mixes models.
"""

from __future__ import annotations

import asyncio
import logging
import os
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

import ray
from ray import serve
from ray.serve.metrics import Counter, Histogram
from sonaray_client.types import ModelCard

from deployments.errors import ModelError, ModelNotFound, SonarayError
from deployments.models.store import built_at, resolve
from deployments.serving.batch_queue import BatchQueue
from deployments.serving.heap import HeapTrimmer
from deployments.serving.load_board import ReplicaLoad, report_forever
from deployments.tasks.base import set_torch_threads
from deployments.tasks.registry import load_engine

logger = logging.getLogger("ray.serve")

BATCH_BUCKETS = [1, 2, 4, 8, 16, 32, 64]
UNHEALTHY_AFTER_FAILED_BATCHES = 5
SECONDS_BUCKETS = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30]


@dataclass(frozen=True)
class ServedModel:
    """What a task deployment needs to load one model (plain data, cheap to pickle)."""

    name: str
    ref: str
    engine: str | None
    options: dict[str, Any]


@dataclass
class Failed:
    """A per-item failure carried out of a batch, so one bad item fails only its caller."""

    error: BaseException


class BatchingConfig:
    """The live-tunable part of a task deployment (Serve ``user_config``)."""

    FIELDS = {"max_batch_size": int, "batch_wait_timeout_s": float}

    @classmethod
    def validate(cls, user_config: dict) -> dict:
        unknown = set(user_config) - set(cls.FIELDS)
        if unknown:
            raise ValueError(
                f"unknown user_config field(s) {sorted(unknown)}; known: {list(cls.FIELDS)}"
            )
        return {k: cls.FIELDS[k](v) for k, v in user_config.items()}


@serve.deployment
class TaskDeployment:
    """Serves one task family: loads its engines, batches requests, reports metrics."""

    async def __init__(
        self,
        task: str,
        models: list[ServedModel],
        default: str,
        num_threads: int | None = None,
        board: Any = None,
    ):
        self.task = task
        self.models = {m.name: m for m in models}
        self.default = default
        self._started = int(time.time())
        set_torch_threads(num_threads or _cpu_share())
        self._loaded: set[str] = set()
        tags = ("task", "model")
        self._batch_size = Histogram(
            "sonaray_batch_size", "Items per forward pass.", boundaries=BATCH_BUCKETS, tag_keys=tags
        )
        self._queue_time = Histogram(
            "sonaray_queue_seconds",
            "Time from arrival to batch start.",
            boundaries=SECONDS_BUCKETS,
            tag_keys=tags,
        )
        self._model_time = Histogram(
            "sonaray_model_seconds",
            "Forward-pass time per batch.",
            boundaries=SECONDS_BUCKETS,
            tag_keys=tags,
        )
        self._errors = Counter(
            "sonaray_errors", "Failed items by error code.", tag_keys=(*tags, "code")
        )
        self.last_batch_sizes: list[int] = []
        self.in_flight = 0
        self.items_forwarded = 0
        self._failing_batches = 0
        self._queue = BatchQueue(self.infer, max_batch_size=8)
        # Batches run one at a time, always on this one thread: the engine's native
        # buffers (torch, CTranslate2, onnxruntime) and malloc's per-thread arenas are then
        # reused batch after batch instead of growing one set per pool thread.
        self._model_thread = ThreadPoolExecutor(max_workers=1, thread_name_prefix=f"{task}-model")
        self._heap = HeapTrimmer()
        self._default_engine = await self.get_engine(default)
        # In-flight items and service time per item, for the routers' time-bound admission.
        self.load = ReplicaLoad()
        if board is not None:
            self._reporter = asyncio.create_task(report_forever(board, task, self.load))

    @serve.multiplexed(max_num_models_per_replica=4)
    async def get_engine(self, model_id: str):
        """Load (or reuse) the engine of one model; Serve evicts the least recently used."""
        spec = self.models.get(model_id)
        if spec is None:
            raise ModelNotFound(f"task {self.task!r} serves no model {model_id!r}", param="model")
        resolved = resolve(spec.ref, engine=spec.engine)
        started = time.perf_counter()
        engine = await asyncio.to_thread(
            load_engine, self.task, resolved.engine, resolved.path, name=model_id, **spec.options
        )
        logger.info(
            "loaded %s (%s) in %.1fs", model_id, resolved.engine, time.perf_counter() - started
        )
        self._loaded.add(model_id)
        return engine

    def reconfigure(self, user_config: dict) -> None:
        self._queue.configure(**BatchingConfig.validate(user_config))

    async def __call__(self, item: Any) -> Any:
        """Run one request item through the batch queue; raises its typed error."""
        model_id = serve.get_multiplexed_model_id() or self.default
        self.in_flight += 1
        try:
            with self.load.track():
                result = await self._queue.submit(model_id, item)
        finally:
            self.in_flight -= 1  # cancelled too: a caller that left holds nothing here
        if isinstance(result, Failed):
            raise result.error
        return result

    async def infer(self, model_id: str, items: list[Any], arrived: list[float]) -> list[Any]:
        """One batch of one model's items (the queue's handler); per-item results."""
        tags = {"task": self.task, "model": model_id}
        start = time.perf_counter()
        for t in arrived:
            self._queue_time.observe(start - t, tags=tags)
        self._batch_size.observe(len(items), tags=tags)
        self.last_batch_sizes = (self.last_batch_sizes + [len(items)])[-256:]
        self.items_forwarded += len(items)
        engine = await self.get_engine(model_id)
        results = await asyncio.get_running_loop().run_in_executor(
            self._model_thread, self._forward_isolated, engine, items
        )
        self._model_time.observe(time.perf_counter() - start, tags=tags)
        self.load.served(len(items), time.perf_counter() - start)
        if self._heap.due():  # on the model thread after this batch: the next one waits 5-15 ms
            self._model_thread.submit(self._heap.trim)
        broken = 0
        for r in results:
            if isinstance(r, Failed):
                code = getattr(r.error, "code", None) or "internal"
                self._errors.inc(tags={**tags, "code": code})
                broken += isinstance(r.error, ModelError)
        # Count batches where the model failed every item: bad input fails alone, a
        # broken model (e.g. a wedged GPU) fails everything.
        self._failing_batches = self._failing_batches + 1 if broken == len(results) else 0
        return results

    @staticmethod
    def _forward_isolated(engine: Any, items: list[Any]) -> list[Any]:
        """Forward a batch; if it fails, retry one by one so only the bad items fail."""
        try:
            return list(engine.forward(items))
        except Exception as exc:
            if len(items) == 1:
                return [Failed(_as_sonaray_error(engine, exc))]
        out: list[Any] = []
        for item in items:
            try:
                out.extend(engine.forward([item]))
            except Exception as exc:
                out.append(Failed(_as_sonaray_error(engine, exc)))
        return out

    def stats(self) -> dict:
        """Recent batch sizes, requests in flight, items run, loaded models (tests and
        operators read this)."""
        return {
            "task": self.task,
            "batch_sizes": list(self.last_batch_sizes),
            "in_flight": self.in_flight,
            "items_forwarded": self.items_forwarded,
            "loaded": sorted(self._loaded),
            "pid": os.getpid(),
            "gpu_ids": [str(g) for g in ray.get_gpu_ids()],
            "resources": ray.get_runtime_context().get_assigned_resources(),
            "node_id": ray.get_runtime_context().get_node_id(),
            "actor_name": ray.get_runtime_context().get_actor_name(),
            "device": str(getattr(self._default_engine, "device", "cpu")),
        }

    async def model_cards(self) -> list[ModelCard]:
        """One card per model, with what its engine offers (voices, speakers): each model
        is loaded to read them, so listing a task's models warms them all."""
        cards = []
        for name, spec in self.models.items():
            engine = await self.get_engine(name)
            voices = getattr(engine, "voices", None)
            cards.append(
                ModelCard(
                    id=name,
                    created=built_at(spec.ref) or self._started,
                    task=self.task,
                    default=name == self.default,
                    sampling_rate=engine.sampling_rate,
                    voices=list(voices) if voices else None,
                    speakers=getattr(engine, "speaker_labels", None),
                )
            )
        return cards

    def check_health(self) -> None:
        """Unhealthy after consecutive batches the model failed entirely: Serve replaces us."""
        if self._failing_batches >= UNHEALTHY_AFTER_FAILED_BATCHES:
            raise RuntimeError(
                f"{self.task}: the model failed {self._failing_batches} batches in a row"
            )

    async def voices(self) -> list[str]:
        """The voices of the requested model (multiplexed id); empty where it has none."""
        model_id = serve.get_multiplexed_model_id() or self.default
        return list(getattr(await self.get_engine(model_id), "voices", None) or [])

    async def sampling_rate(self) -> int:
        """The rate of the requested model (multiplexed id): audio sent here must be at it."""
        model_id = serve.get_multiplexed_model_id() or self.default
        return (await self.get_engine(model_id)).sampling_rate


def _as_sonaray_error(engine: Any, exc: BaseException) -> BaseException:
    if isinstance(exc, SonarayError):
        return exc
    logger.exception("model %s failed", getattr(engine, "name", "?"), exc_info=exc)
    return ModelError(f"model {getattr(engine, 'name', '?')} failed: {type(exc).__name__}: {exc}")


def _cpu_share() -> int:
    """Threads for torch: the CPUs Ray gave this replica (at least 1)."""
    try:
        cpus = ray.get_runtime_context().get_assigned_resources().get("CPU", 1)
    except Exception:
        cpus = 1
    return max(1, int(round(cpus)))
