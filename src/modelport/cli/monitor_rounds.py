"""The clock of the control plane's alert rounds: over ``MODELPORT_REGISTRY_URL``,
``modelport monitor run`` and ``modelport serve --monitor`` ask the control plane to
evaluate its rules every interval (``POST /api/monitoring/alerts/evaluate``); the
states, the actions and their deliveries live there.

A control plane that cannot answer now (unreachable, draining, rate limited) is
reported and asked again next interval, like a database the local evaluator cannot
reach; any other refusal (a key without the scope, no rules there) ends the loop.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from datetime import timedelta
from typing import Any

from modelport.errors import (
    DeadlineExceededError,
    RateLimitedError,
    StoreUnavailableError,
    UnavailableError,
)

Outcomes = list[dict[str, Any]]
_TRANSIENT = (StoreUnavailableError, UnavailableError, DeadlineExceededError, RateLimitedError)


class RemoteRounds:
    """Calls ``evaluate`` every ``interval`` until ``stop``; ``report`` hears of the
    rounds that failed for now (and, in a thread, of the refusal that ended the loop)."""

    def __init__(
        self,
        evaluate: Callable[[], Outcomes],
        interval: timedelta,
        report: Callable[[str], None],
    ) -> None:
        self.evaluate = evaluate
        self.interval = interval
        self._report = report
        self._stopping = threading.Event()
        self._thread: threading.Thread | None = None

    @property
    def stopping(self) -> threading.Event:
        """Set once ``stop`` was called (a signal handler may set it too)."""
        return self._stopping

    def run_once(self) -> Outcomes:
        """One round; a control plane that cannot answer now is reported, not raised."""
        try:
            return self.evaluate()
        except _TRANSIENT as exc:
            self._report(f"alert evaluation failed, trying again next interval: {exc}")
            return []

    def run_forever(self, on_outcomes: Callable[[Outcomes], None]) -> None:
        """A round, ``on_outcomes``, a wait, until ``stop`` (or a refusal, raised)."""
        while not self._stopping.is_set():
            on_outcomes(self.run_once())
            self._stopping.wait(self.interval.total_seconds())

    def start(self, on_outcomes: Callable[[Outcomes], None]) -> None:
        """Run in a daemon thread; a refusal there is reported and ends the thread."""

        def run() -> None:
            try:
                self.run_forever(on_outcomes)
            except Exception as exc:  # the server keeps serving; say why rounds stopped
                self._report(f"alert evaluation stopped: {exc}")

        self._thread = threading.Thread(target=run, name="modelport-monitor", daemon=True)
        self._thread.start()

    def stop(self, timeout: float | None = None) -> None:
        """Ask the loop to end and wait for its thread, when there is one."""
        self._stopping.set()
        if self._thread is not None:
            self._thread.join(timeout)
