"""Prediction logs of a deployment's arms, for the A/B results tests: real segments in
the log's layout, with the ``deployment`` and ``arm`` columns the router writes."""

from __future__ import annotations

import secrets
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa

from modelport.monitoring.feedback.store import Label, write_labels
from modelport.monitoring.prediction_log.records import BASE_SCHEMA
from modelport.monitoring.prediction_log.segments import day_dir, open_root, write_segment

T0 = datetime(2026, 3, 10, 12, 0, tzinfo=UTC)


def write_arm(
    root: Path | str,
    *,
    model: str,
    version: int,
    predictions: Sequence[Any],
    request_ids: Sequence[str] | None = None,
    deployment: str | None = "churn",
    arm: str | None = "champion",
    latencies_s: Sequence[float] | None = None,
    statuses: Sequence[int] | None = None,
    probabilities: Sequence[Sequence[float]] | None = None,
    inputs: dict[str, Sequence[Any]] | None = None,
    start: datetime = T0,
    with_arm_columns: bool = True,
) -> list[str]:
    """One segment of single-row requests; returns the prediction ids (``<request>-0``).

    ``with_arm_columns=False`` writes a segment as the log did before deployments."""
    rows = len(predictions)
    ids = (
        list(request_ids)
        if request_ids is not None
        else [secrets.token_hex(6) for _ in range(rows)]
    )
    times = [start + timedelta(milliseconds=i) for i in range(rows)]
    columns: dict[str, pa.Array] = {
        "prediction_id": pa.array([f"{r}-0" for r in ids], pa.string()),
        "request_id": pa.array(ids, pa.string()),
        "time": pa.array(times, type=BASE_SCHEMA.field("time").type),
        "model": pa.array([model] * rows, pa.string()),
        "version": pa.array([str(version)] * rows, pa.string()),
        "protocol": pa.array(["v2"] * rows, pa.string()),
        "latency_s": pa.array(
            np.asarray(latencies_s if latencies_s is not None else [0.002] * rows, dtype=float)
        ),
        "status": pa.array(np.asarray(statuses or [200] * rows, dtype=np.int32)),
    }
    if with_arm_columns:
        columns["deployment"] = pa.array([deployment] * rows, pa.string())
        columns["arm"] = pa.array([arm] * rows, pa.string())
    for name, values in (inputs or {}).items():
        columns[f"in_{name}"] = pa.array(list(values))
    columns["out_predictions"] = pa.array(list(predictions))
    if probabilities is not None:
        columns["out_probabilities"] = pa.array([list(map(float, p)) for p in probabilities])
    table = pa.table(columns)
    fs, base = open_root(str(root))  # a path or any fsspec URI (memory://)
    directory = day_dir(base, model, str(version), start.date())
    write_segment(fs, directory, secrets.token_hex(4), table)
    return [f"{r}-0" for r in ids]


def write_truth(root: Path | str, model: str, truth: dict[str, Any]) -> None:
    """Labels by prediction id."""
    labels = [Label.of("prediction_id", key, value) for key, value in truth.items()]
    write_labels(str(root), model, labels, actor="test", source="api", now=T0)
