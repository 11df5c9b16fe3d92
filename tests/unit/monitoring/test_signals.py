"""Serving signals from real prediction-log segments, checked against numpy."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from modelport.errors import InvalidArgumentError
from modelport.monitoring.prediction_log import PredictionLogWriter, PredictionRecord
from modelport.monitoring.prediction_log.segments import prediction_files
from modelport.monitoring.signals import serving_signals

pytestmark = pytest.mark.timeout(60)

T0 = datetime(2026, 3, 1, 23, 30, tzinfo=UTC)


def record(
    request: int, row: int, *, latency: float, status: int = 200, version: str = "1", minute: int
) -> PredictionRecord:
    return PredictionRecord(
        prediction_id=f"r{request}-{row}",
        request_id=f"r{request}",
        time=T0 + timedelta(minutes=minute),
        model="churn",
        version=version,
        protocol="v2",
        latency_s=latency,
        status=status,
        inputs={"age": request},
        outputs={"prediction": row % 2},
    )


def write(root: Path, records: list[PredictionRecord]) -> None:
    writer = PredictionLogWriter(str(root), flush_interval_s=60)
    for item in records:
        assert writer.put(item)
    writer.close()


def test_counts_rows_requests_errors_and_latency_per_request(tmp_path: Path) -> None:
    # 40 requests over 80 minutes (crossing midnight UTC): request i has i % 3 + 1 rows.
    latencies = [0.001 * (i + 1) for i in range(40)]
    records = [
        record(i, row, latency=latencies[i], status=503 if i % 10 == 0 else 200, minute=2 * i)
        for i in range(40)
        for row in range(i % 3 + 1)
    ]
    write(tmp_path, records)
    since, until = T0 + timedelta(minutes=20), T0 + timedelta(minutes=60)
    signals = serving_signals(str(tmp_path), "churn", since=since, until=until)
    inside = range(10, 30)  # minutes 20..58
    assert signals.requests == 20
    assert signals.rows == sum(i % 3 + 1 for i in inside)
    assert signals.errors == 2  # requests 10 and 20
    assert signals.error_rate == pytest.approx(0.1)
    window = [latencies[i] for i in inside]
    assert signals.p50_latency_s == pytest.approx(np.quantile(window, 0.5))
    assert signals.p99_latency_s == pytest.approx(np.quantile(window, 0.99))
    assert signals.to_dict()["error_rate"] == pytest.approx(0.1)


def test_filters_by_version_and_ignores_labels(tmp_path: Path) -> None:
    records = [record(i, 0, latency=0.01, version=str(i % 2 + 1), minute=i) for i in range(6)]
    write(tmp_path, records)
    labels = tmp_path / "churn" / "_labels" / T0.date().isoformat()
    labels.mkdir(parents=True)
    pq.write_table(pa.table({"prediction_id": ["r0-0"], "label": [1]}), labels / "x.parquet")
    until = T0 + timedelta(hours=1)
    every = serving_signals(str(tmp_path), "churn", since=T0, until=until)
    second = serving_signals(str(tmp_path), "churn", since=T0, until=until, version="2")
    assert (every.rows, second.rows) == (6, 3)
    _, files = prediction_files(str(tmp_path), "churn", since=T0, until=until)
    assert files and all("_labels" not in path for path in files)


def test_an_empty_window_has_no_rates(tmp_path: Path) -> None:
    write(tmp_path, [record(0, 0, latency=0.01, minute=0)])
    later = T0 + timedelta(days=3)
    signals = serving_signals(str(tmp_path), "churn", since=later, until=later + timedelta(hours=1))
    assert (signals.rows, signals.requests, signals.error_rate, signals.p99_latency_s) == (
        0,
        0,
        None,
        None,
    )
    nothing = serving_signals(str(tmp_path / "none"), "churn", since=T0, until=later)
    assert nothing.rows == 0


def test_naive_bounds_are_refused(tmp_path: Path) -> None:
    with pytest.raises(InvalidArgumentError, match="no timezone"):
        serving_signals(str(tmp_path), "churn", since=datetime(2026, 3, 1), until=T0)
