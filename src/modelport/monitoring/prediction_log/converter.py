"""Spool files to Parquet segments: the converter process of one serving worker.

``python -m modelport.monitoring.prediction_log.converter SPEC`` (started by the
worker's ``SpoolSink``) lowers itself to the idle scheduling class, takes its worker's
token lock, and every flush interval converts what the worker's spool files hold beyond
what it converted before (``SpoolConverter``). A file its worker has closed (or left by
dying: its ``flock`` is gone) is converted to its end and deleted. On SIGTERM (the
worker's clean stop) it converts everything, at normal priority, and exits; when its
worker is gone it finishes the files and exits.

Exactly once, across crashes: each pass writes one segment per (model, version, day),
named after the spool file and the offset the pass started at, then records the offset
reached (``<file>.offset``). A converter killed between the two redoes the pass from the
recorded offset, and its segments replace those of the same names: a row is never
written twice, or lost once it was in a spool file.

Files of workers whose converter is gone (a server killed as a whole) are converted by
the next converter that starts on the same spool directory (``sweep``).
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import logging
import os
import signal
import sys
import threading
import time
from collections import defaultdict
from datetime import date
from pathlib import Path
from types import TracebackType
from typing import Any

import numpy as np
import pyarrow as pa

from modelport.monitoring.prediction_log.batches import RequestColumns
from modelport.monitoring.prediction_log.segments import (
    day_dir,
    open_root,
    required,
    write_segment,
)
from modelport.monitoring.prediction_log.spool import LOCK_SUFFIX, OFFSET_SUFFIX, SUFFIX
from modelport.monitoring.prediction_log.spool_format import Layout, Run, read_frames
from modelport.priority import CpuGate, go_idle, go_normal

logger = logging.getLogger("modelport.prediction_log.converter")
PROCESS_NAME = "modelport-log"
SWEEP_EVERY = 30  # passes between looks for files whose converter is gone


class _FileState:
    __slots__ = ("layouts", "offset")

    def __init__(self, offset: int) -> None:
        self.offset = offset
        self.layouts: dict[int, Layout] = {}


class SpoolConverter:
    """Converts spool files of ``directory`` into the prediction log at ``uri``."""

    def __init__(
        self, directory: str | os.PathLike[str], uri: str, *, columns: list[str] | None = None
    ) -> None:
        self._dir = Path(directory)
        self._fs, self._root = open_root(uri)
        self._wanted = frozenset(columns) if columns is not None else None
        self._files: dict[Path, _FileState] = {}
        self._held: dict[str, int] = {}  # token -> fd of its lock file, held
        self._unreadable: set[Path] = set()

    def __enter__(self) -> SpoolConverter:
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        trace: TracebackType | None,
    ) -> None:
        for fd in self._held.values():
            os.close(fd)
        self._held.clear()

    def own(self, token: str) -> None:
        """Take ``token``'s lock, waiting while a sweeping converter holds it."""
        path = self._dir / (token + LOCK_SUFFIX)
        fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
        fcntl.flock(fd, fcntl.LOCK_EX)
        self._held[token] = fd

    def retire(self, token: str) -> None:
        """Remove ``token``'s lock file once its files are all converted (its worker is
        done with them): the spool directory keeps only what is still to convert."""
        if token in self._held and not self.files_of(token):
            (self._dir / (token + LOCK_SUFFIX)).unlink(missing_ok=True)

    def files_of(self, token: str) -> list[Path]:
        """``token``'s spool files, oldest first."""
        return sorted(self._dir.glob(f"{token}-*{SUFFIX}"))

    def convert_token(self, token: str, *, final: bool = False) -> int:
        """Convert what ``token``'s files hold beyond the last pass; delete the files
        their writer has closed. Rows converted."""
        return sum(self._convert_file(path, final=final) for path in self.files_of(token))

    def sweep(self) -> int:
        """Convert the files of workers that are gone and left no converter (a server
        killed as a whole). Rows converted."""
        tokens = {path.name.rsplit("-", 1)[0] for path in self._dir.glob(f"*{SUFFIX}")}
        tokens |= {path.name[: -len(LOCK_SUFFIX)] for path in self._dir.glob(f"*{LOCK_SUFFIX}")}
        converted = 0
        for token in sorted(tokens - set(self._held)):
            if _alive(token):  # its worker starts a converter of its own when it has rows
                continue
            lock_path = self._dir / (token + LOCK_SUFFIX)
            fd = os.open(lock_path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
            try:
                try:
                    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                except BlockingIOError:
                    continue  # its converter is alive
                converted += self.convert_token(token, final=True)
                if not self.files_of(token):
                    lock_path.unlink(missing_ok=True)
            finally:
                os.close(fd)
        return converted

    def _convert_file(self, path: Path, *, final: bool) -> int:
        try:
            fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
        except FileNotFoundError:
            self._files.pop(path, None)
            return 0
        try:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                whole = True  # its writer closed it, or died
            except BlockingIOError:
                whole = False
            state = self._files.get(path) or _FileState(_recorded_offset(path))
            self._files[path] = state
            # Resuming without the layouts (a new converter): read them from the start.
            base = 0 if not state.layouts else state.offset
            with os.fdopen(os.dup(fd), "rb") as file:
                file.seek(base)
                data = file.read()
            try:
                frames = read_frames(data, base, state.layouts, requests_from=state.offset)
            except (ValueError, KeyError):
                if path not in self._unreadable:  # said once, not every pass
                    self._unreadable.add(path)
                    logger.exception("%s is not a readable spool file; it is left in place", path)
                return 0
            rows = self._write(path, state.offset, frames.runs)
            if frames.end != state.offset:
                state.offset = frames.end
                _record_offset(path, frames.end)
            if whole:
                if frames.end < base + len(data):
                    logger.warning("%s ends in a partial frame (its writer was killed)", path)
                path.unlink()
                Path(str(path) + OFFSET_SUFFIX).unlink(missing_ok=True)
                self._files.pop(path, None)
            elif final:
                logger.warning("%s is still being written; converted up to %d", path, frames.end)
            return rows
        finally:
            os.close(fd)

    def _write(self, path: Path, start: int, runs: list[Run]) -> int:
        """One segment per (model, version, day) of the requests of ``runs``, named after
        the file and ``start`` (a redone pass replaces them)."""
        staged: defaultdict[tuple[str, str, date], list[pa.Table]] = defaultdict(list)
        rows = 0
        for run in runs:
            try:
                columns = _columns(run)
                table = columns.table(self._wanted, _go_on)
            except Exception:  # values Arrow cannot hold: say so, never stop the log
                logger.exception(
                    "Could not convert %d prediction log requests of %s; they are dropped",
                    len(run.frames),
                    run.layout.origin.model,
                )
                continue
            for day, mask in columns.days():
                staged[(columns.model, columns.version, day)].append(
                    table if mask is None else table.filter(mask)
                )
            rows += columns.rows
        name = f"{path.name[: -len(SUFFIX)]}-{start:012d}"
        for (model, version, day), tables in staged.items():
            table = (
                tables[0]
                if len(tables) == 1
                else pa.concat_tables(tables, promote_options="permissive")
            )
            directory = day_dir(self._root, model, version, day)
            write_segment(self._fs, directory, name, required(table))
        return rows


def _columns(run: Run) -> RequestColumns:
    """A run's requests as the writer's columns (no Python object per request)."""
    heads = run.heads_array()
    data, offsets = run.request_ids()
    ids = pa.StringArray.from_buffers(len(heads), pa.py_buffer(offsets), pa.py_buffer(data))
    layout = run.layout
    return RequestColumns.from_columns(
        layout.origin,
        layout.protocol,
        request_ids=ids,
        times=heads["time"],
        latencies=heads["latency"],
        statuses=heads["status"],
        counts=heads["rows"].astype(np.int64),
        arrays=run.columns(),
    )


def _go_on() -> None:
    return None


def _recorded_offset(path: Path) -> int:
    try:
        return int(Path(str(path) + OFFSET_SUFFIX).read_text())
    except (FileNotFoundError, ValueError):
        return 0


def _record_offset(path: Path, offset: int) -> None:
    record = Path(str(path) + OFFSET_SUFFIX)
    temp = record.with_name(record.name + ".tmp")
    temp.write_text(str(offset))
    temp.replace(record)


def _alive(token: str) -> bool:
    """Whether the worker that made ``token`` (``<pid>-<random>``) still runs."""
    with contextlib.suppress(ValueError):
        pid = int(token.split("-", 1)[0])
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return False
        except PermissionError:
            return True
        return True
    return False


def _due(gate: CpuGate, converted_at: float, max_lag_s: float) -> bool:
    """Whether a pass may run: the machine leaves CPU to spare, or the rows waited long
    enough (a machine busy for good must not keep its log from being written)."""
    return gate.open() or time.monotonic() - converted_at >= max_lag_s


def run(spec: dict[str, Any]) -> None:
    """The converter process's loop (see the module's docstring)."""
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl+C reaches the worker, which stops us
    go_idle()
    with contextlib.suppress(OSError):  # its name in top and ps, not one more "python3"
        Path("/proc/self/comm").write_text(PROCESS_NAME)
    token, parent = spec["token"], spec["parent"]
    with SpoolConverter(spec["directory"], spec["uri"], columns=spec["columns"]) as converter:
        converter.own(token)
        converter.sweep()
        passes = 0
        first = True
        gate = CpuGate(spec.get("busy_limit", 1.0))
        converted_at = time.monotonic()
        while True:
            # the first pass at once: its worker waited an interval before starting it
            stopping = stop.wait(0 if first else spec["interval_s"])
            first = False
            orphaned = os.getppid() != parent
            if stopping:
                go_normal()  # the worker waits for this last pass
            elif not orphaned and not _due(gate, converted_at, spec.get("max_lag_s", 30.0)):
                continue  # the machine is busy: the rows wait in the spool
            converted_at = time.monotonic()
            try:
                converter.convert_token(token, final=stopping or orphaned)
                passes += 1
                if passes % SWEEP_EVERY == 0:
                    converter.sweep()
            except Exception:  # e.g. the log's store unreachable: the spool keeps the rows
                if stopping:
                    raise
                logger.exception("Converting the prediction log spool failed; retrying")
            if stopping or (orphaned and not converter.files_of(token)):
                converter.retire(token)
                return


def main(argv: list[str] | None = None) -> int:
    """Entry point: ``SPEC`` is the JSON ``spool.spawn_converter`` passes."""
    args = sys.argv[1:] if argv is None else argv
    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s[%(process)d] %(message)s"
    )
    run(json.loads(args[0]))
    return 0


if __name__ == "__main__":
    sys.exit(main())
