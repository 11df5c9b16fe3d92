"""Assemble a monitoring report from the prediction log, the reference statistics, the
live performance, drift and alert history.

Volume, latency, errors and histograms are DuckDB aggregates over the log
(``aggregates``); drift and live performance come from the monitoring modules that
compute them for the HTTP routes and the CLI, so every surface shows the same numbers.
Those sources are parameters (``Sources``) so a caller can pass its own, e.g. the
alert history of its metadata store.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import Any

from modelport.errors import InvalidArgumentError, ModelportError
from modelport.monitoring.drift.report import reference_columns
from modelport.monitoring.report import aggregates
from modelport.monitoring.report.aggregates import LogScan
from modelport.monitoring.report.model import (
    AlertEvent,
    Bucket,
    Drift,
    DriftRow,
    Histogram,
    MetricComparison,
    MonitoringReport,
    Performance,
    Window,
)

logger = logging.getLogger(__name__)

BUCKET_THREADS = 4  # buckets computed at once
# The live metric drawn over time: the first one the performance report has.
TIMELINE_METRICS = ("accuracy", "f1", "roc_auc", "mae", "rmse", "r2")
LIVE_METRICS = ("accuracy", "precision", "recall", "f1", "roc_auc", "log_loss", "mae", "rmse", "r2")
# Registered metrics often carry another spelling or a split prefix: "test_auc" is
# compared with the live "roc_auc".
_SPELLINGS = {
    "auc": "roc_auc",
    "roc-auc": "roc_auc",
    "rocauc": "roc_auc",
    "acc": "accuracy",
    "f1_score": "f1",
    "logloss": "log_loss",
    "neg_log_loss": "log_loss",
    "mean_absolute_error": "mae",
    "root_mean_squared_error": "rmse",
    "r2_score": "r2",
}
_SPLIT_PREFIXES = ("test_", "val_", "validation_", "eval_", "holdout_")

AlertSource = Callable[[datetime, datetime], Iterable[Any]]


@dataclass(frozen=True)
class Sources:
    """Where drift, live performance and alert history come from.

    ``drift`` has the signature of ``drift_window.drift_over_log``, ``performance``
    that of ``performance.live_performance``; ``alerts(since, until)`` yields the
    model's alert state changes (objects or mappings with time, rule, state, value,
    message). A None source leaves its section out, with a note saying why.
    """

    drift: Callable[..., Any] | None = None
    performance: Callable[..., Any] | None = None
    alerts: AlertSource | None = None

    @classmethod
    def default(cls, alerts: AlertSource | None = None) -> Sources:
        """modelport's own drift and performance functions (imported here: they bring
        scipy and the label store)."""
        from modelport.monitoring.drift_window import drift_over_log
        from modelport.monitoring.performance import live_performance

        return cls(drift=drift_over_log, performance=live_performance, alerts=alerts)


@dataclass(frozen=True)
class Subject:
    """What the report is about: a model (one version or all) and its registration."""

    log_uri: str
    model: str
    version: str | None = None
    stats: Mapping[str, Any] | None = None
    registered_metrics: Mapping[str, float] | None = None
    drift_options: Mapping[str, Any] | None = None


def build_report(
    subject: Subject,
    since: datetime,
    until: datetime | None = None,
    *,
    sources: Sources | None = None,
    now: datetime | None = None,
) -> MonitoringReport:
    """The report of ``subject`` over ``since <= time < until`` (until defaults to now)."""
    now = now or datetime.now(UTC)
    until = until or now
    for name, bound in (("since", since), ("until", until)):
        if bound.tzinfo is None:
            raise InvalidArgumentError(
                f"report window {name}={bound} has no timezone: give a timezone-aware time",
                field=name,
            )
    if since >= until:
        raise InvalidArgumentError(
            f"report window is empty: since={since.isoformat()} is not before "
            f"until={until.isoformat()}",
            field="since",
        )
    window = Window.of(since, until)
    sources = sources or Sources()
    scan = LogScan.of(subject.log_uri, subject.model, subject.version, window)
    notes: list[str] = []
    serving = aggregates.serving_summary(scan, window)
    buckets = aggregates.timeline(scan, window)
    drift, histograms = _drift_section(subject, window, scan, sources, notes)
    performance = _performance_section(subject, window, sources, notes)
    metric = _timeline_metric(performance)
    buckets = _bucket_details(
        subject, window, buckets, sources, with_drift=drift is not None, metric=metric
    )
    alerts = _alert_section(window, sources, notes)
    if serving.rows == 0:
        notes.insert(0, "The prediction log has no rows for this model in the window.")
    return MonitoringReport(
        model=subject.model,
        version=subject.version,
        generated_at=now,
        window=window,
        serving=serving,
        performance=performance,
        drift=drift,
        histograms=tuple(histograms),
        timeline=tuple(buckets),
        timeline_metric=metric,
        alerts=alerts,
        notes=tuple(notes),
    )


def _drift_section(
    subject: Subject, window: Window, scan: LogScan, sources: Sources, notes: list[str]
) -> tuple[Drift | None, list[Histogram]]:
    try:
        references = list(reference_columns(subject.stats).values())
    except ModelportError as exc:  # no statistics, or too old: say so, keep the rest
        notes.append(f"No drift or histograms: {exc.message}")
        return None, []
    drift = None
    if sources.drift is None:
        notes.append("No drift table: no drift source is available.")
    else:
        try:
            drift = _drift(subject, window.since, window.until, sources, notes)
        except ModelportError as exc:
            notes.append(f"No drift table: {exc.message}")
    classes = list(((subject.stats or {}).get("predictions") or {}).get("probabilities") or {})
    histograms = aggregates.histograms(scan, window, references, classes)
    if drift is not None:  # drifted columns first, each group in the report's order
        order = {row.column: (not row.drifted, i) for i, row in enumerate(drift.columns)}
        histograms.sort(key=lambda h: order.get(h.column, (True, len(order))))
    return drift, histograms


def _drift(
    subject: Subject,
    since: datetime,
    until: datetime,
    sources: Sources,
    notes: list[str] | None = None,
) -> Drift:
    """The drift of one window; its untested columns and notes go to ``notes``."""
    assert sources.drift is not None
    result = sources.drift(
        subject.log_uri,
        subject.model,
        subject.stats,
        version=subject.version,
        since=since,
        until=until,
        options=subject.drift_options,
    )
    report = result.report
    if notes is not None:
        untested = list(getattr(result, "untested", ()))
        if untested:
            notes.append(f"Not tested for drift (not in the log): {', '.join(untested)}.")
        notes.extend(str(note) for note in getattr(result, "notes", ()))
    rows = [
        DriftRow(c.column, c.method, float(c.score), float(c.threshold), bool(c.drifted))
        for c in report.columns
    ]
    rows.sort(key=lambda r: not r.drifted)  # stable: drifted first, then the report's order
    return Drift(
        rows=int(result.rows),
        columns=tuple(rows),
        share_drifted=float(report.share_drifted),
        drift_share=float(report.drift_share),
        dataset_drift=bool(report.dataset_drift),
    )


def _performance_section(
    subject: Subject, window: Window, sources: Sources, notes: list[str]
) -> Performance | None:
    if sources.performance is None:
        notes.append("No live performance: no performance source is available.")
        return None
    try:
        found = _performance(subject, window.since, window.until, sources)
    except ModelportError as exc:
        notes.append(f"No live performance: {exc.message}")
        return None
    metrics = compare_metrics(found.metrics, subject.registered_metrics or {})
    if found.labeled == 0:
        notes.append("No labels arrived for this window's predictions: no live metrics.")
    return replace(found, metrics=metrics)


def _performance(
    subject: Subject, since: datetime, until: datetime, sources: Sources
) -> Performance:
    assert sources.performance is not None
    found = sources.performance(
        subject.log_uri, subject.model, version=subject.version, since=since, until=until
    )
    return Performance(
        task=found.task,
        predictions=int(found.predictions),
        labeled=int(found.labeled),
        coverage=float(found.coverage),
        unmatched_labels=int(found.unmatched_labels),
        metrics=tuple(MetricComparison(k, float(v), None) for k, v in found.metrics.items()),
    )


def compare_metrics(
    live: Iterable[MetricComparison] | Mapping[str, float], registered: Mapping[str, float]
) -> tuple[MetricComparison, ...]:
    """Live metrics beside the registered ones of the same meaning (``test_auc`` beside
    ``roc_auc``); registered metrics modelport measures live but could not are kept."""
    values = (
        {m.name: m.live for m in live}
        if not isinstance(live, Mapping)
        else {k: float(v) for k, v in live.items()}
    )
    known = {_canonical(name): float(value) for name, value in registered.items()}
    names = list(values) + [n for n in LIVE_METRICS if n in known and n not in values]
    return tuple(MetricComparison(n, values.get(n), known.get(n)) for n in names)


def _canonical(name: str) -> str:
    key = name.strip().lower()
    for prefix in _SPLIT_PREFIXES:
        if key.startswith(prefix):
            key = key[len(prefix) :]
            break
    return _SPELLINGS.get(key, key)


def _timeline_metric(performance: Performance | None) -> str | None:
    if performance is None or performance.labeled == 0:
        return None
    live = {m.name for m in performance.metrics if m.live is not None}
    return next((name for name in TIMELINE_METRICS if name in live), None)


def _bucket_details(
    subject: Subject,
    window: Window,
    buckets: list[Bucket],
    sources: Sources,
    *,
    with_drift: bool,
    metric: str | None,
) -> list[Bucket]:
    """Drift share and the live metric of each bucket that has predictions.

    Buckets are independent windows, computed a few at once: DuckDB and scipy release
    the GIL, so spare cores shorten a long report.
    """

    def detail(bucket: Bucket) -> Bucket:
        if bucket.rows == 0:
            return bucket
        since = max(bucket.start, window.since)
        until = min(bucket.start + window.bucket_size, window.until)
        drift_share = coverage = value = None
        try:
            if with_drift:
                drift_share = _drift(subject, since, until, sources).share_drifted
            if metric is not None:
                found = _performance(subject, since, until, sources)
                coverage = found.coverage
                value = next((m.live for m in found.metrics if m.name == metric), None)
        except ModelportError as exc:  # one thin bucket must not sink the report
            logger.warning("Report bucket %s: %s", bucket.start.isoformat(), exc.message)
        return replace(bucket, drift_share=drift_share, metric=value, coverage=coverage)

    if not with_drift and metric is None:
        return buckets
    with ThreadPoolExecutor(max_workers=BUCKET_THREADS, thread_name_prefix="report") as pool:
        return list(pool.map(detail, buckets))


def _alert_section(window: Window, sources: Sources, notes: list[str]) -> tuple[AlertEvent, ...]:
    if sources.alerts is None:
        notes.append("No alert history: no alert source is available.")
        return ()
    events = [_alert_event(item) for item in sources.alerts(window.since, window.until)]
    events.sort(key=lambda e: e.time, reverse=True)
    return tuple(events)


def _alert_event(item: Any) -> AlertEvent:
    """An event from a mapping or an object: ``time``, ``rule``, ``state`` (or the
    alert store's ``to_status``), ``previous`` (or ``from_status``), ``value``,
    ``message``."""
    if isinstance(item, AlertEvent):
        return item
    get = (
        item.get
        if isinstance(item, Mapping)
        else lambda key, default=None: getattr(item, key, default)
    )
    value, time = get("value"), get("time")
    if isinstance(time, str):
        time = datetime.fromisoformat(time)
    if not isinstance(time, datetime):
        raise InvalidArgumentError(f"alert event {item!r} has no time (a datetime)")
    state = get("state") or get("to_status") or ""
    previous = get("previous") or get("from_status")
    return AlertEvent(
        time=time,
        rule=str(get("rule", "")),
        state=str(state),
        value=float(value) if value is not None else None,
        message=str(get("message", "") or ""),
        previous=str(previous) if previous is not None else None,
    )
