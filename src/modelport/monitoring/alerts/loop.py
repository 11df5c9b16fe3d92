"""Evaluating every rule each interval until stopped: ``modelport monitor run`` in the
foreground, ``modelport serve --monitor`` in a thread of the server's supervisor."""

from __future__ import annotations

import logging
import threading
from datetime import timedelta

from modelport.errors import ModelportError
from modelport.monitoring.alerts.engine import AlertEngine, RuleOutcome

logger = logging.getLogger("modelport.monitoring.alerts")


class MonitorLoop:
    """Runs ``engine`` every ``interval``; ``stop`` ends it between two evaluations."""

    def __init__(self, engine: AlertEngine, interval: timedelta) -> None:
        self.engine = engine
        self.interval = interval
        self._stopping = threading.Event()
        self._thread: threading.Thread | None = None

    def run_once(self) -> list[RuleOutcome]:
        """One evaluation of every rule; a store that cannot be reached is logged, not raised."""
        try:
            return self.engine.evaluate()
        except ModelportError as exc:  # e.g. the database is down: try again next time
            logger.error("alert evaluation failed: %s", exc)
            return []

    def run_forever(self) -> None:
        """Evaluate, wait, repeat until ``stop``; rules that cannot be read are logged."""
        while not self._stopping.is_set():
            for outcome in self.run_once():
                if outcome.error is not None:
                    logger.warning("alert %s: %s", outcome.rule, outcome.error)
            self._stopping.wait(self.interval.total_seconds())

    def start(self) -> threading.Thread:
        """Run in a daemon thread (it dies with the process; ``stop`` ends it cleanly)."""
        self._thread = threading.Thread(
            target=self.run_forever, name="modelport-monitor", daemon=True
        )
        self._thread.start()
        return self._thread

    def stop(self, timeout: float | None = None) -> None:
        """Ask the loop to end and wait for the thread, when there is one."""
        self._stopping.set()
        if self._thread is not None:
            self._thread.join(timeout)

    @property
    def stopping(self) -> threading.Event:
        """Set once ``stop`` was called (a signal handler may set it too)."""
        return self._stopping
