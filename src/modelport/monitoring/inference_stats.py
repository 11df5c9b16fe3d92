"""Per-version inference statistics (Triton's statistics extension), summed over workers.

Each model version a worker serves has plain counters (``VersionStats``): requests
answered and failed with their time, time spent queued, model calls by batch size with
their time, rows answered and when the last request ended (its model call's end, or its
failure). They are fed by measurements the server makes anyway (``monitoring.metrics``:
the metered target's time per request, the batcher's queue waits and model calls), so a
request adds a few Python numbers and nothing else: no lock, no clock read (a model
call reads ``time.time()`` once); the event loop's thread is the only writer.

With several workers (``serve --workers N``), each one writes its totals to a file of
its own in the server's metrics directory (``inference-stats-<pid>-<token>.json``,
beside prometheus_client's ``*.db`` files, which its collector ignores) whenever it
flushes its metrics (every second) and before it answers a statistics request; that
request adds up every worker's file. So the statistics cover every worker, another
worker's last second may be missing, and a worker that died keeps its counts, as
Prometheus counters do. Without a metrics directory (one process, tests) the totals are
this process's.
"""

from __future__ import annotations

import logging
import os
import time
import uuid
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson

logger = logging.getLogger(__name__)

FILE_PREFIX = "inference-stats-"
_COUNTS = (
    "success_count", "success_s", "fail_count", "fail_s", "queue_count", "queue_s",
    "compute_count", "compute_s", "inference_count", "execution_count",
)  # fmt: skip


class VersionStats:
    """The counters of one model version in one worker (updated on the request path)."""

    __slots__ = (*_COUNTS, "batches", "last")

    def __init__(self) -> None:
        self.success_count = self.fail_count = self.queue_count = 0
        self.compute_count = self.inference_count = self.execution_count = 0
        self.success_s = self.fail_s = self.queue_s = self.compute_s = 0.0
        self.batches: dict[int, list[float]] = {}  # rows -> [model calls, seconds]
        self.last = 0.0  # time.time() at the last model call's end or failure; 0: none yet

    def answered(self, rows: int, seconds: float) -> None:
        """A request of ``rows`` rows was answered in ``seconds``."""
        self.success_count += 1
        self.success_s += seconds
        self.inference_count += rows

    def failed(self, seconds: float) -> None:
        """A request that reached this version failed after ``seconds``."""
        self.fail_count += 1
        self.fail_s += seconds
        self.last = time.time()

    def waited(self, seconds: float) -> None:
        """A request waited ``seconds`` for its batch."""
        self.queue_count += 1
        self.queue_s += seconds

    def executed(self, rows: int, requests: int, seconds: float) -> None:
        """One model call over ``rows`` rows from ``requests`` requests took ``seconds``."""
        self.execution_count += 1
        # Its requests are answered as it ends: one clock read per call, not per request.
        self.last = time.time()
        # Triton counts a batch's compute time once for each request in it.
        self.compute_count += requests
        self.compute_s += requests * seconds
        entry = self.batches.get(rows)
        if entry is None:
            self.batches[rows] = [1, seconds]
        else:
            entry[0] += 1
            entry[1] += seconds

    def totals(self, model: str, version: str) -> VersionTotals:
        """A copy of the counters as they are now."""
        counts = {name: getattr(self, name) for name in _COUNTS}
        batches = {rows: (int(calls), seconds) for rows, (calls, seconds) in self.batches.items()}
        return VersionTotals(model, version, counts, batches, self.last)


@dataclass
class VersionTotals:
    """One version's statistics (of one worker, or summed over several)."""

    model: str
    version: str
    counts: dict[str, float] = field(default_factory=lambda: dict.fromkeys(_COUNTS, 0))
    batches: dict[int, tuple[int, float]] = field(default_factory=dict)  # rows -> calls, s
    last: float = 0.0

    @property
    def key(self) -> tuple[str, str]:
        """Model name and version label."""
        return self.model, self.version

    def add(self, other: VersionTotals) -> None:
        """Add another worker's totals of the same version."""
        for name in _COUNTS:
            self.counts[name] += other.counts[name]
        for rows, (calls, seconds) in other.batches.items():
            known_calls, known_seconds = self.batches.get(rows, (0, 0.0))
            self.batches[rows] = (known_calls + calls, known_seconds + seconds)
        self.last = max(self.last, other.last)

    def to_dict(self) -> dict[str, Any]:
        """The JSON form a worker writes."""
        return {
            "model": self.model,
            "version": self.version,
            "counts": self.counts,
            "batches": [[rows, calls, seconds] for rows, (calls, seconds) in self.batches.items()],
            "last": self.last,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> VersionTotals:
        """Inverse of ``to_dict``."""
        counts = {name: data["counts"][name] for name in _COUNTS}
        batches = {int(rows): (int(calls), float(s)) for rows, calls, s in data["batches"]}
        return cls(str(data["model"]), str(data["version"]), counts, batches, float(data["last"]))


class StatsBook:
    """Every version's statistics in this worker, and the file that shares them."""

    def __init__(self, directory: str | None = None) -> None:
        self._versions: dict[tuple[str, str], VersionStats] = {}
        self._directory = Path(directory) if directory else None
        # A token besides the pid: a new worker that gets a dead one's pid must not
        # overwrite the dead one's counts.
        name = f"{FILE_PREFIX}{os.getpid()}-{uuid.uuid4().hex[:8]}.json"
        self._path = self._directory / name if self._directory else None
        self._written = b""

    def version(self, model: str, version: str) -> VersionStats:
        """The counters of one version (the same object for every caller)."""
        key = (model, version)
        stats = self._versions.get(key)
        if stats is None:
            stats = self._versions[key] = VersionStats()
        return stats

    def flush(self) -> None:
        """Write this worker's totals to its file, when they changed (call it every second
        or so, from the event loop's thread)."""
        if self._path is None:
            return
        body = orjson.dumps([t.to_dict() for t in self._own()])
        if body == self._written:
            return
        temporary = self._path.with_suffix(".tmp")
        try:
            temporary.write_bytes(body)
            temporary.replace(self._path)  # readers see the old file or the new one
        except OSError as exc:
            logger.warning("cannot write the inference statistics to %s: %s", self._path, exc)
            return
        self._written = body

    def totals(self) -> dict[tuple[str, str], VersionTotals]:
        """Every version's statistics, summed over every worker's file (this one's fresh)."""
        if self._directory is None:
            return {t.key: t for t in self._own()}
        self.flush()
        return _summed(_read(self._directory))

    def _own(self) -> list[VersionTotals]:
        return [stats.totals(*key) for key, stats in self._versions.items()]


def _read(directory: Path) -> Iterable[VersionTotals]:
    for path in sorted(directory.glob(f"{FILE_PREFIX}*.json")):
        try:
            entries = [VersionTotals.from_dict(entry) for entry in orjson.loads(path.read_bytes())]
        except (OSError, ValueError, KeyError, TypeError) as exc:
            logger.warning("skipping unreadable inference statistics %s: %s", path, exc)
            continue
        yield from entries


def _summed(totals: Iterable[VersionTotals]) -> dict[tuple[str, str], VersionTotals]:
    summed: dict[tuple[str, str], VersionTotals] = {}
    for entry in totals:
        known = summed.get(entry.key)
        if known is None:
            summed[entry.key] = entry
        else:
            known.add(entry)
    return summed
