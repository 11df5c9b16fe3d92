"""Throttling of failed authentication per client address (brute force, OWASP API2).

A fixed window per address: after ``limit`` failures within ``window_s`` seconds, that
address gets 429 (``Retry-After``: the rest of the window, ``limit="auth"``) on every
request until the window ends, whatever key it sends. Counted in each server process
(each worker keeps its own windows); at most ``max_addresses`` are tracked, and the
oldest windows are dropped first when more arrive.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable

from modelport.errors import RateLimitedError

FAILURES = 20
WINDOW_S = 60.0
MAX_ADDRESSES = 10_000


class FailureThrottle:
    """Failed authentications per client address, in fixed windows."""

    def __init__(
        self,
        *,
        limit: int = FAILURES,
        window_s: float = WINDOW_S,
        max_addresses: int = MAX_ADDRESSES,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._limit = limit
        self._window_s = window_s
        self._max = max_addresses
        self._clock = clock
        self._windows: dict[str, tuple[float, int]] = {}  # address -> (start, failures)

    def check(self, address: str) -> None:
        """``RateLimitedError`` while ``address`` has spent its failures."""
        window = self._windows.get(address)
        if window is None or window[1] < self._limit:
            return
        left = window[0] + self._window_s - self._clock()
        if left <= 0:
            del self._windows[address]
            return
        raise RateLimitedError(
            f"too many failed authentications from this address: retry in {math.ceil(left)} s",
            retry_after=math.ceil(left),
            limit="auth",
        )

    def failed(self, address: str) -> None:
        """Count one failed authentication from ``address``."""
        now = self._clock()
        start, failures = self._windows.get(address, (now, 0))
        if now - start >= self._window_s:
            start, failures = now, 0
        if address not in self._windows and len(self._windows) >= self._max:
            del self._windows[next(iter(self._windows))]  # the oldest inserted
        self._windows[address] = (start, failures + 1)
