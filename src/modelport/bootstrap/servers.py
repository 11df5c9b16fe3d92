"""The serving server's and the control plane's worker apps, with their keys, limits,
prediction log, drift sketches and alert engine wired from Settings."""

from __future__ import annotations

import logging
import threading
import weakref
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

from modelport.bootstrap.sources import followed_registry
from modelport.bootstrap.stores import build_alert_engine, build_registry, create_metadata_store
from modelport.config import Settings, prometheus_multiprocess_dir
from modelport.errors import InvalidArgumentError
from modelport.flavors.catalog import default_catalog
from modelport.package.signing import SigningPolicy
from modelport.registry.service import RegistryService
from modelport.serving.sources import ModelSource

if TYPE_CHECKING:
    from modelport.monitoring.drift_live import LiveDriftBook
    from modelport.monitoring.prediction_log import PredictionLogWriter
    from modelport.monitoring.prediction_log.spool import SpoolSink
    from modelport.rollout.controller import RolloutController
    from modelport.security.rate_limits import OnLimited, RateLimiter
    from modelport.security.server_auth import ServerAuth
    from modelport.server.http.app import MountedApp, ServerApp
    from modelport.server.http.endpoint import ServerContext
    from modelport.serving.deployed import ShadowSinkFactory
    from modelport.serving.drifting import DriftObserver
    from modelport.serving.metered import VersionRecorder
    from modelport.serving.served import ServedModel
    from modelport.serving.target import ArmLabel, InferenceTarget

logger = logging.getLogger("modelport.server")
# A loaded version's drift feed (None: none) and recorder, shared by its arms.
_Measured = tuple["DriftObserver | None", "VersionRecorder"]


def build_server_app(
    settings: Settings,
    sources: Sequence[ModelSource],
    *,
    worker_index: int,
    workers: int,
    on_ready: Callable[[], None],
    on_failed: Callable[[str], None],
) -> ServerApp:
    """One worker's ASGI application serving ``sources`` (called in the worker process)."""
    return _worker_app(
        settings,
        sources,
        worker_index=worker_index,
        workers=workers,
        on_ready=on_ready,
        on_failed=on_failed,
        shadow_role=False,
    )


def build_shadow_app(
    settings: Settings, sources: Sequence[ModelSource], **worker: Any
) -> ServerApp:
    """The app of a worker's shadow process (``modelport.server.process.shadow_worker``),
    called as ``build_server_app`` is: the worker's routes, log, metrics and drift, its
    shadow copies answered in its own event loop, and no HTTP-side upkeep (keys, limits,
    log maintenance, live gauges: the worker has them)."""
    return _worker_app(settings, sources, **worker, shadow_role=True)


def _worker_app(
    settings: Settings,
    sources: Sequence[ModelSource],
    *,
    worker_index: int,
    workers: int,
    on_ready: Callable[[], None],
    on_failed: Callable[[str], None],
    shadow_role: bool,
) -> ServerApp:
    from prometheus_client import CollectorRegistry

    from modelport.monitoring.drift_live import LiveDriftBook
    from modelport.monitoring.metrics import ServerMetrics
    from modelport.monitoring.prediction_log.maintenance import LogMaintenance
    from modelport.server.http.app import ServerApp
    from modelport.server.http.endpoint import ServerContext
    from modelport.server.http.errors import status_of
    from modelport.server.http.v2 import limits_for
    from modelport.serving.drifting import DriftingTarget
    from modelport.serving.load_metrics import MetricsLoadEvents
    from modelport.serving.loader import ModelLoader
    from modelport.serving.logged import LoggedTarget
    from modelport.serving.metered import BothRecorders, MeteredTarget
    from modelport.serving.runtime import ModelRuntime
    from modelport.serving.served import ServeOptions

    serve = settings.serve
    uses_registry = any(s.ref is not None or s.deployment is not None for s in sources)
    loader = ModelLoader(
        followed_registry(settings) if uses_registry else None,
        default_catalog(),
        accelerate=serve.accelerate,
        version_check=settings.version_check,
        signing=SigningPolicy.from_settings(settings.signing),
    )
    # The inference statistics of every worker meet in the metrics directory.
    metrics = ServerMetrics(CollectorRegistry(), stats_dir=prometheus_multiprocess_dir())
    monitor = settings.monitor
    drift = (
        LiveDriftBook(
            prometheus_multiprocess_dir(),
            window_s=monitor.drift_window_s,
            min_rows=monitor.drift_min_rows,
        )
        if monitor.live_drift
        else None
    )
    # A shadow process already runs at idle priority: its log needs no converter of its own.
    log = build_prediction_log(
        settings, on_drop=metrics.prediction_log_drop, spooled=not shadow_role
    )

    # One drift feed and version recorder per loaded version, however many arms (and
    # revisions of a deployment) it answers for. Neither refers to the version itself,
    # so a retired version's entry goes with it.
    measured: weakref.WeakKeyDictionary[ServedModel, _Measured] = weakref.WeakKeyDictionary()

    def wrap_arm(served: ServedModel, arm: ArmLabel | None) -> InferenceTarget:
        known = measured.get(served)
        if known is None:
            known = measured[served] = (
                _drift_observer(served, drift),
                metrics.version(served.name, served.version_label),
            )
        observe, recorder = known
        inner: InferenceTarget = served if observe is None else DriftingTarget(served, observe)
        if arm is not None:  # one layer times the request for the version and the arm
            recorder = BothRecorders(recorder, metrics.arm(arm.deployment, arm.arm))
        metered = MeteredTarget(inner, recorder, model=served.name, version=served.version)
        if log is None:
            return metered
        return LoggedTarget(
            metered,
            log,
            model=served.name,
            version=served.version_label,
            io=served.io,
            status_of=lambda exc: status_of(exc)[0],
            deployment=arm.deployment if arm is not None else None,
            arm=arm.arm if arm is not None else None,
        )

    def wrap(served: ServedModel) -> InferenceTarget:
        return wrap_arm(served, None)

    runtime = ModelRuntime(
        sources,
        loader,
        lambda name: ServeOptions(
            serve.batching_for(name), serve.allow_non_finite, serve.allows_signature_change(name)
        ),
        observer_for=lambda served: metrics.observer(
            served.name, served.version_label, served.runtime
        ),
        wrap=wrap,
        wrap_arm=wrap_arm,
        events=MetricsLoadEvents(metrics),
        poll_interval_s=serve.poll_interval_s,
        deployments=loader.find_deployment,
        on_shadow_drop=metrics.shadow_drop,
        shadow_sink=_shadow_sink(settings, sources, worker_index, workers, shadow_role),
    )
    from modelport.monitoring.alerts.history import AlertHistoryReader

    alerts = AlertHistoryReader(
        lambda: create_metadata_store(settings.resolved_database_url), settings.monitor.alerts
    )
    log_uri = settings.resolved_prediction_log_uri
    context = ServerContext(
        runtime,
        serve,
        metrics,
        limits_for(serve.max_elements),
        prometheus_multiprocess_dir(),
        prediction_log_uri=log_uri,
        drift=drift,
        prediction_log=log,
        # One worker per server keeps the log compact and within its retention.
        log_maintenance=(
            LogMaintenance(settings.prediction_log, log_uri)
            if log is not None and worker_index == 0 and not shadow_role
            else None
        ),
        alerts=alerts,
        # Following a control plane by its URL, the server has no database of its own:
        # its deployment routes answer 501 and changes go to the control plane.
        registry=(
            _BuiltOnce(lambda: build_registry(settings)) if settings.registry_url is None else None
        ),
    )
    if not shadow_role:
        _secure(context, settings)
        _limit(context, settings)
    live = settings.live_performance
    # One computation for all workers, over what the server logs.
    if live.enabled and log is not None and worker_index == 0 and not shadow_role:
        from modelport.monitoring.live_gauges import LiveGauges

        context.live_gauges = LiveGauges(
            log_uri,
            lambda: [
                (route.source.name, route.current.version_label)
                for route in runtime.routes()
                if route.current is not None
            ],
            metrics.live,
            interval_s=live.interval_s,
            windows=live.windows,
        )
    return ServerApp(context, workers=workers, on_ready=on_ready, on_failed=on_failed)


def _shadow_sink(
    settings: Settings,
    sources: Sequence[ModelSource],
    worker_index: int,
    workers: int,
    shadow_role: bool,
) -> ShadowSinkFactory:
    """Where a serving worker's deployments send their shadow copies: its shadow process
    (started with the first shadow arm), unless ``serve.shadow_process`` is off; in the
    shadow process itself, and in an app built outside a server's worker (no shared
    metrics directory for a second process to count in), its own event loop."""
    from modelport.serving.routing.shadow import ShadowQueue

    metrics_dir = prometheus_multiprocess_dir()
    if shadow_role or not settings.serve.shadow_process or metrics_dir is None:
        return ShadowQueue
    from modelport.server.process.shadow_link import ShadowLink, start_message

    link = ShadowLink(
        start_message(
            settings.model_dump(mode="json"),
            # Only the deployments: the shadow process has no use for the other routes.
            [source.to_dict() for source in sources if source.deployment is not None],
            worker_index,
            workers,
        ),
        metrics_dir=metrics_dir,
        stop_timeout_s=settings.serve.drain_timeout_s,
    )
    return link.sink


def build_control_app(
    settings: Settings,
    sources: Sequence[ModelSource],
    *,
    worker_index: int,
    workers: int,
    on_ready: Callable[[], None],
    on_failed: Callable[[str], None],
) -> ServerApp:
    """One worker of the control plane (``modelport ui``): the registry, deployment,
    monitoring and key routes and the dashboard over the database and stores of
    ``settings``, behind the same keys, limits, TLS and drain as ``serve``; no models."""
    from prometheus_client import CollectorRegistry

    from modelport.monitoring.alerts.history import AlertHistoryReader
    from modelport.monitoring.metrics import ServerMetrics
    from modelport.server.http.app import ServerApp
    from modelport.server.http.control import CONTROL_ROUTES, TITLE
    from modelport.server.http.endpoint import ServerContext
    from modelport.server.http.v2 import limits_for
    from modelport.serving.loader import ModelLoader
    from modelport.serving.runtime import ModelRuntime
    from modelport.serving.served import ServeOptions

    if sources:
        raise InvalidArgumentError("the control plane serves no models", field="model")
    serve = settings.serve
    metrics = ServerMetrics(CollectorRegistry(), stats_dir=prometheus_multiprocess_dir())
    # No models: the runtime is there for readiness and the drain the worker app runs.
    runtime = ModelRuntime(
        (),
        ModelLoader(
            None, default_catalog(), accelerate=False, version_check=settings.version_check
        ),
        lambda name: ServeOptions(serve.batching_for(name), serve.allow_non_finite),
        observer_for=lambda served: metrics.observer(
            served.name, served.version_label, served.runtime
        ),
    )
    history = AlertHistoryReader(
        lambda: create_metadata_store(settings.resolved_database_url), settings.monitor.alerts
    )
    registry = _BuiltOnce(lambda: build_registry(settings))
    context = ServerContext(
        runtime,
        serve,
        metrics,
        limits_for(serve.max_elements),
        prometheus_multiprocess_dir(),
        prediction_log_uri=settings.resolved_prediction_log_uri,
        alerts=history,
        alert_lists=history.readable,
        alert_rounds=_alert_rounds(settings, registry),
        registry=registry,
        rollouts=lambda registry, owner: _rollout_controller(settings, registry, owner),
    )
    _secure(context, settings, control_plane=True)
    _limit(context, settings)
    return ServerApp(
        context,
        workers=workers,
        on_ready=on_ready,
        on_failed=on_failed,
        route_table=CONTROL_ROUTES,
        title=TITLE,
        mounts=(_dashboard(context, settings),),
    )


def _rollout_controller(
    settings: Settings, registry: RegistryService, owner: str | None
) -> RolloutController:
    """The controller the CLI builds, for the control plane's rollout routes."""
    from modelport.rollout.factory import build_controller

    return build_controller(settings, registry, owner=owner)


def _alert_rounds(
    settings: Settings, registry: Callable[[], RegistryService]
) -> Callable[[str | None], list[dict[str, Any]]]:
    """The control plane's rounds of its own alert rules, the engine built on first use."""
    from modelport.monitoring.alerts.rounds import AlertRounds

    return AlertRounds(
        lambda: build_alert_engine(settings, registry()),
        configured=bool(settings.monitor.alerts),
        actor=settings.actor,
    )


def _dashboard(context: ServerContext, settings: Settings) -> MountedApp:
    """The dashboard at ``/ui``, pausing and resuming rollouts with the controller the
    CLI builds (its decisions announced to the same webhooks)."""
    from modelport.rollout.factory import build_controller
    from modelport.server.http.app import MountedApp
    from modelport.ui import HARDENING, build_dashboard

    dashboard = build_dashboard(
        context, controllers=lambda registry: build_controller(settings, registry)
    )
    return MountedApp("/ui", dashboard, HARDENING)


def _secure(context: ServerContext, settings: Settings, *, control_plane: bool = False) -> None:
    """The worker's API keys (read now, re-read in the background once serving)."""
    auth = build_server_auth(settings, control_plane=control_plane)
    if auth.warning is not None:
        logger.warning(auth.warning)
    context.keys, context.auth = auth.keys, auth.mode
    context.metrics_public = settings.security.metrics_public
    context.keys_refresh_s = settings.security.keys_refresh_s


def build_server_auth(settings: Settings, *, control_plane: bool = False) -> ServerAuth:
    """How a server checks API keys: against the metadata database, or, for a replica
    following a control plane by its URL, through that control plane (no database
    settings on the replica). Refuses, naming the fix, when no key can be checked."""
    if settings.registry_url is not None and not control_plane:
        from modelport.client import RegistryClient
        from modelport.remote.key_checks import remote_server_auth

        client = RegistryClient.from_settings(settings)
        return remote_server_auth(settings, client.verify_key, client.close)
    from modelport.security.server_auth import server_auth

    return server_auth(settings, lambda: create_metadata_store(settings.resolved_database_url))


def build_admission(
    settings: Settings, *, keys: bool, on_limited: OnLimited | None = None
) -> RateLimiter | None:
    """The server's rate limits and quotas (``[security.rate_limits]``), counted in Redis
    when ``rate_limit_url`` is set, else in this process; None when no limit can apply
    (none configured and no keys, which may carry their own)."""
    from modelport.security.buckets import LimitStore, LocalLimitStore
    from modelport.security.rate_limits import RateLimiter

    limits = settings.security.rate_limits
    if not limits.enabled and not keys:
        return None
    store: LimitStore = LocalLimitStore()
    if settings.rate_limit_url is not None:
        from modelport.security.redis_limits import RedisLimitStore

        store = RedisLimitStore(settings.rate_limit_url, limits)
    return RateLimiter(limits, store, on_limited=on_limited)


def _limit(context: ServerContext, settings: Settings) -> None:
    """The worker's rate limits and quotas (after ``_secure``: keys may carry limits)."""
    from modelport.monitoring.metrics import UNKNOWN_MODEL

    metrics, runtime = context.metrics, context.runtime

    def count(limit: str, model: str | None) -> None:
        # Only served names become labels: arbitrary names in URLs must not make series.
        label = "" if model is None else model if runtime.serves(model) else UNKNOWN_MODEL
        metrics.rate_limit(limit, label)

    context.admission = build_admission(settings, keys=context.keys is not None, on_limited=count)


class _BuiltOnce:
    """``build``'s registry, made at the first call (from any thread) and kept; ``close``
    (at the worker's shutdown) closes it if it was made, delivering its queued events."""

    def __init__(self, build: Callable[[], RegistryService]) -> None:
        self._build = build
        self._lock = threading.Lock()
        self._built: RegistryService | None = None

    def __call__(self) -> RegistryService:
        with self._lock:
            if self._built is None:
                self._built = self._build()
            return self._built

    def close(self) -> None:
        with self._lock:
            built, self._built = self._built, None
        if built is not None:
            built.close()


def _drift_observer(served: ServedModel, book: LiveDriftBook | None) -> DriftObserver | None:
    """What feeds the served version's live drift sketches (None: it has no statistics,
    or live drift is off)."""
    from modelport.serving.drifting import extractor

    if book is None or served.reference_stats is None:
        return None
    io = served.io
    feed = book.feed(
        served.name,
        served.version_label,
        served.reference_stats,
        lambda names: extractor(io, names),
    )
    return feed.observe


def build_prediction_log(
    settings: Settings,
    *,
    on_drop: Callable[[int, str], None] | None = None,
    spooled: bool = False,
) -> PredictionLogWriter | SpoolSink | None:
    """This worker's prediction log, or None when ``[prediction_log] enabled`` is off:
    ``spooled`` (a serving worker, unless ``spool`` is off), a spool and its converter
    process; otherwise a writer thread in this process."""
    log = settings.prediction_log
    if not log.enabled:
        return None
    if spooled and log.spool:
        from modelport.monitoring.prediction_log.spool import SpoolSink

        return SpoolSink(
            settings.resolved_prediction_spool_dir,
            settings.resolved_prediction_log_uri,
            flush_interval_s=log.flush_interval_s,
            sample_rate=log.sample_rate,
            columns=log.columns,
            max_bytes=int(log.spool_max_mb * (1 << 20)),
            busy_limit=log.spool_busy_limit,
            max_lag_s=log.spool_max_lag_s,
            on_drop=on_drop,
        )
    from modelport.monitoring.prediction_log import PredictionLogWriter

    return PredictionLogWriter.from_settings(
        log, settings.resolved_prediction_log_uri, on_drop=on_drop
    )


def preload_server_app() -> None:
    """Import what ``build_server_app`` needs (a new worker calls this while it waits for
    its start message: imports are most of a cold start)."""
    import modelport.server.http.app  # noqa: F401
