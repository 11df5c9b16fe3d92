"""Reporting the runtime's model loads, swaps and what each route follows as metrics."""

from __future__ import annotations

from typing import Any

from modelport.monitoring.metrics import ServerMetrics
from modelport.serving.load_events import LoadEvents
from modelport.serving.route import Lag, Route
from modelport.serving.served import ServedModel
from modelport.serving.sources import ModelSource


class MetricsLoadEvents(LoadEvents):
    """Counts loads and swaps, and keeps ``modelport_model_ready``, the wanted version,
    staleness and the registry's reachability current."""

    def __init__(self, metrics: ServerMetrics) -> None:
        self._metrics = metrics

    def loaded(self, served: ServedModel, kind: str) -> None:
        self._metrics.model_loads.labels(served.name, kind, "ok").inc()
        self._ready(served).set(1)

    def failed(self, source: ModelSource, kind: str, version: int | None, reason: str) -> None:
        self._metrics.model_loads.labels(source.name, kind, "failed").inc()

    def refused(self, source: ModelSource, version: int | None, reason: str) -> None:
        self._metrics.model_loads.labels(source.name, "swap", "refused").inc()

    def retired(self, served: ServedModel) -> None:
        self._ready(served).set(0)

    def followed(self, route: Route) -> None:
        name = route.source.name
        if route.wanted_version is not None:
            self._metrics.wanted_version.labels(name).set(route.wanted_version)
        lagging = route.stale.reason if route.stale is not None else None
        for reason in Lag:
            self._metrics.stale.labels(name, reason.value).set(1 if reason is lagging else 0)

    def registry(self, reachable: bool) -> None:
        self._metrics.registry_reachable.set(1 if reachable else 0)

    def _ready(self, served: ServedModel) -> Any:
        return self._metrics.model_ready.labels(served.name, served.version_label, served.runtime)
