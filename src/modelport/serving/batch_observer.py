"""Where a batcher reports what it does: the protocol the metrics implement, and an
observer that records nothing."""

from __future__ import annotations

from typing import Protocol


class BatchObserver(Protocol):
    """Where a batcher reports what it does (metrics)."""

    def queue_depth(self, depth: int) -> None:
        """The queue now holds ``depth`` requests."""

    def batch_done(self, rows: int, requests: int, seconds: float) -> None:
        """A model call over ``rows`` rows from ``requests`` requests took ``seconds``."""

    def waited(self, seconds: float) -> None:
        """A request spent ``seconds`` queued before its batch started."""

    def rejected(self, reason: str) -> None:
        """A request was refused: ``overloaded`` or ``deadline``."""


class NullObserver:
    """An observer that records nothing."""

    def queue_depth(self, depth: int) -> None:
        pass

    def batch_done(self, rows: int, requests: int, seconds: float) -> None:
        pass

    def waited(self, seconds: float) -> None:
        pass

    def rejected(self, reason: str) -> None:
        pass
