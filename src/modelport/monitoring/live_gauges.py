"""Prometheus gauges of live performance, computed in the background by one process.

``modelport_live_metric{model,version,metric,window}`` (accuracy, f1, roc_auc, mae, ...)
and ``modelport_label_coverage{model,version,window}`` come from ``live_performance``
over the prediction log, which reads Parquet files: far too slow for a scrape, and
pointless to repeat in every worker. So one worker (index 0) runs ``LiveGauges``: a
daemon thread that, every ``interval_s``, computes each served model version over each
window and writes the results to ``live-metrics.json`` in the metrics directory (beside
prometheus_client's files, as ``inference_stats`` does); every worker's ``/metrics``
reads that file through ``LiveMetricsCollector``. Without a metrics directory (one
process, tests) the results stay in memory. A window with no labeled row exports only
its coverage; a failed computation is logged, and its series are absent until the next
one succeeds. The thread shares the worker's GIL with the event loop: the DuckDB scan
and the NumPy scoring release it, the Python between them does not (milliseconds).
"""

from __future__ import annotations

import gc
import logging
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import orjson
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

from modelport.errors import InvalidArgumentError
from modelport.monitoring.windows import parse_duration

logger = logging.getLogger(__name__)

FILE_NAME = "live-metrics.json"
Targets = Callable[[], Iterable[tuple[str, str]]]  # (model, version label) served now


class LiveMetricsStore:
    """The latest results: a file in the metrics directory, or memory."""

    def __init__(self, directory: str | None = None) -> None:
        self._path = Path(directory) / FILE_NAME if directory else None
        self._entries: list[dict[str, Any]] = []

    def publish(self, entries: list[dict[str, Any]]) -> None:
        """Replace the results (atomically for readers of the file)."""
        self._entries = entries
        if self._path is None:
            return
        temporary = self._path.with_suffix(".tmp")
        try:
            temporary.write_bytes(orjson.dumps(entries))
            temporary.replace(self._path)
        except OSError as exc:
            logger.warning("cannot write the live metrics to %s: %s", self._path, exc)

    def entries(self) -> list[dict[str, Any]]:
        """The latest results (from the file when there is one: another worker writes it)."""
        if self._path is None:
            return self._entries
        try:
            data = orjson.loads(self._path.read_bytes())
        except FileNotFoundError:
            return []
        except (OSError, ValueError) as exc:
            logger.warning("skipping unreadable live metrics %s: %s", self._path, exc)
            return []
        return data if isinstance(data, list) else []


class LiveMetricsCollector(Collector):
    """Exports the latest results at each scrape."""

    def __init__(self, store: LiveMetricsStore) -> None:
        self._store = store

    def collect(self) -> Iterator[GaugeMetricFamily]:
        metric = GaugeMetricFamily(
            "modelport_live_metric",
            "Live performance of a served model version over a window of the prediction "
            "log against the labels received (accuracy, precision, recall, f1, roc_auc, "
            "log_loss; mae, rmse, r2).",
            labels=("model", "version", "metric", "window"),
        )
        coverage = GaugeMetricFamily(
            "modelport_label_coverage",
            "Share of a window's logged predictions that have a label.",
            labels=("model", "version", "window"),
        )
        for entry in self._store.entries():
            labels = (str(entry["model"]), str(entry["version"]))
            window = str(entry["window"])
            coverage.add_metric((*labels, window), float(entry["coverage"]))
            for name, value in entry["metrics"].items():
                metric.add_metric((*labels, str(name), window), float(value))
        yield metric
        yield coverage

    def describe(self) -> Iterator[GaugeMetricFamily]:
        return iter(())  # computed at scrape: nothing to check at registration


class LiveGauges:
    """The background computation (see the module docstring)."""

    def __init__(
        self,
        log_uri: str,
        targets: Targets,
        store: LiveMetricsStore,
        *,
        interval_s: float = 60.0,
        windows: Sequence[str] = ("1h", "24h"),
    ) -> None:
        self._uri = log_uri
        self._targets = targets
        self._store = store
        self._interval = interval_s
        self._windows = [(w, _duration(w)) for w in windows]
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        """Start the thread (a daemon: it never holds the process up)."""
        self._thread = threading.Thread(target=self._run, name="live-gauges", daemon=True)
        self._thread.start()

    def stop(self, timeout_s: float = 5.0) -> None:
        """Stop after the current computation (waiting at most ``timeout_s``)."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout_s)

    def _run(self) -> None:
        frozen = False
        while not self._stop.is_set():
            started = time.monotonic()
            try:
                self.compute()
            except Exception:  # the thread must outlive any one failure
                logger.exception("computing the live performance gauges failed")
            if not frozen:
                # What the first pass imported (DuckDB, SciPy) lives as long as the
                # worker: out of the cycle collector's full passes (as ``gc.freeze`` at
                # the server's start).
                gc.freeze()
                frozen = True
            self._stop.wait(max(0.0, self._interval - (time.monotonic() - started)))

    def compute(self) -> None:
        """One pass over every served version and window."""
        # Imported here: DuckDB and SciPy are not worth loading in every worker's start.
        from modelport.monitoring.feedback.store import label_files
        from modelport.monitoring.performance import live_performance

        now = datetime.now(UTC)
        entries = []
        for model, version in list(self._targets()):
            # No label yet: nothing to score and nothing covered, known without scanning
            # the window's predictions (a scan that would take CPU from the requests).
            try:
                unlabeled = not label_files(self._uri, model)[1]
            except Exception:  # one bad model must not stop the others' gauges
                logger.exception("the labels of %s cannot be listed", model)
                continue
            for window, length in self._windows:
                if unlabeled:
                    entries.append(_uncovered(model, version, window))
                    continue
                try:
                    report = live_performance(
                        self._uri,
                        model,
                        version=version or None,
                        since=now - length,
                        until=now,
                        threads=1,  # one core at most, in a process that serves requests
                    )
                except Exception:  # one bad model must not stop the others' gauges
                    logger.exception("live performance of %s version %s failed", model, version)
                    continue
                entries.append(
                    {
                        "model": model,
                        "version": version,
                        "window": window,
                        "coverage": report.coverage,
                        "metrics": report.metrics,
                    }
                )
                if self._stop.is_set():
                    return
        self._store.publish(entries)


def _uncovered(model: str, version: str, window: str) -> dict[str, Any]:
    """The entry of a window of a model that has no label at all."""
    return {"model": model, "version": version, "window": window, "coverage": 0.0, "metrics": {}}


def _duration(text: str) -> timedelta:
    length = parse_duration(text)
    if length is None:
        raise InvalidArgumentError(
            f"live performance window {text!r} is not a duration: use e.g. 30m, 1h, 24h, 7d"
        )
    return length
