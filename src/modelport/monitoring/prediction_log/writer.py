"""A non-blocking prediction log: a bounded queue drained by one background thread.

Guarantees: ``put`` never blocks; when the queue is full the record is dropped,
counted through ``on_drop`` and reported in a warning at the next flush (at most one
warning per flush interval, never silently). The thread writes what is queued every
``flush_interval_s``, or as soon as ``flush_rows`` rows are waiting, so a killed
process loses at most what arrived since its last flush. ``close`` writes everything
queued before it returns.
"""

from __future__ import annotations

import dataclasses
import itertools
import logging
import os
import queue
import random
import secrets
import threading
from collections import defaultdict
from collections.abc import Callable, Sequence

from modelport.config import PredictionLogSettings
from modelport.errors import InvalidArgumentError
from modelport.monitoring.prediction_log.records import PredictionRecord, to_table
from modelport.monitoring.prediction_log.segments import day_dir, open_root, write_segment

logger = logging.getLogger(__name__)


class PredictionLogWriter:
    """Log predictions to Parquet segments under ``uri`` without slowing the caller.

    Its thread does not survive ``fork``: create the writer in each worker process.
    """

    def __init__(
        self,
        uri: str,
        *,
        flush_interval_s: float = 1.0,
        flush_rows: int = 10_000,
        max_queue_rows: int = 100_000,
        sample_rate: float = 1.0,
        columns: Sequence[str] | None = None,
        on_drop: Callable[[int], None] | None = None,
    ) -> None:
        _check_positive("flush_interval_s", flush_interval_s)
        _check_positive("flush_rows", flush_rows)
        _check_positive("max_queue_rows", max_queue_rows)
        if not 0.0 <= sample_rate <= 1.0:
            raise InvalidArgumentError(
                f"Prediction log sample_rate is {sample_rate}: it must be between 0 and 1."
            )
        self._fs, self._root = open_root(uri)
        self._interval = flush_interval_s
        self._flush_rows = flush_rows
        self._sample_rate = sample_rate
        self._columns = frozenset(columns) if columns is not None else None
        self._on_drop = on_drop
        self._queue: queue.Queue[PredictionRecord] = queue.Queue(maxsize=max_queue_rows)
        self._wake = threading.Event()
        self._name = f"{os.getpid()}-{secrets.token_hex(4)}-"
        self._seq = itertools.count()
        self._dropped = 0  # since the last warning, under _lock: put() runs in other threads
        self._lock = threading.Lock()
        self._closed = False
        self._thread = threading.Thread(target=self._run, name="prediction-log", daemon=True)
        self._thread.start()

    @classmethod
    def from_settings(
        cls,
        settings: PredictionLogSettings,
        uri: str,
        *,
        on_drop: Callable[[int], None] | None = None,
    ) -> PredictionLogWriter:
        """A writer to ``uri`` (``Settings.resolved_prediction_log_uri``) as ``settings`` say."""
        return cls(
            uri,
            flush_interval_s=settings.flush_interval_s,
            flush_rows=settings.flush_rows,
            max_queue_rows=settings.max_queue_rows,
            sample_rate=settings.sample_rate,
            columns=settings.columns,
            on_drop=on_drop,
        )

    def put(self, record: PredictionRecord) -> bool:
        """Queue ``record``; False if it was dropped (queue full or writer closed).

        Rows left out by ``sample_rate`` are not drops: they return True.
        """
        if self._sample_rate < 1.0 and random.random() >= self._sample_rate:  # noqa: S311 (sampling, not security)
            return True
        if self._closed:
            self._drop(1)
            return False
        try:
            self._queue.put_nowait(record)
        except queue.Full:
            self._drop(1)
            return False
        if self._queue.qsize() >= self._flush_rows:
            self._wake.set()
        return True

    def close(self, timeout_s: float = 30.0) -> None:
        """Write every queued record, then stop the background thread."""
        if self._closed:
            return
        self._closed = True
        self._wake.set()
        self._thread.join(timeout_s)
        late = len(self._take_all())  # put() raced with close: count, never lose silently
        if late:
            self._drop(late)
            self._report_drops()

    def _drop(self, count: int) -> None:
        with self._lock:
            self._dropped += count
        if self._on_drop is not None:
            self._on_drop(count)

    def _run(self) -> None:
        """Sleep until the interval ends, ``flush_rows`` are waiting or close is asked."""
        while True:
            self._wake.wait(self._interval)
            self._wake.clear()
            closing = self._closed
            batch = self._take_all()
            for start in range(0, len(batch), self._flush_rows):
                self._flush(batch[start : start + self._flush_rows])
            self._report_drops()
            if closing:
                return

    def _take_all(self) -> list[PredictionRecord]:
        taken: list[PredictionRecord] = []
        while True:
            try:
                taken.append(self._queue.get_nowait())
            except queue.Empty:
                return taken

    def _flush(self, batch: list[PredictionRecord]) -> None:
        """One segment per (model, version, day) present in ``batch``."""
        groups: defaultdict[tuple[str, str, object], list[PredictionRecord]] = defaultdict(list)
        for record in batch:
            groups[(record.model, record.version, record.day)].append(self._select(record))
        for (model, version, _), records in groups.items():
            try:
                directory = day_dir(self._root, model, version, records[0].day)
                name = self._name + f"{next(self._seq):06d}"
                write_segment(self._fs, directory, name, to_table(records))
            except Exception:  # a bad batch must not stop the log: count it, say so
                logger.exception("Could not write %d prediction log rows", len(records))
                self._drop(len(records))

    def _select(self, record: PredictionRecord) -> PredictionRecord:
        if self._columns is None:
            return record
        inputs = {k: v for k, v in record.inputs.items() if k in self._columns}
        return dataclasses.replace(record, inputs=inputs)

    def _report_drops(self) -> None:
        with self._lock:
            dropped, self._dropped = self._dropped, 0
        if dropped:
            logger.warning(
                "Prediction log dropped %d rows (queue full or write failed); "
                "see modelport_prediction_log_dropped_total",
                dropped,
            )


def _check_positive(name: str, value: float) -> None:
    if value <= 0:
        raise InvalidArgumentError(f"Prediction log {name} is {value}: it must be above 0.")
