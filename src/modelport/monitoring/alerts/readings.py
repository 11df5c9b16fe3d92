"""The value of a rule's signal over its window: one function per signal.

``SignalReader.functions`` maps each signal name to a function of a ``SignalRequest``;
tests and other evaluators can swap one. Log signals come from ``monitoring.signals``,
drift from ``monitoring.drift_window.drift_over_log`` against the version's reference
statistics, live metrics and label coverage from
``monitoring.performance.live_performance``, drops from the servers' ``/metrics``. The
drift and performance libraries are imported when first used: an evaluator of log
rules only never loads them.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any

from modelport.config import LIVE_METRICS, AlertRule
from modelport.domain.refs import ModelRef, parse_ref_or_name
from modelport.errors import MissingStatisticsError, UnsupportedOperationError
from modelport.monitoring.alerts.scrape import DropCounter
from modelport.monitoring.signals import ServingSignals, serving_signals
from modelport.outgoing import DEFAULT_POLICY, OutgoingPolicy

if TYPE_CHECKING:
    from modelport.registry.service import RegistryService


@dataclass(frozen=True)
class Reading:
    """A signal's value (None: nothing to judge) and how many rows stand behind it."""

    value: float | None
    samples: int
    details: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class SignalRequest:
    """What one evaluation of one rule asks for.

    ``version`` filters the log (None: every version of the model); ``stats_version``
    is the version whose reference statistics drift is measured against.
    """

    rule_name: str
    rule: AlertRule
    model: str
    version: str | None
    stats_version: int | None
    since: datetime
    until: datetime


SignalFunction = Callable[[SignalRequest], Reading]


class SignalReader:
    """Reads every signal for the rules of one evaluator."""

    def __init__(
        self,
        log_uri: str,
        *,
        registry: RegistryService | None = None,
        metrics_urls: Sequence[str] = (),
        policy: OutgoingPolicy = DEFAULT_POLICY,
    ) -> None:
        self.log_uri = log_uri
        self.registry = registry
        self._drops = DropCounter(metrics_urls, policy)
        self._serving_cache: dict[tuple[str, str | None, datetime, datetime], ServingSignals] = {}
        self.functions: dict[str, SignalFunction] = {
            "volume": self._serving,
            "error_rate": self._serving,
            "p50_latency": self._serving,
            "p99_latency": self._serving,
            "dataset_drift_share": self._drift,
            "feature_drift": self._drift,
            "label_coverage": self._performance,
            "prediction_log_drops": self._dropped,
            **dict.fromkeys(LIVE_METRICS, self._performance),
        }

    def request(
        self, rule_name: str, rule: AlertRule, *, since: datetime, until: datetime
    ) -> SignalRequest:
        """The request for ``rule`` over ``[since, until)``, its model reference resolved now."""
        ref = parse_ref_or_name(rule.model)
        version, stats_version = self._resolve(ref)
        return SignalRequest(rule_name, rule, ref.name, version, stats_version, since, until)

    def read(self, request: SignalRequest) -> Reading:
        """The rule's signal for ``request``."""
        return self.functions[request.rule.signal](request)

    def _resolve(self, ref: ModelRef) -> tuple[str | None, int | None]:
        if ref.version is not None:
            return str(ref.version), ref.version
        if ref.alias is None:
            # A bare name watches every version's rows; drift picks the latest version's
            # statistics when it needs them, so log signals need no registry.
            return None, None
        if self.registry is None:
            raise UnsupportedOperationError(
                f"alias {ref.alias!r} of model {ref.name!r} needs the registry to resolve",
                model=ref.name,
            )
        number = self.registry.version_number(ref)
        return str(number), number

    def _serving(self, request: SignalRequest) -> Reading:
        # Rules of one round share their end time: those on the same model and window
        # share one read of the log.
        key = (request.model, request.version, request.since, request.until)
        if not self._serving_cache or next(iter(self._serving_cache))[3] != request.until:
            self._serving_cache.clear()
        signals = self._serving_cache.get(key)
        if signals is None:
            signals = serving_signals(
                self.log_uri,
                request.model,
                version=request.version,
                since=request.since,
                until=request.until,
            )
            self._serving_cache[key] = signals
        signal = request.rule.signal
        values: dict[str, tuple[float | None, int]] = {
            "volume": (float(signals.rows), signals.rows),
            "error_rate": (signals.error_rate, signals.requests),
            "p50_latency": (signals.p50_latency_s, signals.requests),
            "p99_latency": (signals.p99_latency_s, signals.requests),
        }
        value, samples = values[signal]
        return Reading(value, samples, signals.to_dict())

    def _drift(self, request: SignalRequest) -> Reading:
        from modelport.monitoring.drift_window import drift_over_log  # scipy: when first used

        stats = self._reference_stats(request)
        window = drift_over_log(
            self.log_uri,
            request.model,
            stats,
            version=request.version,
            since=request.since,
            until=request.until,
        )
        report = window.report
        if request.rule.signal == "dataset_drift_share":
            return Reading(float(report.share_drifted), int(window.rows), _drift_details(report))
        column = next((c for c in report.columns if c.column == request.rule.feature), None)
        if column is None:
            raise MissingStatisticsError(
                f"feature {request.rule.feature!r} has no drift result for model "
                f"{request.model!r}: it is not an input of the reference statistics",
                model=request.model,
                field="feature",
            )
        details = {"feature": column.column, "score": column.score, "drifted": column.drifted}
        return Reading(float(column.score), int(window.rows), details)

    def _reference_stats(self, request: SignalRequest) -> Mapping[str, Any] | None:
        if self.registry is None:
            raise MissingStatisticsError(
                f"drift of model {request.model!r} needs a registered version's reference "
                "statistics, and this evaluator has no registry",
                model=request.model,
            )
        number = request.stats_version or self.registry.version_number(ModelRef(request.model))
        # Recomputed statistics (modelport version stats) win over the package's own;
        # None makes drift_over_log say clearly that they are missing.
        stats, _ = self.registry.reference_stats(ModelRef(request.model, version=number))
        return stats

    def _performance(self, request: SignalRequest) -> Reading:
        from modelport.monitoring.performance import live_performance  # when first used

        report = live_performance(
            self.log_uri,
            request.model,
            version=request.version,
            since=request.since,
            until=request.until,
        )
        details = {"predictions": report.predictions, "labeled": report.labeled}
        if request.rule.signal == "label_coverage":
            return Reading(float(report.coverage), int(report.predictions), details)
        value = report.metrics.get(request.rule.signal)
        return Reading(float(value) if value is not None else None, int(report.labeled), details)

    def _dropped(self, request: SignalRequest) -> Reading:
        increase, scrapes = self._drops.increase(
            request.rule_name, request.model, since=request.since, until=request.until
        )
        return Reading(increase, scrapes, {"urls": list(self._drops.urls)})


def _drift_details(report: Any) -> dict[str, Any]:
    drifted = [c.column for c in report.columns if c.drifted]
    return {"columns": len(report.columns), "drifted": drifted}
