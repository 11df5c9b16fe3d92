"""Live accuracy over the prediction log: 1,000,000 logged predictions, 1,000,000 labels.

    python benchmarks/monitoring_parts/accuracy.py [--quick]

(``benchmarks/monitoring.py`` runs it with the other parts.) The log is written with the
prediction log's own segment writer: one day of a binary classifier's rows (prediction,
two-class probabilities, two inputs) in 100 segments of 10,000 rows, as the background
writer would leave them; the labels with the label store's writer, one segment per
100,000 labels, every prediction labeled, plus 1% corrections. Then
``live_performance`` (accuracy, precision, recall, F1, ROC AUC, log loss, coverage)
runs three times; the best and the median are reported against the target of 2 s.
Then the time ``POST /api/feedback`` spends on a batch of 100 labels on that log
(checking which keys are unknown or corrected, writing the segment), with no target:
it runs in a thread beside the server's event loop. ``--quick`` uses a tenth of the
rows (target scaled to 0.2 s).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pyarrow as pa

from modelport.monitoring.feedback.intake import labels_table, receive
from modelport.monitoring.feedback.store import Label, write_labels
from modelport.monitoring.performance import live_performance
from modelport.monitoring.prediction_log.records import BASE_SCHEMA
from modelport.monitoring.prediction_log.segments import day_dir, open_root, write_segment

SEGMENT_ROWS = 10_000
LABEL_SEGMENT_ROWS = 100_000
TARGET_S = 2.0
MODEL = "churn"


def _write_log(uri: str, rows: int, start: datetime) -> None:
    rng = np.random.default_rng(0)
    fs, root = open_root(uri)
    directory = day_dir(root, MODEL, "1", start.date())
    for first in range(0, rows, SEGMENT_ROWS):
        n = min(SEGMENT_ROWS, rows - first)
        p1 = rng.random(n)
        ids = [f"req{first + i:012d}-0" for i in range(n)]
        times = [start + timedelta(microseconds=first + i) for i in range(n)]
        columns = {
            "prediction_id": pa.array(ids),
            "request_id": pa.array([i[:-2] for i in ids]),
            "time": pa.array(times, BASE_SCHEMA.field("time").type),
            "model": pa.array([MODEL] * n),
            "version": pa.array(["1"] * n),
            "protocol": pa.array(["v2"] * n),
            "latency_s": pa.array(rng.random(n) / 1000),
            "status": pa.array([200] * n, pa.int32()),
            "in_f0": pa.array(rng.random(n)),
            "in_f1": pa.array(rng.random(n)),
            "out_predictions": pa.array((p1 > 0.5).astype(np.int64)),
            "out_probabilities": pa.array(np.c_[1 - p1, p1].tolist(), pa.list_(pa.float64())),
        }
        write_segment(fs, directory, f"bench-{first // SEGMENT_ROWS:06d}", pa.table(columns))


def _write_labels(uri: str, rows: int, now: datetime) -> None:
    rng = np.random.default_rng(1)
    for first in range(0, rows, LABEL_SEGMENT_ROWS):
        n = min(LABEL_SEGMENT_ROWS, rows - first)
        values = rng.integers(0, 2, n)
        table = pa.table(
            {
                "key_kind": pa.array(["prediction_id"] * n),
                "key": pa.array([f"req{first + i:012d}-0" for i in range(n)]),
                "label": pa.array([str(v) for v in values]),
                "label_value": pa.array(values.astype(np.float64)),
                "label_type": pa.array(["int"] * n),
            }
        )
        write_labels(uri, MODEL, table, actor="bench", source="upload", now=now)
    fixes = rows // 100  # corrections: a later label for 1% of the keys
    values = rng.integers(0, 2, fixes)
    table = pa.table(
        {
            "key_kind": pa.array(["prediction_id"] * fixes),
            "key": pa.array([f"req{i * 100:012d}-0" for i in range(fixes)]),
            "label": pa.array([str(v) for v in values]),
            "label_value": pa.array(values.astype(np.float64)),
            "label_type": pa.array(["int"] * fixes),
        }
    )
    write_labels(uri, MODEL, table, actor="bench", source="upload", now=now + timedelta(seconds=1))


def run(quick: bool) -> list[dict[str, object]]:
    """Measure; one row per case (case, value, unit, target, verdict)."""
    rows = 100_000 if quick else 1_000_000
    target = TARGET_S * rows / 1_000_000
    now = datetime.now(UTC).replace(microsecond=0)
    start = now - timedelta(hours=2)
    with tempfile.TemporaryDirectory(prefix="modelport-accuracy-") as home:
        uri = str(Path(home) / "predictions")
        _write_log(uri, rows, start)
        _write_labels(uri, rows, now)
        seconds = []
        report = None
        for _ in range(3):
            began = time.perf_counter()
            report = live_performance(uri, MODEL, since=now - timedelta(days=1))
            seconds.append(time.perf_counter() - began)
        batch = labels_table(
            [Label.of("prediction_id", f"req{i * 7:012d}-0", 1) for i in range(100)]
        )
        began = time.perf_counter()
        receive(uri, MODEL, batch, actor="bench", source="api")
        intake_s = time.perf_counter() - began
    assert report is not None
    assert report.labeled == rows, report
    case = f"live accuracy, {rows:,} predictions x {rows:,} labels (+1% corrections)"
    best, median = min(seconds), statistics.median(seconds)
    return [
        {
            "case": case + ", best of 3",
            "value": round(best, 3),
            "unit": "s",
            "target": f"<= {target:g} s",
            "verdict": "pass" if best <= target else "FAIL",
        },
        {
            "case": case + ", median of 3",
            "value": round(median, 3),
            "unit": "s",
            "target": f"<= {target:g} s",
            "verdict": "pass" if median <= target else "FAIL",
        },
        {
            "case": f"100 labels received over HTTP, log of {rows:,} rows and labels",
            "value": round(intake_s, 3),
            "unit": "s",
            "target": "-",
            "verdict": "info",
        },
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="a tenth of the rows")
    args = parser.parse_args()
    results = run(args.quick)
    width = max(len(str(r["case"])) for r in results)
    for r in results:
        print(
            f"{r['case']:<{width}}  {r['value']:>8} {r['unit']:<2} {r['target']:<10} {r['verdict']}"
        )
    sys.exit(0 if all(r["verdict"] != "FAIL" for r in results) else 1)


if __name__ == "__main__":
    main()
