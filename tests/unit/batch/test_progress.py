"""What a batch job shows while it runs: plain lines, a rich bar, or nothing."""

from __future__ import annotations

import io

from modelport.batch.parts import PartResult
from modelport.batch.progress import (
    BarProgress,
    LineProgress,
    NoProgress,
    format_duration,
    progress_for,
)


class _Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def _part(rows: int, failed: int = 0) -> PartResult:
    return PartResult("part", rows, rows - failed, failed)


def test_lines_come_every_few_seconds_and_at_the_end() -> None:
    out = io.StringIO()
    now = [100.0]
    progress = LineProgress(out, interval=5.0, clock=lambda: now[0])
    progress.start(total_rows=1_000_000)

    now[0] = 102.0
    progress.advance(_part(100_000))  # 2 s in: too soon for a line
    assert out.getvalue() == ""
    now[0] = 105.0
    progress.advance(_part(150_000, failed=3))
    assert out.getvalue() == (
        "batch: 250,000/1,000,000 rows (25%), 50,000 rows/s, 3 failed, 15s left\n"
    )
    now[0] = 120.0
    progress.advance(_part(750_000))
    progress.close()
    assert out.getvalue().splitlines()[-1] == (
        "batch: 1,000,000/1,000,000 rows (100%), 50,000 rows/s, 3 failed"
    )


def test_without_a_total_lines_count_rows_and_a_resumed_job_counts_its_own_rate() -> None:
    out = io.StringIO()
    now = [0.0]
    progress = LineProgress(out, clock=lambda: now[0])
    progress.start(total_rows=None, done_rows=5_000, done_failed=1)
    now[0] = 2.0
    progress.advance(_part(2_000))
    progress.close()
    assert out.getvalue() == "batch: 7,000 rows, 1,000 rows/s, 1 failed\n"


def test_durations_read_easily() -> None:
    assert [format_duration(s) for s in (4.4, 185, 7_440)] == ["4s", "3m05s", "2h04m"]


def test_a_bar_on_a_terminal_lines_elsewhere_nothing_when_asked() -> None:
    assert isinstance(progress_for(True, _Terminal()), BarProgress)
    assert isinstance(progress_for(None, _Terminal()), BarProgress)
    assert isinstance(progress_for(True, io.StringIO()), LineProgress)
    # From Python, a log file gets nothing unless asked for.
    assert isinstance(progress_for(None, io.StringIO()), NoProgress)
    assert isinstance(progress_for(False, _Terminal()), NoProgress)


def test_the_bar_shows_rows_rate_and_failures() -> None:
    out = _Terminal()
    bar = BarProgress(out)
    bar.start(total_rows=2_000)
    bar.advance(_part(1_000, failed=7))
    bar.close()
    text = out.getvalue()
    assert "1,000/2,000 rows" in text and "7 failed" in text and "rows/s" in text
