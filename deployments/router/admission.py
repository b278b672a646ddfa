"""Admission bounded by time: refuse at once what would wait too long in a task's queue.

The wait a new item would see on a task is its queue (items in flight on that task's
replicas) over the task's drain rate (the sum of each replica's items per second, from
its measured seconds per item). Both come from the LoadBoard, which a background loop
reads every half second; the router adds the calls it sent itself since the figures were
reported, so a burst is counted before the next report arrives. A new replica that has not yet
measured anything is counted at the median speed of its siblings, so adding replicas
raises the rate at once. Where nothing is measured yet the router admits: the time bound
only refuses what the cluster's own figures say it cannot serve in time.
"""

from __future__ import annotations

import asyncio
import logging
import math
import statistics
import time
from collections import defaultdict, deque
from collections.abc import Callable

from deployments.errors import Overloaded
from deployments.serving.load_board import (
    REPORT_EVERY_S,
    STALE_AFTER_S,
    BoardSnapshot,
    ReplicaLoad,
)

logger = logging.getLogger("ray.serve")


def queue_wait(snapshot: BoardSnapshot | None, task: str, sent_since: int = 0) -> float:
    """Seconds a new item on ``task`` would wait (0 where nothing is measured yet)."""
    if snapshot is None:
        return 0.0
    replicas = snapshot.of(task)
    measured = [r.seconds_per_item for r in replicas if r.seconds_per_item]
    if not measured:
        return 0.0
    typical = statistics.median(measured)
    rate = sum(1.0 / (r.seconds_per_item or typical) for r in replicas)
    queued = sum(r.in_flight for r in replicas) + max(0, sent_since)
    return queued / rate


def service_time(snapshot: BoardSnapshot | None, task: str) -> float:
    """Seconds one item takes on ``task`` once it runs (0 where unmeasured)."""
    if snapshot is None:
        return 0.0
    measured = [r.seconds_per_item for r in snapshot.of(task) if r.seconds_per_item]
    return statistics.median(measured) if measured else 0.0


class Admission:
    """One router replica's view of the cluster's queues, and its admission decisions."""

    def __init__(
        self, max_queue_seconds: float | None, on_reject: Callable[[str, str], None] | None = None
    ) -> None:
        self.max_queue_seconds = max_queue_seconds
        self.on_reject = on_reject  # (task, reason): the router counts refusals in a metric
        self.snapshot: BoardSnapshot | None = None
        self.load = ReplicaLoad()  # this router's requests, reported for drains
        self._read_at = 0.0  # when the snapshot was read (time.monotonic())
        # When this router sent each recent call, per task: those sent after the figures
        # in the snapshot were reported are not in them yet. Times, not a running count,
        # so nothing needs undoing when a call ends, however it ends.
        self._sent: dict[str, deque[float]] = defaultdict(deque)

    @property
    def draining(self) -> bool:
        return self.snapshot is not None and self.snapshot.draining

    def update(self, snapshot: BoardSnapshot) -> None:
        self.snapshot = snapshot
        self._read_at = time.monotonic()

    def wait(self, task: str) -> float:
        # A report is up to one period older than the read: count sends from then on.
        since = self._read_at - REPORT_EVERY_S
        sent = self._sent[task]
        while sent and sent[0] < since - STALE_AFTER_S:
            sent.popleft()
        return queue_wait(self.snapshot, task, sum(1 for t in sent if t >= since))

    def check(self, tasks: list[str], deadline: float | None = None) -> None:
        """Raise Overloaded when the request would queue past the bound or its deadline."""
        try:
            self._check(tasks, deadline)
        except Overloaded as refused:
            if self.on_reject is not None:
                self.on_reject(tasks[0], refused.code or "overloaded")
            raise

    def _check(self, tasks: list[str], deadline: float | None) -> None:
        if self.draining:
            raise Overloaded("the server is shutting down; retry shortly", code="draining")
        waits = {task: self.wait(task) for task in tasks}
        task, wait = max(waits.items(), key=lambda kv: kv[1])
        bound = self.max_queue_seconds
        if bound is not None and wait > bound:
            raise _overloaded(
                f"task {task!r} is busy: a new request would wait ~{wait:.1f}s in its queue; "
                f"the bound is {bound:g}s",
                "queue_full",
                wait - bound,
            )
        if deadline is not None:
            needed = wait + sum(service_time(self.snapshot, t) for t in tasks)
            left = deadline - time.monotonic()
            if needed > left:
                raise _overloaded(
                    f"the request's deadline ({max(0.0, left):.1f}s left) cannot be met: "
                    f"~{needed:.1f}s of queue and work ahead",
                    "deadline_unmeetable",
                    needed - left,
                )

    def sending(self, task: str) -> None:
        """Note one call from this router to ``task``, sent now."""
        self._sent[task].append(time.monotonic())

    async def refresh_forever(self, board) -> None:
        """Read the board every half second."""
        while True:
            try:
                self.update(await asyncio.wait_for(board.snapshot.remote(), timeout=2.0))
            except Exception as exc:  # a restarting board: keep the last view
                logger.debug("load board unavailable: %s", exc)
            await asyncio.sleep(REPORT_EVERY_S)


def _overloaded(message: str, code: str, excess_s: float) -> Overloaded:
    return Overloaded(message, code=code, retry_after_s=max(1, math.ceil(excess_s)))
