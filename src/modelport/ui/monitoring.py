"""What the Monitoring page shows for one model version (called in a thread).

The same report ``modelport monitor report`` writes (``monitoring.report``): drift per
feature (method, score, threshold) with reference against current histograms, volume,
latency and errors over time, the live metric and label coverage over time, the live
metrics beside the registered ones, and the alert transitions; plus each alert rule's
current state from the alert history the API serves (``/api/monitoring/{model}/alerts``).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from modelport.domain.entities import ModelVersion
from modelport.errors import InvalidArgumentError, ModelportError
from modelport.monitoring.report.model import MonitoringReport
from modelport.registry.service import RegistryService

WINDOWS = ("1h", "24h", "7d", "30d")
AlertReader = Callable[[str, int], dict[str, Any]]


@dataclass(frozen=True)
class MonitoringView:
    """The page: the version shown, the report, its charts and the alert rules."""

    version: ModelVersion
    versions: list[int]
    since: str
    report: MonitoringReport | None
    charts: dict[str, Any]
    alerts: dict[str, Any] | None
    notes: list[str]


def monitored_version(registry: RegistryService, name: str, number: int | None) -> ModelVersion:
    """The version to show: ``number``, else the one in production, else the newest."""
    if number is not None:
        return registry.get_version(name, number)
    model = registry.get_model(name)
    if "production" in model.aliases:
        return registry.get_version(name, model.aliases["production"])
    return registry.resolve(f"{name}/latest")


def monitoring_view(
    registry: RegistryService,
    log_uri: str | None,
    alerts: AlertReader | None,
    name: str,
    *,
    number: int | None,
    since: str,
) -> MonitoringView:
    """The Monitoring page of model ``name`` over the last ``since``."""
    if since not in WINDOWS:
        raise InvalidArgumentError(f"window {since!r} is not one of {', '.join(WINDOWS)}")
    version = monitored_version(registry, name, number)
    versions = [v.version for v in registry.list_versions(name)]
    notes: list[str] = []
    report: MonitoringReport | None = None
    charts: dict[str, Any] = {}
    if log_uri is None:
        notes.append("This control plane has no prediction log to read.")
    else:
        report, charts = _report(registry, log_uri, version, since, notes)
    history = alerts(name, 50) if alerts is not None else None
    return MonitoringView(version, versions, since, report, charts, history, notes)


def _report(
    registry: RegistryService, log_uri: str, version: ModelVersion, since: str, notes: list[str]
) -> tuple[MonitoringReport | None, dict[str, Any]]:
    from modelport.monitoring.report import Sources, Subject, build_report
    from modelport.monitoring.report.history import alert_source
    from modelport.monitoring.report.render import report_charts
    from modelport.monitoring.windows import parse_since

    try:
        stats = registry.reference_stats(version)[0]
    except ModelportError as exc:  # the report says there is no drift, and why
        notes.append(f"No reference statistics: {exc.message}")
        stats = None
    subject = Subject(
        log_uri=log_uri,
        model=version.name,
        version=str(version.version),
        stats=stats,
        registered_metrics=dict(version.metrics),
    )
    now = datetime.now(UTC)
    sources = Sources.default(alerts=alert_source(registry.metadata, version.name))
    report = build_report(subject, parse_since(since, now), now, sources=sources, now=now)
    return report, report_charts(report)
