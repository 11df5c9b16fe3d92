"""Housekeeping of the metrics files that worker processes share.

Kept apart from ``monitoring.metrics`` so that the supervisor, which never records a
metric, does not import prometheus_client until a worker dies.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path

logger = logging.getLogger(__name__)


def forget_worker(directory: Path, pid: int) -> None:
    """Remove the live gauges of a dead worker from the shared metrics directory."""
    try:
        from prometheus_client import multiprocess
    except ImportError:  # pragma: no cover (a dependency; nothing to clean without it)
        return
    mark_dead: Callable[[int, str], object] = multiprocess.mark_process_dead  # untyped
    try:
        mark_dead(pid, str(directory))
    except OSError as exc:
        logger.warning("cannot remove the metrics of worker pid %d: %s", pid, exc)
