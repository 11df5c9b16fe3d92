"""Reporting the runtime's model loads and swaps as metrics and log lines."""

from __future__ import annotations

from modelport.monitoring.metrics import ServerMetrics
from modelport.serving.runtime import LoadEvents
from modelport.serving.served import ServedModel
from modelport.serving.sources import ModelSource


class MetricsLoadEvents(LoadEvents):
    """Counts loads and swaps, and keeps ``modelport_model_ready`` current."""

    def __init__(self, metrics: ServerMetrics) -> None:
        self._metrics = metrics

    def loaded(self, served: ServedModel, kind: str) -> None:
        self._metrics.model_loads.labels(served.name, kind, "ok").inc()
        self._ready(served).set(1)

    def failed(self, source: ModelSource, kind: str, version: int | None, reason: str) -> None:
        self._metrics.model_loads.labels(source.name, kind, "failed").inc()

    def retired(self, served: ServedModel) -> None:
        self._ready(served).set(0)

    def _ready(self, served: ServedModel):  # type: ignore[no-untyped-def]
        return self._metrics.model_ready.labels(served.name, served.version_label, served.runtime)
