"""Prometheus metrics of the server, on a registry the caller provides.

Names start with ``modelport_``, carry their unit (``_seconds``, ``_total``) and are
labelled by model, version, protocol and status code. A request for a model that
is not served is counted under ``model="_unknown"`` so that arbitrary names in URLs
cannot create new series.

With several worker processes the values live in prometheus_client's multiprocess
files and ``/metrics`` reports their sum (``render`` with ``multiprocess_dir``). What
the request path records goes through ``buffer`` (``monitoring.buffer``): call
``flush`` every second or so, and before rendering. The same measurements feed the
per-version inference statistics (``monitoring.inference_stats``), which ``flush`` writes
to ``stats_dir`` for the other workers to read.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

from modelport.monitoring.buffer import BufferedCounter, MetricBuffer
from modelport.monitoring.inference_stats import StatsBook
from modelport.monitoring.live_gauges import LiveMetricsCollector, LiveMetricsStore

UNKNOWN_MODEL = "_unknown"
_LATENCY_BUCKETS = (
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0,
)  # fmt: skip
_BATCH_BUCKETS = (1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024, 4096)


class ServerMetrics:
    """Every metric the server exports."""

    def __init__(self, registry: CollectorRegistry, *, stats_dir: str | None = None) -> None:
        self.registry = registry
        self.buffer = MetricBuffer()
        self.stats = StatsBook(stats_dir)
        # Live performance gauges: computed by one worker, read from stats_dir at scrape
        # (render adds the collector there); in one process, straight from memory.
        self.live = LiveMetricsStore(stats_dir)
        self.live_collector = LiveMetricsCollector(self.live)
        if stats_dir is None:
            registry.register(self.live_collector)
        model = ("model",)
        self.requests = Counter(
            "modelport_requests_total",
            "Inference requests by model, version, protocol and HTTP status.",
            ("model", "version", "protocol", "code"),
            registry=registry,
        )
        self.request_seconds = Histogram(
            "modelport_request_duration_seconds",
            "Time from request received to response ready.",
            ("model", "protocol"),
            buckets=_LATENCY_BUCKETS,
            registry=registry,
        )
        self.queue_seconds = Histogram(
            "modelport_queue_duration_seconds",
            "Time a request waited for its batch.",
            model,
            buckets=_LATENCY_BUCKETS,
            registry=registry,
        )
        self.predict_seconds = Histogram(
            "modelport_predict_duration_seconds",
            "Time of one model call over a batch.",
            ("model", "runtime"),
            buckets=_LATENCY_BUCKETS,
            registry=registry,
        )
        self.batch_size = Histogram(
            "modelport_batch_size",
            "Rows per model call.",
            model,
            buckets=_BATCH_BUCKETS,
            registry=registry,
        )
        self.predictions = Counter(
            "modelport_predictions_total",
            "Rows predicted.",
            ("model", "version"),
            registry=registry,
        )
        self.inference_seconds = Histogram(
            "modelport_inference_duration_seconds",
            "Time a model version took to answer a request: binding, queue and model call.",
            ("model", "version"),
            buckets=_LATENCY_BUCKETS,
            registry=registry,
        )
        self.rejected = Counter(
            "modelport_rejected_requests_total",
            "Requests refused before the model ran: overloaded (queue full) or deadline.",
            ("model", "reason"),
            registry=registry,
        )
        self.in_flight = Gauge(
            "modelport_in_flight_requests",
            "Inference requests being handled (all models).",
            registry=registry,
            multiprocess_mode="livesum",
        )
        self.in_flight_level = self.buffer.gauge(self.in_flight)
        self.queued = Gauge(
            "modelport_queued_requests",
            "Requests waiting for a batch.",
            model,
            registry=registry,
            multiprocess_mode="livesum",
        )
        self.model_ready = Gauge(
            "modelport_model_ready",
            "1 for each model version ready to serve, by runtime (onnxruntime, sklearn, ...).",
            ("model", "version", "runtime"),
            registry=registry,
            multiprocess_mode="livemax",
        )
        self.model_loads = Counter(
            "modelport_model_loads_total",
            "Model loads by kind (start, swap) and result (ok, failed, refused: the new "
            "version would break current clients).",
            ("model", "kind", "result"),
            registry=registry,
        )
        self.wanted_version = Gauge(
            "modelport_model_wanted_version",
            "The version the served reference (alias, stage, latest or pin) points at, as "
            "last checked; compare with the version label of modelport_model_ready.",
            model,
            registry=registry,
            multiprocess_mode="livemax",
        )
        self.stale = Gauge(
            "modelport_model_stale",
            "1 while a model serves another version than its reference's, by reason: "
            "swap_refused, load_failed, registry_unreachable, reference_missing.",
            ("model", "reason"),
            registry=registry,
            multiprocess_mode="livemax",
        )
        self.registry_reachable = Gauge(
            "modelport_registry_reachable",
            "1 when the last check of the served aliases reached the registry, 0 when not "
            "(the served versions keep serving either way).",
            registry=registry,
            multiprocess_mode="livemin",
        )

        self.prediction_log_dropped = Counter(
            "modelport_prediction_log_dropped",
            "Prediction log rows dropped: the queue was full, or a write failed.",
            model,
            registry=registry,
        )
        self.prediction_log_queue_rows = Gauge(
            "modelport_prediction_log_queue_rows",
            "Prediction log rows waiting to be written.",
            registry=registry,
            multiprocess_mode="livesum",
        )
        # Deployments: what each arm answered, and the shadow copies dropped.
        self._arms: dict[tuple[str, str], ArmMetrics] = {}
        arm = ("deployment", "arm")
        self.arm_requests = Counter(
            "modelport_arm_requests_total",
            "Requests an arm of a deployment answered (outcome ok) or failed (error).",
            (*arm, "outcome"),
            registry=registry,
        )
        self.arm_seconds = Histogram(
            "modelport_arm_request_duration_seconds",
            "Time an arm of a deployment took to answer: binding, queue and model call.",
            arm,
            buckets=_LATENCY_BUCKETS,
            registry=registry,
        )
        self.shadow_dropped = Counter(
            "modelport_shadow_dropped",
            "Request copies dropped before reaching a shadow arm: its queue was full.",
            arm,
            registry=registry,
        )

        # Requests refused by a rate limit or quota (429): by limit and model, never by
        # key (a series per key would grow with the keys; the 429 names it to its caller).
        self.rate_limited = Counter(
            "modelport_rate_limited_total",
            "Requests refused by a rate limit or quota (429), by limit (key, model, quota) "
            "and the model they named ('' for none).",
            ("limit", "model"),
            registry=registry,
        )
        self._rate_limited: dict[tuple[str, str], BufferedCounter] = {}
        self._shadow_dropped: dict[tuple[str, str], BufferedCounter] = {}

    def rate_limit(self, limit: str, model: str) -> None:
        """Count one request refused by ``limit`` (``key``, ``model``, ``quota``)."""
        counter = self._rate_limited.get((limit, model))
        if counter is None:
            child = self.rate_limited.labels(limit, model)
            counter = self._rate_limited[(limit, model)] = self.buffer.counter(child)
        counter.inc()

    def shadow_drop(self, deployment: str, arm: str) -> None:
        """Count one request copy dropped on its way to a shadow arm (buffered: a shadow
        that cannot keep up drops on the request path, request after request)."""
        counter = self._shadow_dropped.get((deployment, arm))
        if counter is None:
            child = self.shadow_dropped.labels(deployment, arm)
            counter = self._shadow_dropped[(deployment, arm)] = self.buffer.counter(child)
        counter.inc()

    def arm(self, deployment: str, arm: str) -> ArmMetrics:
        """The recorder of one deployment arm's answers (one per arm: every revision of
        the deployment records into the same series)."""
        recorder = self._arms.get((deployment, arm))
        if recorder is None:
            recorder = self._arms[(deployment, arm)] = ArmMetrics(self, deployment, arm)
        return recorder

    def prediction_log_drop(self, rows: int, model: str) -> None:
        """Count ``rows`` rows of ``model`` the prediction log dropped (any thread)."""
        self.prediction_log_dropped.labels(model).inc(rows)

    def flush(self) -> None:
        """Write what the request path recorded since the last flush."""
        self.buffer.flush()
        self.stats.flush()

    def observer(self, model: str, version: str, runtime: str) -> BatchMetrics:
        """The batch observer of one served model version."""
        return BatchMetrics(self, model, version, runtime)

    def version(self, model: str, version: str) -> VersionMetrics:
        """The recorder of one served model version's answers."""
        return VersionMetrics(self, model, version)


class VersionMetrics:
    """What one model version answered: rows predicted and time per request."""

    def __init__(self, metrics: ServerMetrics, model: str, version: str) -> None:
        # Children with labels bound once: the hot path does no label look-ups.
        buffer = metrics.buffer
        self._rows = buffer.counter(metrics.predictions.labels(model, version))
        self._seconds = buffer.histogram(metrics.inference_seconds.labels(model, version))
        self._stats = metrics.stats.version(model, version)

    def answered(self, rows: int, seconds: float) -> None:
        """A request of ``rows`` rows was answered in ``seconds``."""
        self._rows.inc(rows)
        self._seconds.observe(seconds)
        self._stats.answered(rows, seconds)

    def failed(self, seconds: float) -> None:
        """A request that reached this version failed after ``seconds``."""
        self._stats.failed(seconds)


class ArmMetrics:
    """What one arm of a deployment answered: requests by outcome, time per request."""

    def __init__(self, metrics: ServerMetrics, deployment: str, arm: str) -> None:
        buffer = metrics.buffer
        self._ok = buffer.counter(metrics.arm_requests.labels(deployment, arm, "ok"))
        self._error = buffer.counter(metrics.arm_requests.labels(deployment, arm, "error"))
        self._seconds = buffer.histogram(metrics.arm_seconds.labels(deployment, arm))

    def answered(self, rows: int, seconds: float) -> None:
        """The arm answered a request in ``seconds``."""
        self._ok.inc()
        self._seconds.observe(seconds)

    def failed(self, seconds: float) -> None:
        """A request the arm got failed after ``seconds``."""
        self._error.inc()
        self._seconds.observe(seconds)


@dataclass
class BatchMetrics:
    """A Batcher's observer: queue depth, batch sizes, wait and model-call times."""

    metrics: ServerMetrics
    model: str
    version: str
    runtime: str

    def __post_init__(self) -> None:
        # Children with labels bound once: the hot path does no label look-ups.
        buffer = self.metrics.buffer
        self._stats = self.metrics.stats.version(self.model, self.version)
        self._queued = buffer.gauge(self.metrics.queued.labels(self.model))
        self._waited = buffer.histogram(self.metrics.queue_seconds.labels(self.model))
        self._batch = buffer.histogram(self.metrics.batch_size.labels(self.model))
        self._predict = buffer.histogram(
            self.metrics.predict_seconds.labels(self.model, self.runtime)
        )

    def queue_depth(self, depth: int) -> None:
        self._queued.set(depth)

    def batch_done(self, rows: int, requests: int, seconds: float) -> None:
        self._batch.observe(rows)
        self._predict.observe(seconds)
        self._stats.executed(rows, requests, seconds)

    def waited(self, seconds: float) -> None:
        self._waited.observe(seconds)
        self._stats.waited(seconds)

    def rejected(self, reason: str) -> None:
        self.metrics.rejected.labels(self.model, reason).inc()


def render(
    registry: CollectorRegistry,
    multiprocess_dir: str | None,
    accept: str | None,
    collectors: Iterable[Any] = (),
) -> tuple[bytes, str]:
    """The exposition for a scrape: body and content type (OpenMetrics when asked for).
    ``collectors`` add metrics computed at scrape time (the live drift and live
    performance gauges)."""
    from prometheus_client import exposition

    source: Any = registry
    extra = list(collectors)
    if multiprocess_dir is not None:
        from prometheus_client import multiprocess

        source = CollectorRegistry()
        collect: Any = multiprocess.MultiProcessCollector  # untyped in prometheus_client
        collect(source, path=multiprocess_dir)
    elif extra:
        source = CollectorRegistry()
        source.register(_Forward(registry))
    for collector in extra:
        source.register(collector)
    encoder, content_type = exposition.choose_encoder(accept or "")
    return encoder(source), content_type


class _Forward:
    """A registry's metrics, as one collector of another registry."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self._registry = registry

    def collect(self) -> Iterable[Any]:
        return self._registry.collect()
