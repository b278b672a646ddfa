"""A batching queue that fills while the model is busy and starts the moment it is free.

Ray Serve 2.60's ``@serve.batch`` forms the next batch while the current one runs, then
parks it: only requests that arrive within ``batch_wait_timeout_s`` join it, so a busy
replica runs small batches, and an idle one waits the timeout before every request.
Here one worker per replica runs one batch at a time; whatever arrived meanwhile (up to
``max_batch_size``, one model id per batch) is the next batch, taken as soon as the
previous one returns. An idle replica starts a lone request at once. An optional
``batch_wait_timeout_s`` > 0 tops up a batch that is not full before it starts.

Measured against ``@serve.batch`` on the same engine (``benchmarks/batching.py``, through
handles, Whisper tiny.en CTranslate2, one thread, 2026-12-02): mean batch 6.9 against 4.8
with 16 callers, and 1.32x / 1.22x / 1.08x the requests per second at 1 / 4 / 16 callers
(``@serve.batch`` with the 20 ms wait it shipped with; the two ran one after the other,
so part of the gap at 1 caller, more than the wait, is the machine's drift).
"""

from __future__ import annotations

import asyncio
import time
from collections import deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

BatchHandler = Callable[[str, list[Any], list[float]], Awaitable[list[Any]]]


@dataclass
class _Pending:
    key: str
    item: Any
    arrived: float
    future: asyncio.Future


class BatchQueue:
    """Batches ``submit(key, item)`` calls into ``handler(key, items, arrival_times)``.

    ``handler`` returns one result per item, in order; an exception it raises fails
    every caller of that batch (per-item isolation is the handler's job).
    """

    def __init__(
        self, handler: BatchHandler, *, max_batch_size: int = 8, batch_wait_timeout_s: float = 0.0
    ):
        self._handler = handler
        self.max_batch_size = max_batch_size
        self.batch_wait_timeout_s = batch_wait_timeout_s
        self._pending: deque[_Pending] = deque()
        self._worker: asyncio.Task | None = None
        self._arrival: asyncio.Event | None = None

    def configure(
        self, *, max_batch_size: int | None = None, batch_wait_timeout_s: float | None = None
    ) -> None:
        """Live tuning (Serve ``user_config``): applies from the next batch on."""
        if max_batch_size is not None:
            if max_batch_size < 1:
                raise ValueError("max_batch_size must be at least 1")
            self.max_batch_size = max_batch_size
        if batch_wait_timeout_s is not None:
            if batch_wait_timeout_s < 0:
                raise ValueError("batch_wait_timeout_s must be >= 0")
            self.batch_wait_timeout_s = batch_wait_timeout_s

    async def submit(self, key: str, item: Any) -> Any:
        """Queue one item under ``key`` (a model id) and wait for its result."""
        loop = asyncio.get_running_loop()
        if self._arrival is None:
            self._arrival = asyncio.Event()
        pending = _Pending(key, item, time.perf_counter(), loop.create_future())
        self._pending.append(pending)
        self._arrival.set()
        if self._worker is None or self._worker.done():
            self._worker = loop.create_task(self._run())
        return await pending.future

    async def _run(self) -> None:
        while self._pending:
            if self.batch_wait_timeout_s > 0:
                await self._top_up()
            batch = self._take()
            if not batch:
                continue
            try:
                results = await self._handler(
                    batch[0].key, [p.item for p in batch], [p.arrived for p in batch]
                )
            except Exception as exc:
                for p in batch:
                    if not p.future.done():
                        p.future.set_exception(exc)
                continue
            for p, result in zip(batch, results, strict=True):
                if not p.future.done():
                    p.future.set_result(result)

    def _waiting(self, key: str) -> int:
        return sum(p.key == key for p in self._pending)

    async def _top_up(self) -> None:
        """Wait up to ``batch_wait_timeout_s`` for the first key's batch to fill."""
        assert self._arrival is not None
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.batch_wait_timeout_s
        key = self._pending[0].key
        while self._waiting(key) < self.max_batch_size:
            left = deadline - loop.time()
            if left <= 0:
                return
            self._arrival.clear()
            try:
                await asyncio.wait_for(self._arrival.wait(), left)
            except asyncio.TimeoutError:
                return

    def _take(self) -> list[_Pending]:
        """Up to ``max_batch_size`` live items of the oldest item's key, oldest first."""
        while self._pending and self._pending[0].future.done():  # caller went away
            self._pending.popleft()
        if not self._pending:
            return []
        key = self._pending[0].key
        batch: list[_Pending] = []
        rest: deque[_Pending] = deque()
        for p in self._pending:
            if p.key == key and len(batch) < self.max_batch_size and not p.future.done():
                batch.append(p)
            elif not p.future.done():
                rest.append(p)
        self._pending = rest
        return batch
