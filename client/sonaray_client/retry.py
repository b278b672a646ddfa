"""When to retry a failed call and how long to wait first: one policy for both clients."""

from __future__ import annotations

import random
from dataclasses import dataclass

from sonaray_client.errors import (
    APIConnectionError,
    APIError,
    APIStatusError,
    APITimeoutError,
)

# 429 and 503 are the server saying "not now"; 502 and 504 are a proxy or load balancer in
# front of it failing to reach it. Every Sonaray call is a pure computation (no state on the
# server changes), so sending a POST again costs at most repeated work. Any other status
# would fail the same way again.
RETRYABLE_STATUSES = frozenset({429, 502, 503, 504})


@dataclass(frozen=True)
class RetryPolicy:
    """Jittered exponential backoff that honours the server's ``Retry-After`` (capped)."""

    max_retries: int = 2
    initial_delay_s: float = 0.5
    max_delay_s: float = 8.0
    max_retry_after_s: float = 60.0

    def delay_before_retry(self, attempt: int, error: APIError) -> float | None:
        """Seconds to wait before retry number ``attempt + 1``, or None to give up."""
        if attempt >= self.max_retries or not is_retryable(error):
            return None
        retry_after = getattr(error, "retry_after", None)
        if retry_after is not None:
            return min(retry_after, self.max_retry_after_s)
        backoff = min(self.max_delay_s, self.initial_delay_s * 2**attempt)
        # Jitter spreads clients that failed together so they do not retry in lockstep.
        return backoff * random.uniform(0.75, 1.0)


def is_retryable(error: APIError) -> bool:
    """True for 429/502/503/504, and for connections that broke before an answer began.

    A refused, reset or dropped connection (a pooled keep-alive the server had closed, a
    restarting replica) or a connect, pool or write timeout means no answer is coming, and
    a Sonaray call changes nothing on the server, so sending it again is safe.
    """
    if isinstance(error, APIStatusError):
        return error.status_code in RETRYABLE_STATUSES
    # A read timeout means the server may still be busy on this request: retrying would
    # pile a second copy of the work onto an already slow cluster.
    if isinstance(error, APITimeoutError):
        return error.phase != "read"
    return isinstance(error, APIConnectionError)
