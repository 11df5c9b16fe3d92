"""Scoring a job's units in this process, on every core.

Threads, not processes: pyarrow's readers and writers, onnxruntime and scikit-learn's
compiled code release the GIL, so reading, scoring and writing overlap without copying
chunks between processes or loading the model more than once. Reader threads turn units
into chunks; scorer threads score each chunk and write its part. A bounded queue between
them keeps about two chunks per worker in memory, whatever the input's size.

The first error (a ``BatchRowError`` in ``fail`` mode, an unreadable file, a full disk)
stops every thread and is raised unchanged; the parts written before it stay in the
staging directory for ``--resume``.
"""

from __future__ import annotations

import os
import queue
import threading
from collections.abc import Iterator
from typing import Any

from modelport.batch.parts import PartResult, part_name, write_part
from modelport.batch.scoring import ChunkScorer
from modelport.batch.units import BatchPlan, OnPart, Unit, unit_chunks
from modelport.errors import InvalidArgumentError

_POLL = 0.1  # seconds a blocked thread waits before it looks whether the job stopped


class _StoppedError(Exception):
    """The job stopped (another thread failed): this thread's work is abandoned."""


def default_workers() -> int:
    """One worker per core."""
    return os.cpu_count() or 1


def run_locally(
    plan: BatchPlan, units: list[Unit], on_part: OnPart, *, workers: int | None = None
) -> list[PartResult]:
    """Score ``units`` here with ``workers`` scoring threads (default: one per core);
    ``on_part`` is called for each written part, one call at a time."""
    count = default_workers() if workers is None else workers
    if count < 1:
        raise InvalidArgumentError(f"workers must be at least 1, not {count}", field="workers")
    return _Pipeline(plan, units, on_part, count).run()


class _Pipeline:
    """Readers -> bounded queue -> scorers (that also write), stopped by the first error."""

    def __init__(self, plan: BatchPlan, units: list[Unit], on_part: OnPart, workers: int) -> None:
        self.plan = plan
        self.on_part = on_part
        self.scorer: ChunkScorer | None = None  # loaded by ``run`` while the readers start
        self.workers = workers
        self.readers = max(1, min(len(units), workers // 2))
        self.chunks: queue.Queue[tuple[Unit, int, Any] | None] = queue.Queue(
            maxsize=max(1, workers // 2)
        )
        self.units: Iterator[Unit] = iter(units)
        self.units_lock = threading.Lock()
        self.report_lock = threading.Lock()  # on_part is called one part at a time
        self.error_lock = threading.Lock()
        self.stop = threading.Event()
        self.error: BaseException | None = None
        self.results: list[PartResult] = []

    def run(self) -> list[PartResult]:
        readers = [self._thread(self._read, f"batch-reader-{i}") for i in range(self.readers)]
        scorers: list[threading.Thread] = []
        try:
            # The model loads (and its files are verified) while the first chunks are read;
            # a package that cannot load stops the readers and fails once, plainly.
            self.scorer = ChunkScorer(self.plan.source.load(), self.plan.options)
            scorers = [self._thread(self._score, f"batch-scorer-{i}") for i in range(self.workers)]
            _join(readers)
            for _ in scorers:  # one end mark per scorer, once every chunk is queued
                self._put(None)
        except _StoppedError:
            pass
        except BaseException as exc:  # Ctrl-C: every thread stops at its next chunk
            self._fail(exc)
        finally:
            _join(readers + scorers)
        if self.error is not None:
            raise self.error
        return sorted(self.results, key=lambda part: part.name)

    def _thread(self, target: Any, name: str) -> threading.Thread:
        thread = threading.Thread(target=self._guarded, args=(target,), name=name, daemon=True)
        thread.start()
        return thread

    def _guarded(self, target: Any) -> None:
        try:
            target()
        except _StoppedError:
            pass
        except BaseException as exc:
            self._fail(exc)

    def _fail(self, exc: BaseException) -> None:
        with self.error_lock:
            if self.error is None:
                self.error = exc
        self.stop.set()

    def _next_unit(self) -> Unit | None:
        with self.units_lock:
            return next(self.units, None)

    def _read(self) -> None:
        while (unit := self._next_unit()) is not None:
            for first_row, frame in unit_chunks(unit, self.plan.chunk_rows, self.plan.done):
                self._put((unit, first_row, frame))

    def _put(self, item: tuple[Unit, int, Any] | None) -> None:
        while True:
            if self.stop.is_set():
                raise _StoppedError
            try:
                self.chunks.put(item, timeout=_POLL)
                return
            except queue.Full:
                continue

    def _get(self) -> tuple[Unit, int, Any] | None:
        while True:
            if self.stop.is_set():
                raise _StoppedError
            try:
                return self.chunks.get(timeout=_POLL)
            except queue.Empty:
                continue

    def _score(self) -> None:
        plan = self.plan
        scorer = self.scorer
        assert scorer is not None  # set before any scorer starts
        while (item := self._get()) is not None:
            unit, first_row, frame = item
            scored = scorer.score(
                frame, file=unit.file.uri, first_row=first_row, from_text=unit.file.format == "csv"
            )
            del frame, item  # the chunk's memory goes as soon as it is scored
            if self.stop.is_set():
                raise _StoppedError
            name = part_name(unit.file.index, first_row, plan.output_format)
            result = write_part(scored, plan.staging, name, plan.output_format)
            with self.report_lock:
                self.results.append(result)
                self.on_part(result)


def _join(threads: list[threading.Thread]) -> None:
    """Wait for ``threads`` in short steps, so that Ctrl-C reaches the main thread."""
    for thread in threads:
        while thread.is_alive():
            thread.join(_POLL)
