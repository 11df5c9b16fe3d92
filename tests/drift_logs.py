"""Prediction logs made of DataFrames, for the drift tests: real segments in the log's layout."""

from __future__ import annotations

import secrets
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa

from modelport.monitoring.prediction_log.records import BASE_SCHEMA
from modelport.monitoring.prediction_log.segments import day_dir, write_segment


def log_table(
    frame: pd.DataFrame,
    *,
    model: str,
    version: str,
    start: datetime,
    step: timedelta = timedelta(milliseconds=1),
    predictions: Any = None,
    probabilities: np.ndarray | None = None,
) -> pa.Table:
    """The log rows of ``frame`` (one per row), ``step`` apart from ``start``."""
    rows = len(frame)
    times = pd.date_range(start, periods=rows, freq=step, tz=UTC) if rows else []
    token = secrets.token_hex(4)
    base = {
        "prediction_id": [f"{token}-{i}" for i in range(rows)],
        "request_id": [token] * rows,
        "time": pa.array(times, type=pa.timestamp("us", tz="UTC")),
        "model": [model] * rows,
        "version": [version] * rows,
        "protocol": ["v2"] * rows,
        "latency_s": np.full(rows, 0.001),
        "status": pa.array(np.full(rows, 200, dtype=np.int32)),
    }
    arrays = {name: pa.array(base[name], type=BASE_SCHEMA.field(name).type) for name in base}
    for name in frame:
        arrays[f"in_{name}"] = pa.array(frame[name].to_numpy())
    if predictions is not None:
        arrays["out_predictions"] = pa.array(np.asarray(predictions))
    if probabilities is not None:
        arrays["out_probabilities"] = pa.array(list(np.asarray(probabilities, dtype="float64")))
    return pa.table(arrays)


def write_log(root: Path | str, table: pa.Table, *, model: str, version: str) -> None:
    """Write ``table`` as one segment per UTC day, as the log's writer does."""
    import fsspec

    fs = fsspec.filesystem("file")
    days = pd.Series(table.column("time").to_pandas()).dt.date
    for day in sorted(set(days)):
        part = table.filter(pa.array((days == day).to_numpy()))
        directory = day_dir(str(root), model, version, day)
        write_segment(fs, directory, f"{secrets.token_hex(4)}-000000", part)


NOW = datetime(2026, 3, 10, 12, 0, tzinfo=UTC)
