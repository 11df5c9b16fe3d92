"""The serving worker's prediction log: requests spooled to a local file, converted to
Parquet by a process of its own at idle priority.

A writer thread in the worker (``PredictionLogWriter``) cost a saturated worker ~10% of
its requests: its conversion shared the worker's interpreter and CPU. Here the request
path makes the request's frame (``spool_format``: a header, the request id and the
arrays' bytes, ~2 µs for a single row, no container object kept alive) and appends it
to a deque; a thread writes the frames to the worker's spool file every ``FLUSH_S``; a
converter process (``modelport.monitoring.prediction_log.converter``), in the kernel's
idle scheduling class and pausing while the machine is busy (``priority.CpuGate``, up
to a longest lag), reads the file and writes the Parquet segments every flush interval.
Under a sustained overload the spool grows (on disk, up to ``spool_max_mb`` per worker,
then new rows are dropped and counted), and catches up when the load eases.

Guarantees: a clean stop writes every row (the worker flushes, closes its file and waits
for its converter to finish); a killed worker loses at most its last ``FLUSH_S`` (the
file is in the page cache; its converter, another process, goes on); a killed converter
is replaced, and any converter converts the files of one that died (``converter``).
Files: ``<dir>/<token>-<seq>.spool``, the token ``<worker pid>-<random>``; the worker
holds an exclusive ``flock`` on the file it writes, its converter one on
``<token>.lock`` for its life, so a lock taken means its owner is gone.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import logging
import operator
import os
import random
import secrets
import struct
import subprocess
import sys
import threading
import time
from collections import deque
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import orjson

from modelport.errors import InvalidArgumentError
from modelport.monitoring.prediction_log.batches import Logged
from modelport.monitoring.prediction_log.spool_format import (
    END_FRAME,
    JSON_DTYPE,
    LAYOUT,
    LAYOUT_HEAD,
    MAGIC,
    REQUEST,
    REQUEST_FIXED,
    REQUEST_HEAD,
    Layout,
    layout_frame,
    layout_of,
    object_bytes,
)

logger = logging.getLogger(__name__)

CONVERTER_MODULE = "modelport.monitoring.prediction_log.converter"
FLUSH_S = 0.1  # the buffer reaches the file this often: what a killed worker can lose
ROTATE_BYTES = 8 << 20  # a new file after this many bytes...
ROTATE_S = 2.0  # ...or this many seconds: a converted file is deleted, its space freed
SUFFIX = ".spool"
LOCK_SUFFIX = ".lock"
OFFSET_SUFFIX = ".offset"
RESTART_BACKOFF_S = (1.0, 30.0)
_BETWEEN = object()


class SpoolSink:
    """A ``PredictionSink`` for one serving worker (see the module's docstring).

    ``put_request`` is called from one thread (the worker's event loop); it takes no lock
    and never waits for I/O: frames go into a deque that the flush thread empties
    (``deque.append`` and ``popleft`` are atomic), and each counter has one writer.
    """

    def __init__(
        self,
        directory: str | os.PathLike[str],
        uri: str,
        *,
        flush_interval_s: float = 1.0,
        sample_rate: float = 1.0,
        columns: Sequence[str] | None = None,
        max_bytes: int = 1 << 30,
        on_drop: Callable[[int, str], None] | None = None,
        converter: bool = True,
        busy_limit: float = 1.0,
        max_lag_s: float = 30.0,
    ) -> None:
        if not 0.0 <= sample_rate <= 1.0:
            raise InvalidArgumentError(
                f"Prediction log sample_rate is {sample_rate}: it must be between 0 and 1."
            )
        self._dir = Path(directory)
        self._dir.mkdir(parents=True, exist_ok=True)
        self._uri = uri
        self._interval = flush_interval_s
        self._flush_s = min(FLUSH_S, flush_interval_s)
        self._sample_rate = sample_rate
        self._columns = list(columns) if columns is not None else None
        self._max_bytes = max_bytes
        self._on_drop = on_drop
        self.token = f"{os.getpid()}-{secrets.token_hex(4)}"
        self._frames: deque[bytes | object] = deque()
        # Written by put_request only: layouts by the names of a request's arrays, each
        # with its number in the current file (the first of a layout in a file declares
        # it there), and what was spooled and dropped, in all.
        self._shapes: dict[tuple[Any, ...], _Shape] = {}
        self._generation = 0  # of the current file, as put_request numbers its layouts
        self._numbered = 0  # layouts declared in it
        self._put_bytes = self._put_rows = self._dropped = 0
        # Written by the flush thread only.
        self._rotate = False  # asks put_request to start the next file
        self._seq = 0
        self._fd: int | None = None
        self._path: Path | None = None
        self._opened_at = 0.0
        self._file_bytes = self._file_rows = 0
        self._models: dict[int, str] = {}  # layout numbers of the current file: their model
        self._written: deque[tuple[Path, int, int]] = deque()  # closed files: path, bytes, rows
        self._done_bytes = self._done_rows = 0  # converted (their file deleted), or lost
        self._reported = 0
        self._closed = False
        self._use_converter = converter
        self._busy_limit = busy_limit
        self._max_lag_s = max_lag_s
        self._converter: subprocess.Popen[bytes] | None = None
        # The converter starts one interval after the first rows (its first pass at
        # once): a worker that stops sooner converts them itself and starts no process.
        self._first_rows_at: float | None = None
        self._backoff = RESTART_BACKOFF_S[0]
        self._respawn_at = 0.0
        self._wake = threading.Event()
        self._thread = threading.Thread(target=self._run, name="prediction-spool", daemon=True)
        self._thread.start()

    @property
    def queued_rows(self) -> int:
        """Rows spooled and not yet converted (as far as this worker knows)."""
        return self._put_rows - self._done_rows

    @property
    def converter_pid(self) -> int | None:
        """The pid of this worker's converter process, once it runs."""
        return self._converter.pid if self._converter is not None else None

    def put_request(self, request: Logged) -> bool:
        """Spool one request's rows; False if they were dropped (spool full or closed)."""
        if self._sample_rate < 1.0 and random.random() >= self._sample_rate:  # noqa: S311 (sampling, not security)
            return True
        origin, request_id, time_s, _, latency, status, rows, inputs, outputs, ids = request
        if self._closed or self._put_bytes - self._done_bytes > self._max_bytes:
            self._drop(rows, origin.model)
            return False
        arrays = [*inputs.values(), *outputs.values(), *ids.values()]
        try:
            shape = self._shapes.get(
                (origin, request[3], *inputs, _BETWEEN, *outputs, _BETWEEN, *ids)
            )
            if shape is None or list(map(_DTYPE, arrays)) != shape.dtypes:
                shape = self._shape_of(request)
            if self._rotate:  # the flush thread asked: what follows goes to the next file
                self._rotate = False
                self._frames.append(_NEXT_FILE)
                self._generation += 1
                self._numbered = 0
            if shape.file != self._generation:
                self._declare(shape)
            rid = request_id.encode()
            frame = shape.frame(rid, arrays, status, rows, time_s, latency)
            if frame is None:  # the same dtypes, other row shapes: a layout of its own
                shape = self._shape_of(request)
                self._declare(shape)
                frame = shape.frame(rid, arrays, status, rows, time_s, latency)
                assert frame is not None
        except Exception:  # a request the spool cannot hold: counted, never a bad frame
            logger.exception("Could not spool a prediction log request")
            self._drop(rows, origin.model)
            return False
        self._frames.append(frame)
        self._put_bytes += len(frame)
        self._put_rows += rows
        return True

    def _shape_of(self, request: Logged) -> _Shape:
        """The layout of ``request``, remembered for the next requests with its names."""
        origin, _, _, protocol, _, _, _, inputs, outputs, ids = request
        dtypes = [a.dtype for a in (*inputs.values(), *outputs.values(), *ids.values())]
        shape = _Shape(layout_of(request), dtypes)
        self._shapes[(origin, protocol, *inputs, _BETWEEN, *outputs, _BETWEEN, *ids)] = shape
        return shape

    def _declare(self, shape: _Shape) -> None:
        """Number ``shape``'s layout in the current file: its frame goes first."""
        shape.number = self._numbered
        shape.file = self._generation
        self._numbered += 1
        self._frames.append(layout_frame(shape.number, shape.layout))

    def _drop(self, rows: int, model: str) -> None:
        self._dropped += rows
        if self._on_drop is not None:
            self._on_drop(rows, model)

    def close(self, timeout_s: float = 60.0) -> None:
        """Write what is buffered, close the file, and wait for the converter to convert
        everything (or convert it here when no converter runs)."""
        if self._closed:
            return
        self._closed = True
        self._wake.set()
        self._thread.join(timeout_s)
        converter = self._converter
        if converter is not None and converter.poll() is None:
            converter.terminate()  # "finish": it converts every file of this worker, then exits
            try:
                converter.wait(timeout_s)
            except subprocess.TimeoutExpired:
                logger.warning(
                    "The prediction log converter (pid %d) did not finish in %.0f s; the next "
                    "start converts what it left in %s",
                    converter.pid,
                    timeout_s,
                    self._dir,
                )
                converter.kill()
                converter.wait()
                return
        if any(self._dir.glob(f"{self.token}-*{SUFFIX}")):
            # No converter ran (or it died at the end): convert here, nothing is waiting.
            from modelport.monitoring.prediction_log.converter import SpoolConverter

            with SpoolConverter(self._dir, self._uri, columns=self._columns) as here:
                here.own(self.token)
                here.convert_token(self.token, final=True)
                here.retire(self.token)
        self._report_drops()

    # ------------------------------------------------------------------ the thread

    def _run(self) -> None:
        while True:
            self._wake.wait(self._flush_s)
            closing = self._closed
            try:
                self._flush(final=closing)
            except Exception:  # the thread must go on: what failed was counted
                logger.exception("Prediction log spool flush failed")
            if closing:
                return
            self._forget_converted()
            self._report_drops()
            if self._converter_due():
                self._keep_converter()

    def _flush(self, *, final: bool) -> None:
        """Write the frames queued so far, each to the file it was numbered for."""
        frames = self._frames
        chunk: list[bytes] = []
        for _ in range(len(frames)):
            frame = frames.popleft()
            if frame is _NEXT_FILE:
                self._write(chunk)
                chunk = []
                if self._fd is not None:
                    self._close_file()
            else:
                chunk.append(frame)  # type: ignore[arg-type]  # frames are bytes
        self._write(chunk)
        if final:
            if self._fd is not None:
                self._close_file()
        elif self._fd is not None and not self._rotate:
            age = time.monotonic() - self._opened_at
            self._rotate = self._file_bytes >= ROTATE_BYTES or age >= ROTATE_S

    def _write(self, chunk: list[bytes]) -> None:
        if not chunk:
            return
        rows = 0
        for frame in chunk:
            kind = frame[4]
            if kind == REQUEST:
                rows += _ROWS.unpack_from(frame, _ROWS_AT)[0]
            elif kind == LAYOUT:
                number, model = _layout_model(frame)
                self._models[number] = model
        try:
            if self._fd is None:
                self._open()
            assert self._fd is not None
            size = _write_all(self._fd, chunk)
        except OSError:
            logger.exception("Could not write %d prediction log rows to the spool", rows)
            self._count_lost(chunk)
            return
        self._file_bytes += size
        self._file_rows += rows

    def _open(self) -> None:
        path = self._dir / f"{self.token}-{self._seq:06d}{SUFFIX}"
        self._seq += 1
        flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_APPEND | os.O_CLOEXEC
        fd = os.open(path, flags, 0o600)
        fcntl.flock(fd, fcntl.LOCK_EX)  # "being written": converters convert only what is written
        os.write(fd, MAGIC)
        if self._first_rows_at is None:
            self._first_rows_at = time.monotonic()
        self._fd, self._path = fd, path
        self._opened_at = time.monotonic()
        self._file_bytes = len(MAGIC)
        self._file_rows = 0
        self._models = {}

    def _close_file(self) -> None:
        assert self._fd is not None
        assert self._path is not None
        with contextlib.suppress(OSError):
            os.write(self._fd, END_FRAME)
        os.close(self._fd)  # releases the lock: the file is whole
        self._written.append((self._path, self._file_bytes, self._file_rows))
        self._fd, self._path = None, None
        self._file_bytes = self._file_rows = 0

    def _forget_converted(self) -> None:
        """Closed files the converter has deleted no longer count as pending."""
        while self._written and not self._written[0][0].exists():
            _, size, rows = self._written.popleft()
            self._done_bytes += size
            self._done_rows += rows

    def _count_lost(self, chunk: list[bytes]) -> None:
        by_model: dict[str, int] = {}
        for frame in chunk:
            if frame[4] == REQUEST:
                number, rows = _NUMBER_ROWS.unpack_from(frame, _NUMBER_AT)
                model = self._models.get(number, "")
                by_model[model] = by_model.get(model, 0) + rows
            self._done_bytes += len(frame)
        for model, rows in by_model.items():
            self._done_rows += rows
            if self._on_drop is not None:
                self._on_drop(rows, model)
            self._reported -= rows  # counted as a drop below, in the warning

    def _report_drops(self) -> None:
        dropped = self._dropped - self._reported
        self._reported += dropped
        if dropped:
            logger.warning(
                "Prediction log dropped %d rows (spool full or write failed); "
                "see modelport_prediction_log_dropped_total",
                dropped,
            )

    # ------------------------------------------------------------------ the converter

    def _converter_due(self) -> bool:
        first = self._first_rows_at
        return (
            self._use_converter and first is not None and time.monotonic() - first >= self._interval
        )

    def _keep_converter(self) -> None:
        """Start the converter at the first rows; start a new one if it died."""
        converter = self._converter
        if converter is not None and converter.poll() is None:
            return
        now = time.monotonic()
        if converter is not None:
            if self._respawn_at == 0.0:
                logger.warning(
                    "The prediction log converter exited with %s; a new one starts in %.0f s",
                    converter.returncode,
                    self._backoff,
                )
                self._respawn_at = now + self._backoff
                self._backoff = min(2 * self._backoff, RESTART_BACKOFF_S[1])
            if now < self._respawn_at:
                return
        self._respawn_at = 0.0
        try:
            self._converter = spawn_converter(
                self._dir,
                self._uri,
                self.token,
                self._columns,
                {
                    "interval_s": self._interval,
                    "busy_limit": self._busy_limit,
                    "max_lag_s": self._max_lag_s,
                },
            )
        except OSError:
            logger.exception("Could not start the prediction log converter")
            self._respawn_at = now + self._backoff


def spawn_converter(
    directory: Path, uri: str, token: str, columns: list[str] | None, timing: dict[str, float]
) -> subprocess.Popen[bytes]:
    """Start the converter process of ``token``'s spool files (it lowers its own priority).
    ``timing``: its ``interval_s``, ``busy_limit`` and ``max_lag_s``."""
    spec = {
        "directory": str(directory),
        "uri": uri,
        "token": token,
        "columns": columns,
        "parent": os.getpid(),
        **timing,
    }
    return subprocess.Popen(  # noqa: S603 (our own interpreter and module)
        [sys.executable, "-m", CONVERTER_MODULE, json.dumps(spec)],
        stdin=subprocess.DEVNULL,
        close_fds=True,
    )


class _Shape:
    """A layout, the dtypes its requests' arrays must have, and how their frames are made."""

    __slots__ = ("dtypes", "file", "layout", "number", "objects", "row_bytes")

    def __init__(self, layout: Layout, dtypes: list[np.dtype[Any]]) -> None:
        self.layout = layout
        self.dtypes = dtypes
        self.file = -1  # the file generation its number belongs to
        self.number = 0
        objects = [spec.dtype == JSON_DTYPE for spec in layout.arrays]
        self.objects = objects if any(objects) else []
        self.row_bytes = sum(spec.row_bytes for spec in layout.arrays)

    def frame(  # noqa: PLR0917 (on the request path: no tuple made to carry them)
        self,
        rid: bytes,
        arrays: list[np.ndarray],
        status: int,
        rows: int,
        time_s: float,
        latency: float,
    ) -> bytes | None:
        """A request's frame; None when its arrays' sizes are not this layout's."""
        if not self.objects:
            length = REQUEST_FIXED + len(rid) + rows * self.row_bytes
            head = REQUEST_HEAD.pack(
                length, REQUEST, self.number, status, rows, time_s, latency, len(rid)
            )
            try:  # numbers and fixed-width text: their bytes, one copy (join reads buffers)
                frame = b"".join([head, rid, *arrays])  # type: ignore[list-item]  # buffers
            except (BufferError, ValueError, TypeError):  # not C-contiguous; datetimes
                frame = b"".join([head, rid, *map(_contiguous_bytes, arrays)])
            return frame if len(frame) == length + 4 else None
        parts = [rid]
        for array, is_object in zip(arrays, self.objects, strict=True):
            parts.append(object_bytes(array) if is_object else _contiguous_bytes(array))
        body = b"".join(parts)
        head = REQUEST_HEAD.pack(
            REQUEST_FIXED + len(body), REQUEST, self.number, status, rows, time_s, latency, len(rid)
        )
        return head + body


def _contiguous_bytes(array: np.ndarray) -> bytes:
    return np.ascontiguousarray(array).tobytes()


def _layout_model(frame: bytes) -> tuple[int, str]:
    (number,) = _NUMBER.unpack_from(frame, _NUMBER_AT)
    return number, str(orjson.loads(frame[LAYOUT_HEAD.size :])["model"])


_DTYPE = operator.attrgetter("dtype")
_NEXT_FILE = object()  # in the frames' deque: what follows goes to the next file
_NUMBER = struct.Struct("<I")
_NUMBER_AT = 5  # after the length and the kind
_NUMBER_ROWS = struct.Struct("<I4xI")  # a request's layout number, status, rows
_ROWS = struct.Struct("<I")
_ROWS_AT = 13


def _write_all(fd: int, chunk: list[bytes]) -> int:
    """Write the frames of ``chunk`` in order (gathered: a few system calls); bytes written."""
    total = 0
    for start in range(0, len(chunk), _IOV_MAX):
        part = chunk[start : start + _IOV_MAX]
        size = sum(map(len, part))
        written = os.writev(fd, part)
        if written < size:  # a short write: the rest, as one buffer
            rest = memoryview(b"".join(part))[written:]
            while rest:
                rest = rest[os.write(fd, rest) :]
        total += size
    return total


_IOV_MAX = 1024
