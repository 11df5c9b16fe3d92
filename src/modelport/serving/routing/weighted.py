"""Splitting requests between arms by weight, deterministically.

Smooth weighted round-robin (nginx's): at every pick each arm's counter grows by its
weight, the arm with the largest counter is picked and its counter falls by the total.
Over any run of requests each arm's share is within one request of its weight (100
requests at 90/10 give exactly 90 and 10), and the picks are spread out rather than
bunched (the canary's requests do not come in runs). No randomness: a test of the split
has no tolerance to guess, and every worker splits its own requests the same way.
"""

from __future__ import annotations

from collections.abc import Sequence


class SmoothWeighted:
    """Picks indexes of ``weights`` in proportion to them (arms of weight 0 never)."""

    __slots__ = ("_current", "_indexes", "_total", "_weights")

    def __init__(self, weights: Sequence[float]) -> None:
        positive = [(i, float(w)) for i, w in enumerate(weights) if w > 0]
        if not positive:
            raise ValueError("at least one weight must be positive")
        self._indexes = [i for i, _ in positive]
        self._weights = [w for _, w in positive]
        self._total = sum(self._weights)
        self._current = [0.0] * len(positive)

    def pick(self) -> int:
        """The index of the next arm."""
        current, weights = self._current, self._weights
        best = 0
        for i in range(len(weights)):
            current[i] += weights[i]
            if current[i] > current[best]:
                best = i
        current[best] -= self._total
        return self._indexes[best]


class Sampler:
    """Says yes to a ``share`` of the calls, evenly spaced (0.5: every other call)."""

    __slots__ = ("_credit", "_share")

    def __init__(self, share: float) -> None:
        self._share = share
        self._credit = 0.0

    def take(self) -> bool:
        """Whether this call is one of the share."""
        self._credit += self._share
        if self._credit >= 1.0 - 1e-9:
            self._credit -= 1.0
            return True
        return False
