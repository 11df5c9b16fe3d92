"""``modelport serve --monitor``: the alert evaluator in a thread of the supervisor.

It starts once every worker is ready (from the "serving" announcement, which also
gives the server's own ``/metrics`` URL for ``prediction_log_drops``) and stops when
the server has drained. Its log lines are JSON on stderr like the supervisor's.
For one machine; with several replicas run one ``modelport monitor run`` instead.
``modelport ui --monitor`` runs the same evaluator in the control plane's supervisor.
"""

from __future__ import annotations

import contextlib
import logging
import os
from collections.abc import Callable
from typing import TYPE_CHECKING

from modelport.config import Settings

if TYPE_CHECKING:
    from modelport.monitoring.alerts.loop import MonitorLoop
    from modelport.registry.service import RegistryService

_LOGGER = "modelport.monitoring.alerts"
_STOP_WAIT_S = 30.0


def require_rules(settings: Settings) -> None:
    """Refuse ``--monitor`` without alert rules, or with a bad one, before the server
    starts rather than once it is up."""
    from modelport.errors import InvalidArgumentError
    from modelport.monitoring.alerts.engine import check_rules

    if not settings.monitor.alerts:
        raise InvalidArgumentError(
            "--monitor has no rules to evaluate: add [monitor.alerts.NAME] tables to the "
            "config file (--config or MODELPORT_CONFIG)",
            field="monitor.alerts",
        )
    check_rules(settings.monitor.alerts)


class ServeMonitor:
    """An ``announce`` callback that starts the evaluator; ``close`` stops it."""

    def __init__(
        self,
        settings: Settings,
        announce: Callable[[str], None] | None,
        *,
        own_metrics: bool = True,
    ) -> None:
        self._settings = settings
        # A serving server scrapes its own /metrics for prediction_log_drops; the
        # control plane (`modelport ui --monitor`) logs no predictions.
        self._own_metrics = own_metrics
        self._announce = announce or _print
        self._registry: RegistryService | None = None
        self._loop: MonitorLoop | None = None
        self._handler: logging.Handler | None = None

    def __call__(self, line: str) -> None:
        self._announce(line)
        from modelport.bootstrap import build_alert_engine, build_registry
        from modelport.monitoring.alerts.loop import MonitorLoop
        from modelport.server.process.logs import json_handler

        url = line.rsplit(" on ", 1)[1].split(" ", 1)[0]
        self._handler = json_handler(fields={"pid": os.getpid()})
        logger = logging.getLogger(_LOGGER)
        logger.addHandler(self._handler)
        logger.setLevel(logging.INFO)
        self._registry = build_registry(self._settings)
        own = [f"{url}/metrics"] if self._own_metrics else []
        engine = build_alert_engine(self._settings, self._registry, metrics_urls=own)
        self._loop = MonitorLoop(engine, self._settings.monitor.interval)
        self._loop.start()
        logger.info("evaluating %d alert rules every %s", len(engine.rules), self._loop.interval)

    def close(self) -> None:
        """Stop the evaluator (after its current evaluation) and release the registry."""
        if self._loop is not None:
            self._loop.stop(_STOP_WAIT_S)
        if self._registry is not None:
            self._registry.close()
        if self._handler is not None:
            logging.getLogger(_LOGGER).removeHandler(self._handler)


def _print(line: str) -> None:
    with contextlib.suppress(OSError):
        print(line, flush=True)
