"""``modelport serve --monitor`` following a control plane by ``MODELPORT_REGISTRY_URL``:
a thread of the supervisor asks the control plane for a round of its alert rules every
``monitor.interval`` (``cli.monitor_rounds``), from the moment every worker is ready
until the server has drained. The control plane keeps the states and runs the actions.
Its log lines are JSON on stderr like the supervisor's.
"""

from __future__ import annotations

import contextlib
import logging
import os
from collections.abc import Callable
from typing import TYPE_CHECKING

from modelport.config import Settings

if TYPE_CHECKING:
    from modelport.cli.monitor_rounds import Outcomes, RemoteRounds
    from modelport.client import RegistryClient

_LOGGER = "modelport.monitoring.alerts"
_STOP_WAIT_S = 30.0
logger = logging.getLogger(_LOGGER)


class RemoteServeMonitor:
    """An ``announce`` callback that starts the rounds; ``close`` stops them."""

    def __init__(self, settings: Settings, announce: Callable[[str], None] | None) -> None:
        self._settings = settings
        self._announce = announce or _print
        self._client: RegistryClient | None = None
        self._rounds: RemoteRounds | None = None
        self._handler: logging.Handler | None = None

    def __call__(self, line: str) -> None:
        self._announce(line)
        from modelport.cli.monitor_rounds import RemoteRounds
        from modelport.client import RegistryClient
        from modelport.server.process.logs import json_handler

        self._handler = json_handler(fields={"pid": os.getpid()})
        logger.addHandler(self._handler)
        logger.setLevel(logging.INFO)
        self._client = RegistryClient.from_settings(self._settings)
        interval = self._settings.monitor.interval
        self._rounds = RemoteRounds(self._client.evaluate_alerts, interval, logger.warning)
        self._rounds.start(_log_outcomes)
        logger.info(
            "asking the control plane at %s to evaluate its alert rules every %s",
            self._settings.registry_url,
            interval,
        )

    def close(self) -> None:
        """Stop the rounds (after the current one) and release the client."""
        if self._rounds is not None:
            self._rounds.stop(_STOP_WAIT_S)
        if self._client is not None:
            self._client.close()
        if self._handler is not None:
            logger.removeHandler(self._handler)


def _log_outcomes(outcomes: Outcomes) -> None:
    for outcome in outcomes:
        state = outcome["state"] or {}
        if outcome["error"] is not None:
            logger.warning("alert %s: %s", outcome["rule"], outcome["error"])
        elif outcome["changed"]:
            logger.info("alert %s: %s", outcome["rule"], state.get("status"))


def _print(line: str) -> None:
    with contextlib.suppress(OSError):
        print(line, flush=True)
