"""What every replica is doing right now, gathered in one place the routers read cheaply.

Each task replica counts its in-flight items and keeps an EWMA of the service time per
item (batch seconds / batch size, so it falls as batches fill), and pushes that to the
app's ``LoadBoard`` every half second; routers push their in-flight requests. A router
reads the whole board in one call from a background loop, never per request, and the
launcher reads it to know when a drain is done. ``draining`` is the switch that makes
every router refuse new requests while in-flight ones finish.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from ray import serve

logger = logging.getLogger("ray.serve")

BOARD = "LoadBoard"
REPORT_EVERY_S = 0.5
# A replica silent for this long is gone (killed, replaced): its figures no longer count.
STALE_AFTER_S = 3.0
EWMA_WEIGHT = 0.2


@dataclass(frozen=True)
class ReplicaReport:
    """One replica's figures: ``task`` is a task id, or ``Router``."""

    task: str
    replica: str
    in_flight: int
    seconds_per_item: float | None
    served_items: int
    rss_bytes: int
    private_bytes: int
    node_id: str
    at: float


class ReplicaLoad:
    """The figures a replica reports about itself (no Ray: counted in the replica)."""

    def __init__(self) -> None:
        self.in_flight = 0
        self.served_items = 0
        self.seconds_per_item: float | None = None

    @contextlib.contextmanager
    def track(self) -> Iterator[None]:
        """Count one item (or request) in flight for as long as the block runs."""
        self.in_flight += 1
        try:
            yield
        finally:
            self.in_flight -= 1

    def served(self, items: int, seconds: float) -> None:
        """Record one batch of ``items`` that took ``seconds``."""
        self.served_items += items
        per_item = seconds / max(1, items)
        old = self.seconds_per_item
        self.seconds_per_item = per_item if old is None else old + EWMA_WEIGHT * (per_item - old)


def process_memory() -> tuple[int, int]:
    """This process's resident memory, and the private (anonymous) part of it.

    The resident figure also counts the object-store pages a replica has read arguments
    from (Ray's shared memory): they grow as the replica touches more of the store, and
    stop at the store's size. The private figure is the process's own heap, where a leak
    shows. (Linux /proc; zeros where there is none.)
    """
    fields = {}
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            key, _, value = line.partition(":")
            if key in ("VmRSS", "RssAnon"):
                fields[key] = int(value.split()[0]) * 1024
    except (OSError, IndexError, ValueError):
        return 0, 0
    return fields.get("VmRSS", 0), fields.get("RssAnon", 0)


async def report_forever(board, task: str, load: ReplicaLoad) -> None:
    """Push this replica's figures to the board until the replica stops."""
    context = serve.get_replica_context()
    replica = context.replica_id.unique_id
    import ray

    node_id = ray.get_runtime_context().get_node_id()
    while True:
        report = ReplicaReport(
            task,
            replica,
            load.in_flight,
            load.seconds_per_item,
            load.served_items,
            *process_memory(),
            node_id,
            time.time(),
        )
        try:
            await asyncio.wait_for(board.report.remote(report), timeout=2.0)
        except Exception as exc:  # the board restarting must not take a replica down
            logger.debug("load report failed: %s", exc)
        await asyncio.sleep(REPORT_EVERY_S)


@dataclass(frozen=True)
class BoardSnapshot:
    """The board as a router reads it: fresh reports only."""

    reports: tuple[ReplicaReport, ...]
    draining: bool
    at: float

    def of(self, task: str) -> list[ReplicaReport]:
        return [r for r in self.reports if r.task == task]

    def in_flight(self) -> int:
        return sum(r.in_flight for r in self.reports)


@serve.deployment
class LoadBoard:
    """One small replica per app holding the latest report of every replica."""

    def __init__(self) -> None:
        self._reports: dict[str, ReplicaReport] = {}
        self._draining = False

    def report(self, report: ReplicaReport) -> None:
        self._reports[report.replica] = report

    def snapshot(self) -> BoardSnapshot:
        now = time.time()
        self._reports = {k: r for k, r in self._reports.items() if now - r.at < STALE_AFTER_S}
        return BoardSnapshot(tuple(self._reports.values()), self._draining, now)

    def drain(self) -> None:
        """From now on every router refuses new requests (503): the app is going away."""
        self._draining = True
