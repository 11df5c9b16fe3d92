"""Drift over the prediction log against stored statistics, and Evidently on the same data.

Cases (issue 11, section 6): 100,000 logged rows x 100 features in <= 1 s, and
1,000,000 rows x 20 features in <= 2 s, timed from the log's Parquet segments (written
with the log's own segment writer) to the finished report. The reference statistics are
computed once beforehand, as registration does. When Evidently is importable, its
DataDriftPreset runs on the same reference and current frames in the same run, as the
comparison (it recomputes everything from the raw reference data).

Run alone: ``python -m benchmarks.monitoring_parts.drift [--quick]``.
"""

from __future__ import annotations

import secrets
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from typing import Any

import fsspec
import numpy as np
import pandas as pd
import pyarrow as pa

from modelport.monitoring.drift_window import drift_over_log
from modelport.monitoring.prediction_log.records import BASE_SCHEMA
from modelport.monitoring.prediction_log.segments import day_dir, write_segment
from modelport.package.stats import reference_statistics

_REFERENCE_ROWS = 10_000
_SEGMENT_ROWS = 100_000  # about what a busy worker's flushes compact into
_START = datetime(2026, 3, 10, 8, tzinfo=UTC)


def _frame(rng: np.random.Generator, rows: int, features: int, shift: float) -> pd.DataFrame:
    """Mostly numeric features, one in five categorical, as a typical tabular model."""
    columns: dict[str, Any] = {}
    for j in range(features):
        if j % 5 == 4:
            columns[f"f{j}"] = rng.choice(["a", "b", "c", "d"], size=rows, p=[0.4, 0.3, 0.2, 0.1])
        else:
            columns[f"f{j}"] = rng.normal(shift * (j % 3), 1.0 + j % 4, size=rows)
    return pd.DataFrame(columns)


def _write_log(root: str, frame: pd.DataFrame) -> None:
    fs = fsspec.filesystem("file")
    for start in range(0, len(frame), _SEGMENT_ROWS):
        part = frame.iloc[start : start + _SEGMENT_ROWS]
        rows = len(part)
        times = pd.date_range(
            _START + timedelta(milliseconds=start), periods=rows, freq="1ms", tz=UTC
        )
        base = {
            "prediction_id": pa.array([f"r{start + i}-0" for i in range(rows)]),
            "request_id": pa.array([f"r{start + i}" for i in range(rows)]),
            "time": pa.array(times, type=pa.timestamp("us", tz="UTC")),
            "model": pa.repeat(pa.scalar("churn"), rows),
            "version": pa.repeat(pa.scalar("1"), rows),
            "protocol": pa.repeat(pa.scalar("v2"), rows),
            "latency_s": pa.array(np.full(rows, 0.001)),
            "status": pa.array(np.full(rows, 200, dtype=np.int32)),
        }
        arrays = [base[name].cast(BASE_SCHEMA.field(name).type) for name in BASE_SCHEMA.names]
        names = list(BASE_SCHEMA.names)
        for name in part:
            arrays.append(pa.array(part[name].to_numpy()))
            names.append(f"in_{name}")
        directory = day_dir(root, "churn", "1", _START.date())
        write_segment(
            fs, directory, f"1-{secrets.token_hex(4)}-{start:09d}", pa.table(arrays, names=names)
        )


def _evidently_seconds(reference: pd.DataFrame, current: pd.DataFrame) -> float | None:
    try:
        from evidently import Report
        from evidently.presets import DataDriftPreset
    except ImportError:
        return None
    started = time.perf_counter()
    Report([DataDriftPreset()]).run(current_data=current, reference_data=reference)
    return time.perf_counter() - started


def _case(rows: int, features: int, target_s: float, repeats: int) -> list[dict[str, Any]]:
    rng = np.random.default_rng(rows + features)
    reference = _frame(rng, _REFERENCE_ROWS, features, 0.0)
    stats = reference_statistics(reference)
    current = _frame(rng, rows, features, 0.3)
    label = f"{rows:,} rows x {features} features"
    with tempfile.TemporaryDirectory(prefix="modelport-drift-bench-") as root:
        _write_log(root, current)
        timings = []
        for _ in range(repeats):
            started = time.perf_counter()
            window = drift_over_log(root, "churn", stats, version="1")
            timings.append(time.perf_counter() - started)
        assert window.rows == rows
        assert len(window.report.columns) == features
    best = min(timings)
    out = [
        {
            "case": f"drift over the log, {label}",
            "value": round(best, 3),
            "unit": "s",
            "target": f"<= {target_s} s",
            "verdict": "PASS" if best <= target_s else "FAIL",
        }
    ]
    evidently = _evidently_seconds(reference, current)
    out.append(
        {
            "case": f"Evidently DataDriftPreset, {label} (comparison)",
            "value": round(evidently, 3) if evidently is not None else None,
            "unit": "s",
            "target": "comparison",
            "verdict": "info" if evidently is not None else "skipped: evidently not installed",
        }
    )
    return out


def _live(requests: int) -> list[dict[str, Any]]:
    """The live sketches' costs for 64-row requests of a 20-column tabular model: on the
    request path (one deque append), in the drift thread (folding), and per scrape."""
    from modelport.domain.signature import ColumnSpec
    from modelport.monitoring.drift_live import LiveDriftBook
    from modelport.serving.drifting import extractor
    from modelport.serving.interface import IOSpec, Layout, ModelIO

    rng = np.random.default_rng(5)
    names = [f"f{j}" for j in range(20)]
    reference = pd.DataFrame(rng.normal(size=(_REFERENCE_ROWS, 20)), columns=names)
    stats = reference_statistics(reference, rng.normal(size=_REFERENCE_ROWS))
    io = ModelIO(
        Layout.MATRIX,
        (IOSpec("input", "FP64", (-1, 20)),),
        (IOSpec("predictions", "FP64", (-1,)),),
        tuple(ColumnSpec(name, "float64") for name in names),
    )
    book = LiveDriftBook(window_s=3600, min_rows=1, background=False)
    feed = book.feed("bench", "1", stats, lambda columns: extractor(io, columns))
    book.flush()  # builds the sketch (imports, reference bins) outside the timings
    payloads = [
        ({"input": rng.normal(0.2, 1, size=(64, 20))}, {"predictions": rng.normal(size=64)})
        for _ in range(requests)
    ]
    started = time.perf_counter()
    for payload in payloads:
        feed.observe(payload)
    observe_us = (time.perf_counter() - started) / requests * 1e6
    started = time.perf_counter()
    book.flush()
    fold_us = (time.perf_counter() - started) / requests * 1e6
    started = time.perf_counter()
    book.current()
    scrape_ms = (time.perf_counter() - started) * 1e3
    return [
        _row("live drift: request path per request (deque append)", observe_us, "us", 1.0),
        _row("live drift: drift thread per 64-row request, 20 columns", fold_us, "us", 50.0),
        _row("live drift: scrape (merge + 21 tests)", scrape_ms, "ms", 50.0),
    ]


def _row(case: str, value: float, unit: str, target: float) -> dict[str, Any]:
    return {
        "case": case,
        "value": round(value, 2),
        "unit": unit,
        "target": f"<= {target:g} {unit}",
        "verdict": "PASS" if value <= target else "FAIL",
    }


def run(quick: bool) -> list[dict[str, Any]]:
    """The drift rows of the monitoring benchmark table."""
    repeats = 2 if quick else 3
    rows = _case(100_000, 100, 1.0, repeats)
    rows += _case(1_000_000, 20, 2.0, repeats)
    rows += _live(2000 if quick else 10_000)
    return rows


if __name__ == "__main__":
    for row in run("--quick" in sys.argv):
        value, target = row["value"], row["target"]
        print(f"{row['case']:<70} {value!s:>8} {row['unit']:<2} {target:<12} {row['verdict']}")
