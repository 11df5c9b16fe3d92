"""Serving signals from the prediction log: volume, error rate and latency over a window.

Computed with one DuckDB aggregate over the window's segment files (only the day
directories the window touches are listed, and only four columns are read), so the
numbers are the same whichever replica or evaluator asks. Latency and errors are
counted per request, not per row: a 64-row request is one request that took its
latency once. ``error_rate`` is the share of requests answered 5xx; ``volume`` counts
rows (predictions), which is what a model's traffic and ``min_samples`` are about.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

import duckdb
from fsspec.implementations.local import LocalFileSystem

from modelport.errors import InvalidArgumentError
from modelport.monitoring.prediction_log.segments import (
    open_root,
    prediction_files,
)

_SQL = """
WITH requests AS (
    SELECT request_id, count(*) AS rows, max(latency_s) AS latency_s, max(status) AS status
    FROM read_parquet(?, union_by_name = true)
    WHERE time >= ?::TIMESTAMPTZ AND time < ?::TIMESTAMPTZ
    GROUP BY request_id
)
SELECT coalesce(sum(rows), 0)::BIGINT,
       count(*),
       count(*) FILTER (WHERE status >= 500),
       quantile_cont(latency_s, 0.5),
       quantile_cont(latency_s, 0.99)
FROM requests
"""


@dataclass(frozen=True)
class ServingSignals:
    """What the log says about serving between ``since`` (inclusive) and ``until``."""

    model: str
    version: str | None
    since: datetime
    until: datetime
    rows: int
    requests: int
    errors: int
    p50_latency_s: float | None
    p99_latency_s: float | None

    @property
    def error_rate(self) -> float | None:
        """Share of requests answered with a 5xx status; None without requests."""
        return self.errors / self.requests if self.requests else None

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form."""
        return {
            "model": self.model,
            "version": self.version,
            "since": self.since.isoformat(),
            "until": self.until.isoformat(),
            "rows": self.rows,
            "requests": self.requests,
            "errors": self.errors,
            "error_rate": self.error_rate,
            "p50_latency_s": self.p50_latency_s,
            "p99_latency_s": self.p99_latency_s,
        }


def serving_signals(
    log_uri: str,
    model: str,
    *,
    since: datetime,
    until: datetime,
    version: str | None = None,
) -> ServingSignals:
    """Volume, errors and latency of ``model`` (one version or all) in ``[since, until)``."""
    for bound in (since, until):
        if bound.tzinfo is None:
            raise InvalidArgumentError(
                f"window bound {bound} has no timezone: give a timezone-aware time"
            )
    _, files = prediction_files(log_uri, model, version, since, until)
    empty = ServingSignals(model, version, since, until, 0, 0, 0, None, None)
    if not files:
        return empty
    fs, _ = open_root(log_uri)
    connection = duckdb.connect()
    try:
        if not isinstance(fs, LocalFileSystem):
            connection.register_filesystem(fs)
            files = [fs.unstrip_protocol(path) for path in files]
        row = connection.execute(_SQL, [files, since, until]).fetchone()
    finally:
        connection.close()
    if row is None:
        return empty
    rows, requests, errors, p50, p99 = row
    return ServingSignals(model, version, since, until, rows, requests, errors, p50, p99)
