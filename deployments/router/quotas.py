"""Optional per-caller limits: concurrent requests, and audio seconds per minute.

Keys are tracked by a digest (``RequestScope.caller``), never the key itself. A caller
over a limit gets 429 with the seconds after which a retry can succeed.
"""

from __future__ import annotations

import contextlib
import math
import time
from collections import Counter, deque
from collections.abc import Iterator

from deployments.config import LimitsConfig
from deployments.errors import RateLimited

WINDOW_S = 60.0


class CallerQuotas:
    """One router replica's count of each caller's requests and audio."""

    def __init__(self, limits: LimitsConfig) -> None:
        self.max_concurrent = limits.per_key_concurrent_requests
        self.max_audio = limits.per_key_audio_seconds_per_minute
        self._running: Counter[str] = Counter()
        self._audio: dict[str, deque[tuple[float, float]]] = {}

    @contextlib.contextmanager
    def request(self, caller: str | None) -> Iterator[None]:
        """Hold one of ``caller``'s concurrent-request slots while the block runs."""
        if caller is None or self.max_concurrent is None:
            yield
            return
        if self._running[caller] >= self.max_concurrent:
            raise RateLimited(
                f"this API key already has {self._running[caller]} requests running; "
                f"the limit is {self.max_concurrent}",
                retry_after_s=1,
            )
        self._running[caller] += 1
        try:
            yield
        finally:
            self._running[caller] -= 1
            if not self._running[caller]:
                del self._running[caller]

    def charge_audio(self, caller: str | None, seconds: float) -> None:
        """Count ``seconds`` of audio against ``caller``'s minute; refuse what exceeds it."""
        if caller is None or self.max_audio is None:
            return
        now = time.monotonic()
        spent = self._audio.setdefault(caller, deque())
        while spent and now - spent[0][0] > WINDOW_S:
            spent.popleft()
        used = sum(s for _, s in spent)
        if used + seconds > self.max_audio:
            # Retry once enough of the window's audio has aged out to make room.
            room_needed, freed, wait = used + seconds - self.max_audio, 0.0, WINDOW_S
            for at, s in spent:
                freed += s
                if freed >= room_needed:
                    wait = WINDOW_S - (now - at)
                    break
            raise RateLimited(
                f"this API key sent {used:.0f}s of audio in the last minute; the limit is "
                f"{self.max_audio:g}s per minute",
                retry_after_s=max(1, math.ceil(wait)),
            )
        spent.append((now, seconds))
