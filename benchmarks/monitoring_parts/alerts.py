"""Alert evaluation over the prediction log: what one rule's log signal costs.

Cases: the serving signals (rows, requests, errors, p50/p99 latency per request) of a
one-hour window holding 1,000,000 logged rows (64-row and single-row requests mixed),
and one evaluation round of five log-signal rules over the same window (states saved
in SQLite). The issue sets no target for alerts; the target here (1 s per round) is
ours: an evaluator every 30 s should spend most of its time waiting.

Run alone: ``python -m benchmarks.monitoring_parts.alerts [--quick]``.
"""

from __future__ import annotations

import secrets
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import fsspec
import numpy as np
import pyarrow as pa

from modelport.config import AlertRule
from modelport.metadata.sql import SqlMetadataStore
from modelport.monitoring.alerts.actions import ActionRunner
from modelport.monitoring.alerts.engine import AlertEngine
from modelport.monitoring.alerts.readings import SignalReader
from modelport.monitoring.prediction_log.records import BASE_SCHEMA
from modelport.monitoring.prediction_log.segments import day_dir, write_segment
from modelport.monitoring.signals import serving_signals

_SEGMENT_ROWS = 100_000
_END = datetime(2026, 3, 10, 12, tzinfo=UTC)
_TARGET_S = 1.0


def _write_log(root: str, rows: int) -> None:
    """``rows`` rows over the hour before ``_END``: requests of 64 rows and of 1 row."""
    rng = np.random.default_rng(0)
    fs = fsspec.filesystem("file")
    request = np.repeat(np.arange(rows // 128 + 1), 64)[: rows // 2]
    request = np.concatenate([request, np.arange(rows - len(request)) + request.max() + 1])
    offsets = np.sort(rng.uniform(0, 3600, size=rows))
    for start in range(0, rows, _SEGMENT_ROWS):
        stop = min(start + _SEGMENT_ROWS, rows)
        count = stop - start
        ids = request[start:stop]
        times = [
            _END - timedelta(hours=1) + timedelta(seconds=float(s)) for s in offsets[start:stop]
        ]
        columns = {
            "prediction_id": pa.array([f"r{r}-{i}" for i, r in enumerate(ids)]),
            "request_id": pa.array([f"r{r}" for r in ids]),
            "time": pa.array(times, type=pa.timestamp("us", tz="UTC")),
            "model": pa.repeat(pa.scalar("churn"), count),
            "version": pa.repeat(pa.scalar("1"), count),
            "protocol": pa.repeat(pa.scalar("v2"), count),
            "latency_s": pa.array(rng.gamma(2.0, 0.002, size=count)),
            "status": pa.array(np.where(rng.random(count) < 0.01, 500, 200).astype(np.int32)),
        }
        table = pa.table([columns[n].cast(BASE_SCHEMA.field(n).type) for n in BASE_SCHEMA.names],
                         names=list(BASE_SCHEMA.names))  # fmt: skip
        table = table.append_column("in_x", pa.array(rng.normal(size=count)))
        directory = day_dir(root, "churn", "1", _END.date())
        write_segment(fs, directory, f"1-{secrets.token_hex(4)}-{start:09d}", table)


def _best_of(runs: int, work: Any) -> float:
    best = float("inf")
    for _ in range(runs):
        started = time.perf_counter()
        work()
        best = min(best, time.perf_counter() - started)
    return best


def _rules() -> dict[str, AlertRule]:
    base = {"model": "churn", "comparison": ">", "window": "1h"}
    thresholds = {"volume": 1e9, "error_rate": 0.05, "p50_latency": 1, "p99_latency": 1}
    rules = {s: AlertRule.model_validate({**base, "signal": s, "threshold": t})
             for s, t in thresholds.items()}  # fmt: skip
    rules["errors_slow"] = AlertRule.model_validate(
        {**base, "signal": "error_rate", "threshold": 0.5, "min_samples": 1000}
    )
    return rules


def run(quick: bool) -> list[dict[str, Any]]:
    """The benchmark rows: case, value, unit, target, verdict."""
    rows = 100_000 if quick else 1_000_000
    with tempfile.TemporaryDirectory() as directory:
        log = str(Path(directory) / "log")
        _write_log(log, rows)
        since = _END - timedelta(hours=1)
        signals_s = _best_of(3, lambda: serving_signals(log, "churn", since=since, until=_END))
        store = SqlMetadataStore(f"sqlite:///{directory}/alerts.db")
        try:
            actions = ActionRunner(store, log_uri=log, retrain_dir=directory)
            engine = AlertEngine(_rules(), store, SignalReader(log), actions)
            # A new end time each round, as each real round has: nothing is reused.
            ends = iter(_END + timedelta(milliseconds=n) for n in range(3))
            round_s = _best_of(3, lambda: engine.evaluate(next(ends)))
        finally:
            store.close()
    return [
        _row(f"serving signals of a 1 h window, {rows:,} rows", signals_s),
        _row(f"one evaluation round, 5 log rules, {rows:,} rows", round_s),
    ]


def _row(case: str, seconds: float) -> dict[str, Any]:
    return {
        "case": case,
        "value": round(seconds, 3),
        "unit": "s",
        "target": f"<= {_TARGET_S:g} s (ours)",
        "verdict": "pass" if seconds <= _TARGET_S else "FAIL",
    }


if __name__ == "__main__":
    for result in run("--quick" in sys.argv):
        print(f"{result['case']:<55} {result['value']:>8} {result['unit']}  "
              f"{result['target']:<16} {result['verdict']}")  # fmt: skip
