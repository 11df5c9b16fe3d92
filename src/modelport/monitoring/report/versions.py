"""The monitoring report of one registered version, as ``modelport monitor report``
writes it on this machine and the control plane answers it over HTTP: the same
subject, sources and summary either way."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

from modelport.domain.refs import ModelRef
from modelport.monitoring.drift.selection import ColumnOptions
from modelport.monitoring.report.build import Sources, Subject, build_report
from modelport.monitoring.report.history import alert_source
from modelport.monitoring.report.model import MonitoringReport
from modelport.registry.service import RegistryService


def version_report(
    registry: RegistryService,
    log_uri: str,
    ref: ModelRef,
    window: tuple[datetime, datetime],
    *,
    drift_options: Mapping[str, ColumnOptions],
    now: datetime,
) -> MonitoringReport:
    """The report of the version ``ref`` names over ``window`` (since, until): its
    prediction log rows at ``log_uri``, its reference statistics and registered
    metrics, and the alert history of its model in the registry's database."""
    version = registry.resolve(ref)
    subject = Subject(
        log_uri=log_uri,
        model=version.name,
        version=str(version.version),
        stats=registry.reference_stats(version)[0],
        registered_metrics=dict(version.metrics),
        drift_options=dict(drift_options),
    )
    sources = Sources.default(alerts=alert_source(registry.metadata, version.name))
    since, until = window
    return build_report(subject, since, until, sources=sources, now=now)


def report_summary(built: MonitoringReport) -> dict[str, Any]:
    """What the CLI says of a written report: the version, window, volume and drift."""
    drift = built.drift
    return {
        "model": built.model,
        "version": built.version,
        "since": built.window.since.isoformat(),
        "until": built.window.until.isoformat(),
        "predictions": built.serving.rows,
        "columns": len(drift.columns) if drift else None,
        "drifted_columns": drift.drifted_columns if drift else None,
        "dataset_drift": drift.dataset_drift if drift else None,
        "notes": list(built.notes),
    }
