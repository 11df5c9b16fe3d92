"""How far a batch job is: a rich progress bar on a terminal, plain lines otherwise.

The bar shows rows scored (of the total when the inputs say it: Parquet footers do, CSV
files do not), rows per second, rows that failed, and the time left. Where stderr is
not a terminal (a log file, a CI job, a pipe) a line is printed every few seconds and
one at the end, so that a long job's log shows it alive without a line per part.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from typing import IO, Any, Protocol

from modelport.batch.parts import PartResult


class Progress(Protocol):
    """Told of the job's start, of each part written, and of its end."""

    def start(self, total_rows: int | None, done_rows: int = 0, done_failed: int = 0) -> None:
        """The job starts: ``total_rows`` to score (None: unknown), some done already."""
        ...

    def advance(self, part: PartResult) -> None:
        """A part was written."""
        ...

    def close(self) -> None:
        """The job ended (done or failed)."""
        ...


class NoProgress:
    """Says nothing."""

    def start(self, total_rows: int | None, done_rows: int = 0, done_failed: int = 0) -> None:
        pass

    def advance(self, part: PartResult) -> None:
        pass

    def close(self) -> None:
        pass


class _Counts:
    """Rows done and failed, and the rate since the start (resumed rows not counted)."""

    def __init__(self, clock: Callable[[], float]) -> None:
        self.clock = clock
        self.total: int | None = None
        self.rows = self.failed = self.resumed = 0
        self.started = clock()

    def start(self, total_rows: int | None, done_rows: int, done_failed: int) -> None:
        self.total, self.rows, self.failed, self.resumed = (
            total_rows,
            done_rows,
            done_failed,
            done_rows,
        )
        self.started = self.clock()

    def add(self, part: PartResult) -> None:
        self.rows += part.rows_in
        self.failed += part.rows_failed

    @property
    def rate(self) -> float:
        elapsed = self.clock() - self.started
        return (self.rows - self.resumed) / elapsed if elapsed > 0 else 0.0

    def eta(self) -> float | None:
        rate = self.rate
        if self.total is None or rate <= 0:
            return None
        return max(0.0, (self.total - self.rows) / rate)


def format_duration(seconds: float) -> str:
    """``42s``, ``3m05s``, ``2h04m``."""
    whole = round(seconds)
    if whole < 60:
        return f"{whole}s"
    if whole < 3600:
        return f"{whole // 60}m{whole % 60:02d}s"
    return f"{whole // 3600}h{whole % 3600 // 60:02d}m"


class LineProgress:
    """A plain line every ``interval`` seconds (and at the end) on ``stream``."""

    def __init__(
        self,
        stream: IO[str] | None = None,
        *,
        interval: float = 5.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._stream = stream if stream is not None else sys.stderr
        self._interval = interval
        self._counts = _Counts(clock)
        self._last = clock()

    def start(self, total_rows: int | None, done_rows: int = 0, done_failed: int = 0) -> None:
        self._counts.start(total_rows, done_rows, done_failed)
        self._last = self._counts.clock()

    def advance(self, part: PartResult) -> None:
        self._counts.add(part)
        now = self._counts.clock()
        if now - self._last >= self._interval:
            self._last = now
            self._print()

    def close(self) -> None:
        self._print()

    def line(self) -> str:
        """The current state as one line."""
        counts = self._counts
        done = f"{counts.rows:,}"
        if counts.total:
            done += f"/{counts.total:,} rows ({100 * counts.rows / counts.total:.0f}%)"
        else:
            done += " rows"
        text = f"batch: {done}, {counts.rate:,.0f} rows/s, {counts.failed:,} failed"
        eta = counts.eta()
        if eta is not None and counts.rows < (counts.total or 0):
            text += f", {format_duration(eta)} left"
        return text

    def _print(self) -> None:
        print(self.line(), file=self._stream, flush=True)


class BarProgress:
    """A rich progress bar on a terminal: rows, rows/s, failed rows, time left."""

    def __init__(self, stream: IO[str] | None = None) -> None:
        from rich.console import Console
        from rich.progress import (
            BarColumn,
            Progress,
            TextColumn,
            TimeElapsedColumn,
            TimeRemainingColumn,
        )

        self._counts = _Counts(time.monotonic)
        console = Console(file=stream if stream is not None else sys.stderr)
        self._bar = Progress(
            TextColumn("[bold]scoring"),
            BarColumn(),
            TextColumn("{task.fields[rows]} rows"),
            TextColumn("{task.fields[rate]} rows/s"),
            TextColumn("{task.fields[failed]} failed"),
            TimeElapsedColumn(),
            TimeRemainingColumn(),
            console=console,
            transient=False,
        )
        self._task: Any = None

    def start(self, total_rows: int | None, done_rows: int = 0, done_failed: int = 0) -> None:
        self._counts.start(total_rows, done_rows, done_failed)
        self._bar.start()
        self._task = self._bar.add_task(
            "scoring", total=total_rows, completed=done_rows, **self._fields()
        )

    def advance(self, part: PartResult) -> None:
        self._counts.add(part)
        self._bar.update(self._task, completed=self._counts.rows, **self._fields())

    def close(self) -> None:
        self._bar.stop()

    def _fields(self) -> dict[str, Any]:
        counts = self._counts
        rows = f"{counts.rows:,}" + (f"/{counts.total:,}" if counts.total else "")
        return {"rows": rows, "rate": f"{counts.rate:,.0f}", "failed": f"{counts.failed:,}"}


def progress_for(show: bool | None, stream: IO[str] | None = None) -> Progress:
    """The progress display for ``show``: True, a bar on a terminal and lines otherwise;
    None (the default from Python), a bar on a terminal and nothing otherwise; False,
    nothing."""
    target = stream if stream is not None else sys.stderr
    terminal = bool(getattr(target, "isatty", lambda: False)())
    if show is False or (show is None and not terminal):
        return NoProgress()
    if terminal:
        return BarProgress(target)
    return LineProgress(target)
