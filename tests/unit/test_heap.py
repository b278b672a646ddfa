"""The heap trimmer gives freed memory back, on a schedule."""

from __future__ import annotations

import sys

import pytest

from deployments.serving.heap import HeapTrimmer
from deployments.serving.load_board import process_memory

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc and /proc")


def private_mib() -> int:
    return process_memory()[1] // 2**20


def test_trim_returns_freed_heap_that_malloc_kept():
    blocks = [bytearray(64 * 1024) for _ in range(3200)]  # 200 MiB below mmap's threshold
    pinned = bytearray(64 * 1024)  # allocated last, so freeing the rest leaves a hole
    del blocks
    kept = private_mib()
    HeapTrimmer(every_s=0).trim()
    assert private_mib() < kept - 100
    del pinned


def test_a_trim_is_due_at_most_once_per_period():
    assert not HeapTrimmer(every_s=3600).due()
    now = HeapTrimmer(every_s=0)
    assert now.due() and now.due()
