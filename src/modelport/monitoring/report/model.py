"""The report as plain data: aggregates only, never a logged row.

Both renderings read this one model: ``to_dict`` is ``--format json`` and the HTML
template draws the same numbers, so the two never disagree.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

BUCKETS = {"hour": timedelta(hours=1), "day": timedelta(days=1)}
# Hourly points up to three days (72 points), daily ones beyond: enough points to see a
# trend, few enough to keep the file small and the chart readable.
HOURLY_UP_TO = timedelta(days=3)


@dataclass(frozen=True)
class Window:
    """The time range the report covers (``since <= time < until``) and its buckets."""

    since: datetime
    until: datetime
    bucket: str  # "hour" or "day"

    @classmethod
    def of(cls, since: datetime, until: datetime) -> Window:
        """A window with the bucket size that fits its length."""
        return cls(since, until, "hour" if until - since <= HOURLY_UP_TO else "day")

    @property
    def bucket_size(self) -> timedelta:
        return BUCKETS[self.bucket]


@dataclass(frozen=True)
class Serving:
    """Volume, errors and latency from the log's status and latency columns.

    Latency and status are per request (every row of a request repeats them), so
    percentiles and the error rate count requests. ``rows`` counts predictions (the
    rows of requests answered below 400); ``errors`` the requests answered 5xx.
    """

    rows: int
    requests: int
    errors: int
    latency_p50_s: float | None
    latency_p99_s: float | None

    @property
    def error_rate(self) -> float | None:
        return self.errors / self.requests if self.requests else None


@dataclass(frozen=True)
class MetricComparison:
    """One metric measured live on labelled predictions beside the registered value."""

    name: str
    live: float | None
    registered: float | None

    @property
    def change(self) -> float | None:
        if self.live is None or self.registered is None:
            return None
        return self.live - self.registered


@dataclass(frozen=True)
class Performance:
    """Live performance over the labelled predictions of the window."""

    task: str | None
    predictions: int
    labeled: int
    coverage: float
    unmatched_labels: int
    metrics: tuple[MetricComparison, ...]


@dataclass(frozen=True)
class DriftRow:
    """One column's drift test."""

    column: str
    method: str
    score: float
    threshold: float
    drifted: bool


@dataclass(frozen=True)
class Drift:
    """Per-column drift over the window and the dataset verdict."""

    rows: int
    columns: tuple[DriftRow, ...]
    share_drifted: float
    drift_share: float
    dataset_drift: bool

    @property
    def drifted_columns(self) -> int:
        return sum(c.drifted for c in self.columns)


@dataclass(frozen=True)
class Histogram:
    """Reference and current counts of one column over the reference's bins or
    categories (``labels``), the current values binned on the reference's edges."""

    column: str
    kind: str  # "bins" or "categories"
    labels: tuple[str, ...]
    reference: tuple[float, ...]
    current: tuple[int, ...]
    edges: tuple[float, ...] | None = None  # a histogram's bin edges

    @property
    def reference_shares(self) -> tuple[float, ...]:
        return _shares(self.reference)

    @property
    def current_shares(self) -> tuple[float, ...]:
        return _shares(self.current)

    @property
    def current_count(self) -> int:
        return sum(self.current)


@dataclass(frozen=True)
class Bucket:
    """One hour or day of the window."""

    start: datetime
    rows: int
    requests: int
    errors: int
    latency_p50_s: float | None
    latency_p99_s: float | None
    drift_share: float | None = None
    metric: float | None = None  # the timeline's live metric (MonitoringReport.timeline_metric)
    coverage: float | None = None

    @property
    def error_rate(self) -> float | None:
        return self.errors / self.requests if self.requests else None


@dataclass(frozen=True)
class AlertEvent:
    """One change of an alert's state."""

    time: datetime
    rule: str
    state: str  # pending, firing or resolved
    value: float | None = None
    message: str = ""
    previous: str | None = None


@dataclass(frozen=True)
class MonitoringReport:
    """Everything the report shows. Sections that could not be computed are None
    (or empty), with the reason in ``notes``."""

    model: str
    version: str | None
    generated_at: datetime
    window: Window
    serving: Serving
    performance: Performance | None
    drift: Drift | None
    histograms: tuple[Histogram, ...]
    timeline: tuple[Bucket, ...]
    timeline_metric: str | None
    alerts: tuple[AlertEvent, ...]
    notes: tuple[str, ...] = field(default=())

    def to_dict(self) -> dict[str, Any]:
        """The report as JSON-ready data (``--format json``)."""
        data: dict[str, Any] = _plain(self)
        data["serving"]["error_rate"] = self.serving.error_rate
        data["window"]["bucket_seconds"] = int(self.window.bucket_size.total_seconds())
        for bucket, plain in zip(self.timeline, data["timeline"], strict=True):
            plain["error_rate"] = bucket.error_rate
        if self.drift is not None:
            data["drift"]["drifted_columns"] = self.drift.drifted_columns
        if self.performance is not None:
            for metric, plain in zip(
                self.performance.metrics, data["performance"]["metrics"], strict=True
            ):
                plain["change"] = metric.change
        return data


def _plain(value: Any) -> Any:
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: _plain(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, Mapping):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    if isinstance(value, float) and not math.isfinite(value):
        return None  # JSON has no NaN or infinity
    return value


def _shares(counts: tuple[float, ...] | tuple[int, ...]) -> tuple[float, ...]:
    total = float(sum(counts))
    return tuple(c / total if total else 0.0 for c in counts)
