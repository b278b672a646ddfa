"""The baseline of ``batching.py``: one engine behind Ray Serve's own ``@serve.batch``.

This is how Sonaray's task deployments batched before the batch queue
(``deployments/serving/batch_queue.py``): the same engine, the same replica resources,
only the batching differs. Deployed as a second app of the benchmark's cluster
(``import_path: benchmarks.serve_batch_baseline:build``) and driven through handles,
like the task deployment it is compared with.
"""

from __future__ import annotations

import asyncio
from typing import Any

from ray import serve


@serve.deployment
class ServeBatchEngine:
    """``engine.forward`` behind ``@serve.batch``; records each batch's size."""

    def __init__(
        self, task: str, engine: str, path: str, name: str, max_batch_size: int, wait_s: float
    ):
        from deployments.tasks.base import cpu_threads, set_torch_threads
        from deployments.tasks.registry import load_engine

        set_torch_threads(cpu_threads(None))
        self.engine = load_engine(task, engine, path, name=name)
        self.batch_sizes: list[int] = []
        self.__call__.set_max_batch_size(max_batch_size)
        self.__call__.set_batch_wait_timeout_s(wait_s)

    @serve.batch(max_batch_size=8, batch_wait_timeout_s=0.0)
    async def __call__(self, items: list[Any]) -> list[Any]:
        self.batch_sizes.append(len(items))
        return await asyncio.to_thread(self.engine.forward, items)

    def stats(self) -> dict:
        return {"batch_sizes": self.batch_sizes}


def build(args: dict[str, Any]):
    """The app: ``args`` are ServeBatchEngine's constructor arguments."""
    return ServeBatchEngine.bind(**args)
