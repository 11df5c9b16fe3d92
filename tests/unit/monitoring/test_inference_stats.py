"""Per-version inference statistics: what each call counts, and how workers' totals add up
through the metrics directory."""

from __future__ import annotations

import logging
import time
from pathlib import Path

import pytest

from modelport.monitoring.inference_stats import FILE_PREFIX, StatsBook


def test_each_measurement_counts_where_triton_counts_it() -> None:
    book = StatsBook()
    stats = book.version("forest", "1")
    assert book.version("forest", "1") is stats  # the recorder and the observer share it
    stats.waited(0.001)
    stats.waited(0.003)
    stats.executed(rows=5, requests=2, seconds=0.010)  # one call for both requests
    stats.answered(rows=2, seconds=0.020)
    stats.answered(rows=3, seconds=0.030)
    stats.failed(0.004)
    totals = book.totals()[("forest", "1")]
    counts = totals.counts
    assert (counts["success_count"], counts["success_s"]) == (2, pytest.approx(0.05))
    assert (counts["fail_count"], counts["fail_s"]) == (1, pytest.approx(0.004))
    assert (counts["queue_count"], counts["queue_s"]) == (2, pytest.approx(0.004))
    # A call's time counts once for each request in it, as Triton's compute_infer does.
    assert (counts["compute_count"], counts["compute_s"]) == (2, pytest.approx(0.02))
    assert (counts["inference_count"], counts["execution_count"]) == (5, 1)
    assert totals.batches == {5: (1, pytest.approx(0.01))}
    assert time.time() - totals.last < 5


def test_workers_totals_add_up_in_the_shared_directory(tmp_path: Path) -> None:
    first, second = StatsBook(str(tmp_path)), StatsBook(str(tmp_path))
    first.version("forest", "1").executed(rows=4, requests=1, seconds=0.5)
    first.version("forest", "1").answered(rows=4, seconds=1.0)
    second.version("forest", "1").executed(rows=4, requests=1, seconds=0.25)
    second.version("forest", "1").executed(rows=2, requests=2, seconds=0.25)
    second.version("forest", "1").answered(rows=1, seconds=2.0)
    second.version("churn", "3")  # served, never asked
    first.flush()  # the first worker's periodic flush; the second flushes as it reads
    totals = second.totals()
    forest = totals[("forest", "1")]
    assert forest.counts["success_count"] == 2
    assert forest.counts["success_s"] == pytest.approx(3.0)
    assert forest.counts["inference_count"] == 5
    assert forest.counts["execution_count"] == 3
    assert forest.batches == {4: (2, pytest.approx(0.75)), 2: (1, pytest.approx(0.25))}
    assert totals[("churn", "3")].counts["success_count"] == 0
    # What the first worker did after its last flush shows at its next one.
    first.version("forest", "1").answered(rows=1, seconds=1.0)
    assert second.totals()[("forest", "1")].counts["success_count"] == 2
    first.flush()
    assert second.totals()[("forest", "1")].counts["success_count"] == 3


def test_a_dead_workers_counts_stay_and_an_unreadable_file_is_skipped(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    dead = StatsBook(str(tmp_path))
    dead.version("forest", "1").answered(rows=1, seconds=1.0)
    dead.flush()
    del dead  # its file stays, as Prometheus counters of a dead worker do
    (tmp_path / f"{FILE_PREFIX}999-broken.json").write_text("[{")
    alive = StatsBook(str(tmp_path))
    alive.version("forest", "1").answered(rows=2, seconds=1.0)
    with caplog.at_level(logging.WARNING):
        totals = alive.totals()
    assert totals[("forest", "1")].counts["inference_count"] == 3
    assert "skipping unreadable inference statistics" in caplog.text
