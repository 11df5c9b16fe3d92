"""A non-blocking prediction log: a bounded queue drained by one background thread.

Guarantees: ``put``, ``put_batch`` and ``put_request`` never block (they take a lock
held only to append to a list); when the queue holds ``max_queue_rows`` rows new ones are dropped,
counted through ``on_drop`` and reported in a warning at the next flush (at most one
warning per flush interval, never silently). The server logs one ``Logged`` tuple per
request (``put_request``); grouping and Arrow conversion happen here, in the background
thread. The thread
writes what is queued every ``flush_interval_s``, or as soon as ``flush_rows`` rows
are waiting, so a killed process loses at most what arrived since its last flush.
``close`` writes everything queued before it returns.
"""

from __future__ import annotations

import dataclasses
import functools
import itertools
import logging
import os
import random
import secrets
import threading
import time
from collections import defaultdict, deque
from collections.abc import Callable, Sequence

import pyarrow as pa

from modelport.config import PredictionLogSettings
from modelport.errors import InvalidArgumentError
from modelport.monitoring.prediction_log.batches import (
    ORIGIN,
    ROWS,
    Logged,
    PredictionBatch,
    RequestColumns,
    grouped,
    logged,
)
from modelport.monitoring.prediction_log.records import PredictionRecord, to_table
from modelport.monitoring.prediction_log.segments import (
    day_dir,
    open_root,
    required,
    write_segment,
)

logger = logging.getLogger(__name__)
CONVERT_INTERVAL_S = 0.2


def _yield_gil() -> None:
    time.sleep(0)  # releases the GIL: the event loop's thread runs if it waits


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
        on_drop: Callable[[int, str], None] | None = None,
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
        self._max_rows = max_queue_rows
        self._queue: deque[PredictionRecord] = deque()
        # Requests as they come (one tuple each, under _lock); the thread groups them
        # by layout when it converts them, off the request path.
        self._requests: list[Logged] = []
        self._queued_rows = 0  # under _lock, with the deque's appends and takes
        self._wake = threading.Event()
        self._name = f"{os.getpid()}-{secrets.token_hex(4)}-"
        self._seq = itertools.count()
        self._dropped = 0  # since the last warning, under _lock: put() runs in other threads
        self._lock = threading.Lock()
        self._closed = False
        # Converted to Arrow every CONVERT_INTERVAL_S, written every flush interval: the
        # conversion's CPU comes in small pieces instead of one burst per interval.
        self._staged: defaultdict[tuple[str, str, object], list[pa.Table]] = defaultdict(list)
        self._staged_rows = 0
        self._thread = threading.Thread(target=self._run, name="prediction-log", daemon=True)
        self._thread.start()

    @classmethod
    def from_settings(
        cls,
        settings: PredictionLogSettings,
        uri: str,
        *,
        on_drop: Callable[[int, str], None] | None = None,
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

    @property
    def queued_rows(self) -> int:
        """Rows waiting to be written (queued, or converted and not yet written)."""
        return self._queued_rows

    def put(self, record: PredictionRecord) -> bool:
        """Queue ``record``; False if it was dropped (queue full or writer closed).

        Rows left out by ``sample_rate`` are not drops: they return True.
        """
        if self._sample_rate < 1.0 and random.random() >= self._sample_rate:  # noqa: S311 (sampling, not security)
            return True
        return self._enqueue(record, 1, record.model)

    def put_batch(self, batch: PredictionBatch) -> bool:
        """Queue the rows of one request; False if they were dropped. Sampling keeps or
        leaves out a request's rows together."""
        return self.put_request(logged(batch))

    def put_request(self, request: Logged) -> bool:
        """``put_batch`` of a request already in its queued form (the server's path: no
        object made but the tuple, no work but the append)."""
        if self._sample_rate < 1.0 and random.random() >= self._sample_rate:  # noqa: S311 (sampling, not security)
            return True
        rows = request[ROWS]
        with self._lock:
            if self._closed or self._queued_rows + rows > self._max_rows:
                accepted = full = False
            else:
                accepted = True
                self._requests.append(request)
                self._queued_rows += rows
                full = self._queued_rows >= self._flush_rows
        if not accepted:
            self._drop(rows, request[ORIGIN].model)
            return False
        if full:
            self._wake.set()
        return True

    def _enqueue(self, item: PredictionRecord, rows: int, model: str) -> bool:
        full = False
        with self._lock:
            accepted = not self._closed and self._queued_rows + rows <= self._max_rows
            if accepted:
                self._queue.append(item)
                self._queued_rows += rows
                full = self._queued_rows >= self._flush_rows
        if not accepted:
            self._drop(rows, model)
            return False
        if full:
            self._wake.set()
        return True

    def close(self, timeout_s: float = 30.0) -> None:
        """Write every queued record, then stop the background thread."""
        if self._closed:
            return
        self._closed = True
        self._wake.set()
        self._thread.join(timeout_s)
        records, requests = self._take_all()
        for item in records:  # put() raced with close: count, never lose silently
            self._release(1)
            self._drop(1, item.model)
        for request in requests:
            self._release(request[ROWS])
            self._drop(request[ROWS], request[ORIGIN].model)
        self._report_drops()

    def _drop(self, count: int, model: str) -> None:
        with self._lock:
            self._dropped += count
        if self._on_drop is not None:
            self._on_drop(count, model)

    def _run(self) -> None:
        """Convert what is queued every ``CONVERT_INTERVAL_S``; write it when the interval
        ends, ``flush_rows`` are waiting or close is asked."""
        next_write = time.monotonic() + self._interval
        while True:
            self._wake.wait(max(0.0, min(CONVERT_INTERVAL_S, next_write - time.monotonic())))
            self._wake.clear()
            closing = self._closed
            self._stage(*self._take_all())
            now = time.monotonic()
            if closing or now >= next_write or self._staged_rows >= self._flush_rows:
                self._write_staged()
                self._report_drops()
                next_write = max(next_write + self._interval, now)
            if closing:
                return

    def _take_all(self) -> tuple[list[PredictionRecord], list[Logged]]:
        with self._lock:  # their rows count as queued until they are written
            records = list(self._queue)
            self._queue.clear()
            requests, self._requests = self._requests, []
        return records, requests

    def _release(self, rows: int) -> None:
        """``rows`` left the queue: written, or dropped after a failure."""
        with self._lock:
            self._queued_rows -= rows

    def _stage(self, records: list[PredictionRecord], requests: list[Logged]) -> None:
        """Convert to Arrow, one table per (model, version, day), kept until the next
        write."""
        by_day: defaultdict[tuple[str, str, object], list[PredictionRecord]] = defaultdict(list)
        for record in records:
            by_day[(record.model, record.version, record.day)].append(record)
        for (model, version, day), members in by_day.items():
            records_table = self._convert(
                model,
                version,
                len(members),
                functools.partial(to_table, [self._select(record) for record in members]),
            )
            if records_table is not None:
                self._staged[(model, version, day)].append(records_table)
                self._staged_rows += len(members)
        for columns in self._grouped(requests):
            table = self._convert(
                columns.model,
                columns.version,
                columns.rows,
                functools.partial(columns.table, self._columns, _yield_gil),
            )
            if table is None:
                continue
            for day, mask in columns.days():
                self._staged[(columns.model, columns.version, day)].append(
                    table if mask is None else table.filter(mask)
                )
            self._staged_rows += columns.rows

    def _grouped(self, requests: list[Logged]) -> list[RequestColumns]:
        try:
            return grouped(requests)
        except Exception:  # a bad request must not stop the log: count it, say so
            logger.exception("Could not group %d prediction log requests", len(requests))
            for request in requests:
                self._release(request[ROWS])
                self._drop(request[ROWS], request[ORIGIN].model)
            return []

    def _convert(
        self, model: str, version: str, rows: int, build: Callable[[], pa.Table]
    ) -> pa.Table | None:
        try:
            return build()
        except Exception:  # a bad batch must not stop the log: count it, say so
            logger.exception("Could not convert %d prediction log rows", rows)
            self._release(rows)
            self._drop(rows, model)
            return None

    def _write_staged(self) -> None:
        """One segment per (model, version, day) converted since the last write."""
        staged, self._staged = self._staged, defaultdict(list)
        self._staged_rows = 0
        for (model, version, day), tables in staged.items():
            table = (
                tables[0]
                if len(tables) == 1
                else pa.concat_tables(tables, promote_options="permissive")
            )
            try:
                directory = day_dir(self._root, model, version, day)  # type: ignore[arg-type]
                name = self._name + f"{next(self._seq):06d}"
                write_segment(self._fs, directory, name, required(table))
            except Exception:  # a failed write must not stop the log: count it, say so
                logger.exception("Could not write %d prediction log rows", table.num_rows)
                self._drop(table.num_rows, model)
            finally:
                self._release(table.num_rows)

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
