"""Live drift: streaming histograms of the current window, per served model version.

The request path only appends a reference to its arrays to a bounded deque (no copy,
no lock, no numpy work): ``Feed.observe``. A background thread per worker
(``LiveDriftBook``) drains the deques every ``flush_s`` seconds and folds the rows into
the current time bucket with vectorized numpy, many requests at once
(``monitoring.drift_sketch``):

* bin counts over the reference histogram's edges (``searchsorted``),
* counts per category (or per value, for numeric columns with few values),
* a reservoir sample of raw values for the tests that need them (KS, Wasserstein).

The window (``drift_window_s``) is a ring of ten time buckets: the gauges cover the
last window, sliding by a tenth of it. Each worker writes its buckets to
``drift-live-<pid>-<token>.json`` in the Prometheus multiprocess directory; a scrape
merges every worker's file (counts summed, samples drawn in proportion to the rows each
one saw) and runs each column's default test (``drift.report``) against the reference
statistics. Without a directory (one process) the book reads its own state.

This module imports nothing heavy: pandas and scipy load in the drift thread (or at the
first scrape), never on a worker's start-up path.
"""

from __future__ import annotations

import collections
import gc
import logging
import os
import threading
import time
import uuid
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import orjson

if TYPE_CHECKING:
    from modelport.monitoring.drift.report import ColumnDrift
    from modelport.monitoring.drift_sketch import Extractor, VersionSketch

logger = logging.getLogger(__name__)

FILE_PREFIX = "drift-live-"
MAX_PENDING = 10_000  # requests waiting for the thread; beyond, they are not sketched
# The drift thread loads pandas and scipy this long after the worker's first version is
# served: a second of imports holding the GIL, kept away from the start-up's first
# requests. Gauges appear after it.
START_DELAY_S = 10.0

ExtractorFactory = Callable[[Sequence[str]], "Extractor"]
"""Given the reference's column names, the function that turns a queued payload into
column name -> 1-D values (``serving.drifting.extractor``)."""


class Feed:
    """Where one served version's requests queue for the drift thread."""

    def __init__(
        self, model: str, version: str, stats: Mapping[str, Any], extract: ExtractorFactory
    ) -> None:
        self.key = (model, version)
        self.stats = stats
        self.make_extract = extract
        self.pending: collections.deque[Any] = collections.deque()
        self.skipped = 0  # requests not sketched: the thread fell behind
        self.closed = False  # the statistics were unusable: nothing to sketch

    def observe(self, payload: Any) -> None:
        """Queue one answered request's arrays (the request path: one append)."""
        if len(self.pending) < MAX_PENDING and not self.closed:
            self.pending.append(payload)
        else:
            self.skipped += 1

    def take(self) -> list[Any]:
        """Everything queued so far."""
        taken = []
        while self.pending:
            taken.append(self.pending.popleft())
        return taken


@dataclass(frozen=True)
class LiveDrift:
    """The merged drift of one version over the last window (all workers)."""

    model: str
    version: str
    rows: int
    columns: tuple[ColumnDrift, ...]

    @property
    def share_drifted(self) -> float:
        """The share of tested columns that drifted."""
        return sum(c.drifted for c in self.columns) / len(self.columns) if self.columns else 0.0


class LiveDriftBook:
    """Every served version's feed and sketch in this worker, its thread and its file."""

    def __init__(
        self,
        directory: str | None = None,
        *,
        window_s: float = 3600.0,
        flush_s: float = 2.0,
        min_rows: int = 100,
        clock: Callable[[], float] = time.time,
        background: bool = True,
        seed: int | None = None,
    ) -> None:
        self.window_s = window_s
        self._seed = seed  # of the sketches' reservoir draws (tests); None: fresh entropy
        self.min_rows = min_rows
        self._flush_s = flush_s
        self._clock = clock
        self._directory = Path(directory) if directory else None
        name = f"{FILE_PREFIX}{os.getpid()}-{uuid.uuid4().hex[:8]}.json"
        self._path = self._directory / name if self._directory else None
        self._feeds: dict[tuple[str, str], Feed] = {}
        self._sketches: dict[tuple[str, str], VersionSketch] = {}
        self._lock = threading.Lock()  # the thread and a scrape both fold
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._background = background
        # Set once the thread has imported the sketches' modules (pandas, scipy): until
        # then nothing is folded or exported, so neither a worker's start nor a scrape on
        # the event loop ever waits for those imports.
        self._loaded = threading.Event()

    def feed(
        self, model: str, version: str, stats: Mapping[str, Any], extract: ExtractorFactory
    ) -> Feed:
        """The feed of a newly served version (its sketch is built in the thread)."""
        feed = Feed(model, version, stats, extract)
        with self._lock:
            self._feeds[feed.key] = feed
            self._sketches.pop(feed.key, None)  # the same version loaded again: start over
        if not self._background:
            self._load()
        elif self._thread is None:
            self._thread = threading.Thread(target=self._run, name="drift-live", daemon=True)
            self._thread.start()
        return feed

    def _load(self) -> None:
        import modelport.monitoring.drift_sketch  # noqa: F401 (pandas, scipy: slow imports)

        self._loaded.set()

    def _run(self) -> None:
        if self._stop.wait(START_DELAY_S):  # let the worker start and serve first
            return
        self._load()
        # Those modules live as long as the worker: out of the cycle collector, as the
        # server does with everything loaded before its first request (``gc.freeze``), so
        # that its full passes do not walk them again and again (a worker's thread only:
        # never in a process that merely reads the book).
        gc.freeze()
        while not self._stop.wait(self._flush_s):
            try:
                self.flush()
            except Exception:  # never let the thread die: the gauges would freeze
                logger.exception("live drift: cannot update the sketches")

    def flush(self) -> None:
        """Fold queued requests, drop old buckets, write this worker's file (a no-op
        until the sketches' modules are loaded)."""
        if not self._loaded.is_set():
            return
        now = self._clock()
        with self._lock:
            changed = False
            for key, feed in self._feeds.items():
                sketch = self._sketch(key, feed)
                if sketch is None:
                    continue
                payloads = feed.take()
                if payloads:
                    sketch.fold(payloads, now)
                    changed = True
                changed |= sketch.expire(now)
            if self._path is None or not changed:
                return
            body = orjson.dumps([s.to_dict() for s in self._sketches.values()])
        temporary = self._path.with_suffix(".tmp")
        try:
            temporary.write_bytes(body)
            temporary.replace(self._path)  # readers see the old file or the new one
        except OSError as exc:
            logger.warning("live drift: cannot write %s: %s", self._path, exc)

    def _sketch(self, key: tuple[str, str], feed: Feed) -> VersionSketch | None:
        sketch = self._sketches.get(key)
        if sketch is not None or feed.closed:
            return sketch
        from modelport.monitoring.drift.report import reference_columns
        from modelport.monitoring.drift_sketch import VersionSketch

        try:
            names = list(reference_columns(feed.stats))
            sketch = VersionSketch(
                *key, feed.stats, feed.make_extract(names), self.window_s, seed=self._seed
            )
        except Exception as exc:  # unusable statistics: serve on, without live drift
            feed.closed = True
            feed.take()
            logger.warning("no live drift for %s version %s: %s", key[0], key[1], exc)
            return None
        self._sketches[key] = sketch
        return sketch

    def close(self) -> None:
        """Stop the thread after a last flush."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(5)
        self.flush()

    # ------------------------------------------------------------------ reading

    def _states(self) -> Iterator[dict[str, Any]]:
        if self._directory is None:
            with self._lock:
                states = [s.to_dict() for s in self._sketches.values()]
            yield from states
            return
        for path in sorted(self._directory.glob(f"{FILE_PREFIX}*.json")):
            try:
                yield from orjson.loads(path.read_bytes())
            except (OSError, ValueError) as exc:
                logger.warning("live drift: skipping unreadable %s: %s", path, exc)

    def current(self) -> list[LiveDrift]:
        """Each known version's drift over the last window, merged over the workers
        (versions with fewer than ``min_rows`` rows in it are left out, and versions
        this worker never served: the statistics to test them are another's)."""
        if not self._loaded.is_set():
            return []  # the drift thread is still starting
        from modelport.monitoring.drift_sketch import merge, tests

        self.flush()
        merged = merge(self._states(), self._clock())
        with self._lock:
            references = {key: feed.stats for key, feed in self._feeds.items() if not feed.closed}
        results = []
        for key, window in sorted(merged.items()):
            stats = references.get(key)
            if stats is None or window.rows < self.min_rows:
                continue
            results.append(LiveDrift(*key, window.rows, tuple(tests(stats, window))))
        return results


class DriftCollector:
    """Prometheus collector of the live drift: ``modelport_feature_drift`` (each tested
    column's score: a p-value or a distance, labelled with its method) and
    ``modelport_dataset_drift_share`` (the share of tested columns that drifted)."""

    def __init__(self, book: LiveDriftBook) -> None:
        self._book = book

    def collect(self) -> Iterator[Any]:
        from prometheus_client.core import GaugeMetricFamily

        feature = GaugeMetricFamily(
            "modelport_feature_drift",
            "Drift score of a column over the last drift window vs the reference "
            "statistics: a p-value (ks, chisquare, z: drifted below the threshold) or a "
            "distance (wasserstein, jensenshannon, psi: drifted at or above it).",
            labels=("model", "version", "feature", "method"),
        )
        rows = GaugeMetricFamily(
            "modelport_drift_window_rows",
            "Rows answered in the last drift window (all workers), which the drift "
            "gauges describe.",
            labels=("model", "version"),
        )
        share = GaugeMetricFamily(
            "modelport_dataset_drift_share",
            "Share of the tested columns that drifted over the last drift window "
            "(the dataset drifts at 0.5 or more).",
            labels=("model", "version"),
        )
        for drift in self._book.current():
            for column in drift.columns:
                labels = [drift.model, drift.version, column.column, column.method]
                feature.add_metric(labels, column.score)
            share.add_metric([drift.model, drift.version], drift.share_drifted)
            rows.add_metric([drift.model, drift.version], drift.rows)
        yield feature
        yield share
        yield rows
