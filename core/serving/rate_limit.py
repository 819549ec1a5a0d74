"""A simple per-client limit on generation requests.

A sliding one-minute window per client address: enough to stop one browser
tab or script from monopolising a shared Mac mini, without any persistence.
"""

from __future__ import annotations

import threading
import time
from collections import defaultdict, deque
from collections.abc import Callable

from core.errors import StudioError


class RateLimited(StudioError):
    """A client sent more generation requests than the configured limit."""


class RateLimiter:
    def __init__(self, per_minute: int, *, clock: Callable[[], float] = time.monotonic):
        self.per_minute = per_minute
        self._clock = clock
        self._hits: dict[str, deque[float]] = defaultdict(deque)
        self._lock = threading.Lock()

    def check(self, client: str) -> None:
        """Records one request from `client`, or raises RateLimited."""
        if self.per_minute <= 0:
            return
        now = self._clock()
        with self._lock:
            hits = self._hits[client]
            while hits and now - hits[0] >= 60.0:
                hits.popleft()
            if len(hits) >= self.per_minute:
                wait = max(1, int(60.0 - (now - hits[0]) + 0.999))
                raise RateLimited(
                    f"Too many requests: this studio allows {self.per_minute} generations per minute "
                    f"per client. Try again in {wait} s."
                )
            hits.append(now)
