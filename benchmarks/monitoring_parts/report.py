"""A monitoring report of 30 days x 20 features: how long it takes and how big it is.

Issue 11, section 5: the HTML report of 30 days x 20 features stays under 2 MB (it holds
aggregates only). The log is written with the log's own segment writer, one segment per
day; the time runs from the segments to the finished page (drift per day included).

Run alone: ``python -m benchmarks.monitoring_parts.report [--quick]``.
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

from modelport.monitoring.prediction_log.records import BASE_SCHEMA
from modelport.monitoring.prediction_log.segments import day_dir, write_segment
from modelport.monitoring.report import Sources, Subject, build_report, render
from modelport.package.stats import reference_statistics

_DAYS = 30
_FEATURES = 20
_END = datetime(2026, 3, 10, tzinfo=UTC)
_MAX_BYTES = 2 * 1024 * 1024


def _write_day(root: str, day: int, rows: int, rng: np.random.Generator) -> None:
    start = _END - timedelta(days=_DAYS - day)
    times = pd.date_range(start, periods=rows, freq=timedelta(days=1) / rows)
    columns: dict[str, Any] = {
        "prediction_id": [f"d{day}-{i}-0" for i in range(rows)],
        "request_id": [f"d{day}-{i}" for i in range(rows)],
        "time": pa.array(times, type=pa.timestamp("us", tz="UTC")),
        "model": pa.repeat(pa.scalar("churn"), rows),
        "version": pa.repeat(pa.scalar("1"), rows),
        "protocol": pa.repeat(pa.scalar("v2"), rows),
        "latency_s": rng.gamma(2.0, 0.002, rows),
        "status": pa.array(np.where(rng.random(rows) < 0.01, 500, 200), pa.int32()),
    }
    for j in range(_FEATURES):
        columns[f"in_f{j}"] = rng.normal(0.02 * day * (j % 3), 1.0, rows)
    table = pa.table(
        {
            name: pa.array(values, type=BASE_SCHEMA.field(name).type)
            if name in BASE_SCHEMA.names
            else values
            for name, values in columns.items()
        }
    )
    directory = day_dir(root, "churn", "1", start.date())
    write_segment(fsspec.filesystem("file"), directory, f"1-{secrets.token_hex(4)}-0", table)


def run(quick: bool) -> list[dict[str, Any]]:
    """Rows of the benchmark table: build time and page sizes."""
    rows_per_day = 2_000 if quick else 33_334  # about 60,000 or 1,000,000 rows in all
    rng = np.random.default_rng(0)
    reference = pd.DataFrame({f"f{j}": rng.normal(0, 1, 10_000) for j in range(_FEATURES)})
    stats = reference_statistics(reference)
    with tempfile.TemporaryDirectory() as root:
        for day in range(_DAYS):
            _write_day(root, day, rows_per_day, rng)
        started = time.perf_counter()
        report = build_report(
            Subject(root, "churn", "1", stats),
            _END - timedelta(days=_DAYS),
            _END,
            sources=Sources.default(),
            now=_END,
        )
        page = render(report).encode()
        elapsed = time.perf_counter() - started
        document = render(report, "json").encode()
    total = rows_per_day * _DAYS
    case = f"report {_DAYS} days x {_FEATURES} features, {total:,} rows"
    return [
        {
            "case": f"{case}: build and render",
            "value": round(elapsed, 2),
            "unit": "s",
            "target": "-",
            "verdict": "info",
        },
        {
            "case": f"{case}: HTML size",
            "value": round(len(page) / 1024),
            "unit": "KiB",
            "target": "< 2048",
            "verdict": "pass" if len(page) < _MAX_BYTES else "FAIL",
        },
        {
            "case": f"{case}: JSON size",
            "value": round(len(document) / 1024),
            "unit": "KiB",
            "target": "< 2048",
            "verdict": "pass" if len(document) < _MAX_BYTES else "FAIL",
        },
    ]


if __name__ == "__main__":
    for row in run(quick="--quick" in sys.argv):
        print(f"{row['case']:<70} {row['value']:>10} {row['unit']:<4} {row['verdict']}")
