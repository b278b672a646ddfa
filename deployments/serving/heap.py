"""Handing a replica's freed heap back to the OS.

A batch allocates buffers in proportion to its shape: a batch of eight 30 s chunks needs
a few hundred MiB of encoder outputs and cross-attention caches that one short clip does
not. glibc keeps what was freed for reuse, so a replica's resident memory climbs to the
largest batch it has ever run and stays there: memory that is no longer in use, but that
looks like a leak to anyone watching the replica (or its pod's memory limit). Trimming
the heap now and then makes resident memory follow what the replica holds.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import time
from collections.abc import Callable

# A trim takes 5-15 ms after a large batch; once every 10 s costs ~0.1 % of a busy replica.
TRIM_EVERY_S = 10.0


def _malloc_trim() -> Callable[[int], int] | None:
    """glibc's ``malloc_trim``, or None where the C library has none (musl, macOS)."""
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        trim = libc.malloc_trim
    except (OSError, AttributeError):
        return None
    trim.argtypes, trim.restype = [ctypes.c_size_t], ctypes.c_int
    return trim


class HeapTrimmer:
    """Trims the heap at most once every ``every_s`` seconds; call ``due`` after each batch."""

    def __init__(self, every_s: float = TRIM_EVERY_S):
        self.every_s = every_s
        self._trim = _malloc_trim()
        self._next = time.monotonic() + every_s

    def due(self) -> bool:
        """Whether a trim is due now (and, if so, the next one is ``every_s`` away)."""
        if self._trim is None or time.monotonic() < self._next:
            return False
        self._next = time.monotonic() + self.every_s
        return True

    def trim(self) -> None:
        """Return free heap pages to the OS (run it on the thread that runs the batches)."""
        if self._trim is not None:
            self._trim(0)
