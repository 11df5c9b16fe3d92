"""What each arm of a deployment did, from the prediction log (DuckDB) and the labels.

Which rows are an arm's is ``arm_rows``' rule. Requests and latencies count requests (a
request with many rows is one request); accuracy counts the labelled rows (labels joined
as ``monitoring.performance`` does); ``errors`` are requests that ended in a 5xx status
(a 4xx is the caller's doing, the same for every arm). Latencies are those of the
successful requests.

``compare_shadow`` (``monitoring.shadows``) sets a shadow against the champion on the
same requests.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import duckdb
import numpy as np

from modelport.domain.deployments import Arm
from modelport.monitoring.arm_rows import arm_filter, check_window, latencies
from modelport.monitoring.feedback.logdb import columns_of, log_database, quoted
from modelport.monitoring.performance import guess_task, labelled_rows, prediction_column
from modelport.monitoring.shadows import ShadowComparison, compare_shadow

__all__ = ["LATENCY_SAMPLE", "ArmStats", "ShadowComparison", "arm_stats", "compare_shadow"]

LATENCY_SAMPLE = 2000  # per-request latencies kept per arm for the Mann-Whitney test


@dataclass
class ArmStats:
    """One arm's traffic, errors, latency and live metrics over a window."""

    arm: str
    model: str
    version: int
    requests: int = 0
    errors: int = 0
    latency_p50_ms: float | None = None
    latency_p99_ms: float | None = None
    labelled: int = 0
    correct: int = 0
    accuracy: float | None = None  # classification only; None without labels
    mean_score: float | None = None  # mean of the score column over successful rows
    score_std: float | None = None  # its sample standard deviation (ddof=1)
    scored: int = 0  # rows with a score
    score_column: str | None = None
    latencies_ms: np.ndarray = field(default_factory=lambda: np.zeros(0))  # a sample

    @property
    def error_rate(self) -> float | None:
        """Errors over requests (None without requests)."""
        return self.errors / self.requests if self.requests else None

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form (the latency sample left out)."""
        return {
            "arm": self.arm,
            "model": self.model,
            "version": self.version,
            "requests": self.requests,
            "errors": self.errors,
            "error_rate": self.error_rate,
            "latency_p50_ms": self.latency_p50_ms,
            "latency_p99_ms": self.latency_p99_ms,
            "labelled": self.labelled,
            "correct": self.correct,
            "accuracy": self.accuracy,
            "score_column": self.score_column,
            "mean_score": self.mean_score,
            "score_std": self.score_std,
            "scored": self.scored,
        }


def arm_stats(
    log_uri: str,
    deployment: str,
    arms: Sequence[Arm],
    *,
    since: datetime,
    until: datetime | None = None,
    score: str | None = None,
    latency_sample: int = LATENCY_SAMPLE,
) -> dict[str, ArmStats]:
    """Each arm's numbers over ``[since, until)`` (timezone-aware), by arm name.

    ``score`` names a logged numeric column to average (``out_revenue``, ``in_amount``);
    by default the prediction when it is a number."""
    check_window(since, until)
    return {
        arm.name: _one_arm(
            log_uri, deployment, arm, since=since, until=until, score=score, sample=latency_sample
        )
        for arm in arms
    }


def _one_arm(
    log_uri: str,
    deployment: str,
    arm: Arm,
    *,
    since: datetime,
    until: datetime | None,
    score: str | None,
    sample: int,
) -> ArmStats:
    stats = ArmStats(arm.name, arm.model, arm.version)
    version = str(arm.version)
    with log_database(log_uri, arm.model, version=version, since=since, until=until) as db:
        logged = columns_of(db, "predictions")
        where = arm_filter(logged, deployment, arm, since, until)
        if where is None:
            return stats
        db.execute(f"CREATE VIEW arm_rows AS SELECT * FROM predictions WHERE {where}")  # noqa: S608
        db.execute("CREATE VIEW window_rows AS SELECT * FROM arm_rows WHERE status < 400")
        _count(db, stats)
        stats.latency_p50_ms, stats.latency_p99_ms, stats.latencies_ms = latencies(
            db, "arm_rows", sample
        )
        _accuracy(db, logged, stats)
        _score(db, logged, stats, score)
    return stats


def _count(db: duckdb.DuckDBPyConnection, stats: ArmStats) -> None:
    row = db.execute(
        "SELECT count(DISTINCT request_id), "
        "count(DISTINCT request_id) FILTER (WHERE status >= 500) FROM arm_rows"
    ).fetchone()
    stats.requests, stats.errors = (int(row[0]), int(row[1])) if row else (0, 0)


def _accuracy(db: duckdb.DuckDBPyConnection, logged: dict[str, str], stats: ArmStats) -> None:
    prediction = prediction_column(logged)
    if prediction is None or logged[prediction].endswith("]"):
        return
    joined, numeric = labelled_rows(db, logged, prediction)
    stats.labelled = joined.num_rows
    if not stats.labelled:
        return
    if numeric:
        y_pred = joined.column("pred").to_numpy()
        y_true = joined.column("label").to_numpy()
    else:
        y_pred = np.asarray(joined.column("pred").to_pylist(), dtype=object)
        y_true = np.asarray(joined.column("label").to_pylist(), dtype=object)
    has_proba = joined.column("proba").null_count < joined.num_rows
    if guess_task(numeric, logged[prediction], has_proba, y_true, y_pred) != "classification":
        return  # a regression's predictions are never exactly right: no accuracy
    stats.correct = int(np.sum(y_pred == y_true))
    stats.accuracy = stats.correct / stats.labelled


def _score(
    db: duckdb.DuckDBPyConnection, logged: dict[str, str], stats: ArmStats, score: str | None
) -> None:
    column = score if score is not None else prediction_column(logged)
    if column is None or column not in logged or logged[column].endswith("]"):
        return
    if score is None and logged[column] in ("VARCHAR", "BOOLEAN"):
        return  # class names: nothing to average
    value = f"TRY_CAST({quoted(column)} AS DOUBLE)"
    row = db.execute(
        f"SELECT avg({value}), stddev_samp({value}), count({value}) FROM window_rows"  # noqa: S608
    ).fetchone()
    if not row or not row[2]:
        return
    stats.score_column = column
    stats.mean_score = float(row[0])
    stats.score_std = float(row[1]) if row[1] is not None else None
    stats.scored = int(row[2])
