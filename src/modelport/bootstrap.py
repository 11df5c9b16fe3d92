"""The composition root: builds stores and the registry from Settings.

This is the only module that chooses concrete back ends (SQL, fsspec, memory).
"""

from __future__ import annotations

import logging
import threading
import weakref
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from modelport.artifacts.local import LocalArtifactStore
from modelport.artifacts.memory import MemoryArtifactStore
from modelport.artifacts.store import ArtifactStore
from modelport.config import Settings, prometheus_multiprocess_dir
from modelport.errors import InvalidArgumentError, MissingDependencyError
from modelport.flavors.catalog import default_catalog
from modelport.metadata.memory import MemoryMetadataStore
from modelport.metadata.store import MetadataStore
from modelport.package.signing import SigningPolicy
from modelport.registry.service import RegistryService
from modelport.serving.sources import ModelSource

if TYPE_CHECKING:
    from modelport.batch.job import BatchJob, BatchSummary
    from modelport.batch.source import PackageSource
    from modelport.domain.refs import ModelRef
    from modelport.monitoring.alerts.engine import AlertEngine
    from modelport.monitoring.drift_live import LiveDriftBook
    from modelport.monitoring.prediction_log import PredictionLogWriter
    from modelport.rollout.controller import RolloutController
    from modelport.security.rate_limits import OnLimited, RateLimiter
    from modelport.security.server_auth import ServerAuth
    from modelport.server.http.app import MountedApp, ServerApp
    from modelport.server.http.endpoint import ServerContext
    from modelport.serving.loader import FollowedRegistry
    from modelport.serving.served import ServedModel
    from modelport.serving.target import ArmLabel, InferenceTarget
    from modelport.webhooks.dispatcher import WebhookDispatcher

logger = logging.getLogger("modelport.server")
MEMORY_URI = "memory://"
_FSSPEC_EXTRAS = {"s3": ("s3fs", "s3"), "s3a": ("s3fs", "s3")}


def create_metadata_store(url: str) -> MetadataStore:
    """A metadata store for ``url``: ``memory://``, ``sqlite:///...`` or ``postgresql+psycopg://...``.

    SQL stores check the schema on start: a new, empty database is initialized, an
    out-of-date one is refused with the command that fixes it.
    """
    if url == MEMORY_URI:
        return MemoryMetadataStore()
    from modelport.metadata.sql.store import SqlMetadataStore

    return SqlMetadataStore(url)


def create_artifact_store(uri: str, cache_dir: Path) -> ArtifactStore:
    """An artifact store for ``uri``: a path or ``file://`` URI, ``memory://``, or any
    fsspec URI such as ``s3://bucket/prefix`` (downloads are cached in ``cache_dir``)."""
    if uri == MEMORY_URI:
        return MemoryArtifactStore()
    scheme = urlsplit(uri).scheme
    if scheme == "":
        return LocalArtifactStore(Path(uri))
    if scheme == "file":
        return LocalArtifactStore(Path(urlsplit(uri).path))
    from modelport.artifacts.remote import FsspecArtifactStore

    try:
        return FsspecArtifactStore(uri, cache_dir)
    except ImportError as exc:
        package, extra = _FSSPEC_EXTRAS.get(scheme, (exc.name or scheme, "all"))
        raise MissingDependencyError(
            f"artifacts at {scheme}:// need {package}; install it with: "
            f"pip install 'modelport[{extra}]'",
            package=package,
            extra=extra,
        ) from None


def build_registry(settings: Settings) -> RegistryService:
    """The registry configured by ``settings``, with the promotion gates of ``[gates]``."""
    from modelport.rollout.gates_default import build_gates

    metadata = create_metadata_store(settings.resolved_database_url)
    try:
        artifacts = create_artifact_store(settings.resolved_artifacts_uri, settings.cache_dir)
    except BaseException:
        metadata.close()
        raise
    registry = RegistryService(
        metadata,
        artifacts,
        default_catalog(),
        actor=settings.actor,
        version_check=settings.version_check,
        on_event=build_webhooks(settings),
    )
    # The gates load versions through the registry they guard.
    registry.gates = build_gates(settings, registry)
    registry.signing = SigningPolicy.from_settings(settings.signing)
    return registry


def build_webhooks(settings: Settings) -> WebhookDispatcher | None:
    """The dispatcher posting registry events to ``[webhooks.NAME]``, or None without any
    (the registry's ``close`` delivers what it still has queued)."""
    if not settings.webhooks:
        return None
    from modelport.webhooks.dispatcher import WebhookDispatcher

    return WebhookDispatcher(settings.webhooks, policy=settings.outgoing.policy())


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
    from prometheus_client import CollectorRegistry

    from modelport.monitoring.drift_live import LiveDriftBook
    from modelport.monitoring.metrics import ServerMetrics
    from modelport.monitoring.prediction_log.maintenance import LogMaintenance
    from modelport.server.http.app import ServerApp
    from modelport.server.http.endpoint import ServerContext
    from modelport.server.http.errors import status_of
    from modelport.server.http.v2 import limits_for
    from modelport.serving.load_metrics import MetricsLoadEvents
    from modelport.serving.loader import ModelLoader
    from modelport.serving.logged import LoggedTarget
    from modelport.serving.metered import MeteredTarget
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
    log = build_prediction_log(settings, on_drop=metrics.prediction_log_drop)

    # One drift feed and version recorder per loaded version, however many arms (and
    # revisions of a deployment) it answers for.
    measured: weakref.WeakKeyDictionary[ServedModel, InferenceTarget] = weakref.WeakKeyDictionary()

    def wrap_arm(served: ServedModel, arm: ArmLabel | None) -> InferenceTarget:
        metered = measured.get(served)
        if metered is None:
            metered = measured[served] = MeteredTarget(
                _drifting(served, drift),
                metrics.version(served.name, served.version_label),
                model=served.name,
                version=served.version,
            )
        if arm is not None:
            recorder = metrics.arm(arm.deployment, arm.arm)
            metered = MeteredTarget(metered, recorder, model=served.name, version=served.version)
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
            if log is not None and worker_index == 0
            else None
        ),
        alerts=alerts,
        # Following a control plane by its URL, the server has no database of its own:
        # its deployment routes answer 501 and changes go to the control plane.
        registry=(
            _BuiltOnce(lambda: build_registry(settings)) if settings.registry_url is None else None
        ),
    )
    _secure(context, settings)
    _limit(context, settings)
    live = settings.live_performance
    # One computation for all workers, over what the server logs.
    if live.enabled and log is not None and worker_index == 0:
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


def _drifting(served: ServedModel, book: LiveDriftBook | None) -> InferenceTarget:
    """The served version, feeding the live drift sketches when it has statistics."""
    from modelport.serving.drifting import DriftingTarget, extractor

    if book is None or served.reference_stats is None:
        return served
    io = served.io
    feed = book.feed(
        served.name,
        served.version_label,
        served.reference_stats,
        lambda names: extractor(io, names),
    )
    return DriftingTarget(served, feed.observe)


def build_prediction_log(
    settings: Settings, *, on_drop: Callable[[int, str], None] | None = None
) -> PredictionLogWriter | None:
    """This worker's prediction log writer, or None when ``[prediction_log] enabled`` is off."""
    if not settings.prediction_log.enabled:
        return None
    from modelport.monitoring.prediction_log import PredictionLogWriter

    return PredictionLogWriter.from_settings(
        settings.prediction_log, settings.resolved_prediction_log_uri, on_drop=on_drop
    )


def preload_server_app() -> None:
    """Import what ``build_server_app`` needs (a new worker calls this while it waits for
    its start message: imports are most of a cold start)."""
    import modelport.server.http.app  # noqa: F401


def followed_registry(settings: Settings) -> Callable[[], FollowedRegistry]:
    """How a server's workers reach the registry they follow: the control plane at
    ``registry_url`` over HTTP (no database credentials on the replica), or the
    database and artifact store of ``settings``."""
    if settings.registry_url is not None:
        from modelport.client import RegistryClient

        return lambda: RegistryClient.from_settings(settings)
    return lambda: build_registry(settings)


def resolve_sources(settings: Settings, sources: Sequence[ModelSource]) -> list[ModelSource]:
    """Pin every registry source to the version it names now (fetching the package when
    artifacts are remote), so that workers start without opening the database. A bare
    model name (``churn``) that is also the name of a deployment serves the deployment:
    its workers read it (and follow it) themselves."""
    if not any(source.ref is not None for source in sources):
        return list(sources)
    if settings.registry_url is not None:
        from modelport.client import RegistryClient
        from modelport.remote.sources import pin_sources

        policy = SigningPolicy.from_settings(settings.signing)
        with RegistryClient.from_settings(settings) as client:
            return pin_sources(client, sources, policy)
    with build_registry(settings) as registry:
        pinned = []
        for source in sources:
            if source.ref is None:
                pinned.append(source)
                continue
            ref = source.model_ref
            if ref.is_latest and registry.find_deployment(ref.name) is not None:
                pinned.append(source.serving_deployment(ref.name))
                continue
            pinned.append(_pin(registry, source))
        return pinned


def _pin(registry: RegistryService, source: ModelSource) -> ModelSource:
    """``source`` pinned to the version it names now, with the local files workers read."""
    version = registry.resolve(source.model_ref)
    directory = registry.artifacts.local_path(version.artifact_key)
    stats = registry.recomputed_stats_file(version)
    # Only where the policy asks: a broken signature tag stops nothing else.
    policy = registry.signing
    required = policy is not None and policy.requires(source.alias)
    signature = registry.signature_file(version) if required else None
    return source.pinned(
        version.version,
        str(directory),
        version.manifest_digest,
        str(stats) if stats is not None else None,
        str(signature) if signature is not None else None,
    )


def build_alert_engine(
    settings: Settings,
    registry: RegistryService,
    *,
    metrics_urls: Sequence[str] = (),
) -> AlertEngine:
    """The alert engine of ``settings.monitor``: its rules over the prediction log,
    states in the registry's metadata database. ``metrics_urls`` add to the configured
    ``/metrics`` URLs (``serve --monitor`` passes its own)."""
    from modelport.monitoring.alerts.actions import ActionRunner
    from modelport.monitoring.alerts.engine import AlertEngine, check_rules
    from modelport.monitoring.alerts.readings import SignalReader

    rules = settings.monitor.alerts
    check_rules(rules)
    log_uri = settings.resolved_prediction_log_uri
    urls = [*settings.monitor.metrics_urls, *metrics_urls]
    policy = settings.outgoing.policy()
    reader = SignalReader(
        log_uri, registry=registry, metrics_urls=urls, policy=policy.trusting(metrics_urls)
    )
    actions = ActionRunner(
        registry.metadata,
        log_uri=log_uri,
        retrain_dir=settings.resolved_retrain_dir,
        policy=policy,
    )
    return AlertEngine(rules, registry.metadata, reader, actions)


def _require_sql(url: str) -> None:
    if url == MEMORY_URI:
        raise InvalidArgumentError(
            "the metadata store is in memory (memory://); it has no schema to migrate",
            field="database_url",
        )


def database_revision(settings: Settings) -> tuple[str | None, str]:
    """The metadata database's schema revision and the one this release expects."""
    from modelport.metadata.sql.schema import current_revision, head_revision

    _require_sql(settings.resolved_database_url)
    return current_revision(settings.resolved_database_url), head_revision()


def upgrade_database(settings: Settings) -> tuple[str | None, str]:
    """Migrate the metadata database to this release's schema; the revisions before and after."""
    from modelport.metadata.sql.schema import current_revision, head_revision, upgrade

    url = settings.resolved_database_url
    _require_sql(url)
    before = current_revision(url)
    upgrade(url)
    return before, head_revision()


def package_source(
    ref: str,
    settings: Settings,
    *,
    accelerate: bool = True,
    trust: Sequence[str] = (),
    version: int | None = None,
) -> PackageSource:
    """Resolve ``ref`` once, for batch workers that load its package from the artifact
    store alone (``batch.source``); ``version`` loads that version of ``ref``'s model
    instead (a resumed job's). Where ``[signing] require_signed`` covers ``ref``'s alias,
    the version's signature is verified here, before any worker loads it (as serve does)."""
    from modelport.batch.source import PackageSource
    from modelport.domain.refs import ModelRef, parse_ref

    parsed = parse_ref(ref)
    if settings.registry_url is not None:
        return _registry_package_source(parsed, settings, accelerate, tuple(trust), version)
    registry = build_registry(settings)
    try:
        found = registry.resolve(parsed if version is None else ModelRef(parsed.name, version))
        policy = registry.signing
        if policy is not None and policy.requires(parsed.alias):
            from modelport.registry.signatures import verify_version

            verify_version(registry.artifacts, found, policy.trusted_keys)
    finally:
        registry.close()
    return PackageSource(
        version=found,
        artifacts_uri=settings.resolved_artifacts_uri,
        cache_dir=str(settings.cache_dir),
        open_store=create_artifact_store,
        accelerate=accelerate,
        version_check=settings.version_check,
        trust=tuple(trust),
    )


def _registry_package_source(
    parsed: ModelRef, settings: Settings, accelerate: bool, trust: tuple[str, ...],
    version: int | None,
) -> PackageSource:  # fmt: skip
    """``package_source`` over the control plane at ``registry_url``: resolved and
    downloaded (every sha256 checked) into this machine's cache now, so that local
    workers start from files; workers elsewhere download it themselves. A signature
    ``[signing] require_signed`` asks for is downloaded and verified here."""
    from modelport.batch.source import PackageSource
    from modelport.client import RegistryClient
    from modelport.domain.refs import ModelRef

    policy = SigningPolicy.from_settings(settings.signing)
    with RegistryClient.from_settings(settings) as client:
        found = client.resolve(parsed if version is None else ModelRef(parsed.name, version))
        client.package_dir(found)
        if policy is not None and policy.requires(parsed.alias):
            # as over the database: verified here, before any worker loads it
            client.check_signature(found, policy.trusted_keys)
    return PackageSource(
        version=found,
        artifacts_uri=client.url,
        cache_dir=str(settings.cache_dir),
        open_store=create_artifact_store,
        accelerate=accelerate,
        version_check=settings.version_check,
        trust=trust,
        fetch_package=fetch_registry_package,
    )


def fetch_registry_package(source: PackageSource) -> Path:
    """The package of ``source`` (a control plane's version) on this machine: the copy
    in its cache, or downloaded now through the control plane with this process's own
    ``MODELPORT_API_KEY`` and ``MODELPORT_REGISTRY_CA_BUNDLE`` (a worker's environment;
    the driver's key never travels with the source)."""
    from modelport.client import RegistryClient
    from modelport.package.location import MANIFEST_FILE
    from modelport.remote.packages import cache_entry

    version = source.version
    cached = cache_entry(Path(source.cache_dir), source.artifacts_uri, version.name,
                         version.version, version.manifest_digest)  # fmt: skip
    if (cached / MANIFEST_FILE).is_file():
        return cached
    from modelport.errors import AuthenticationError

    settings = Settings(registry_url=source.artifacts_uri)
    with RegistryClient.from_settings(settings) as client:
        client.cache_dir = Path(source.cache_dir)
        try:
            return client.package_dir(version)
        except AuthenticationError as exc:
            raise AuthenticationError(
                f"this worker downloads {version.ref} through the control plane at "
                f"{source.artifacts_uri}, which refused its key ({exc}): set "
                "MODELPORT_API_KEY (a key with read) in the workers' environment",
                model=version.name,
            ) from None


def run_batch_job(
    job: BatchJob,
    settings: Settings,
    *,
    progress: bool | None = None,
    log_predictions: bool = False,
) -> BatchSummary:
    """Run a batch job (``batch.job``) with the registry and stores of ``settings``; its
    output is then written to the prediction log when ``log_predictions``."""
    from modelport.batch.job import run_batch
    from modelport.batch.progress import progress_for
    from modelport.domain.refs import parse_ref_or_name

    ref = str(parse_ref_or_name(job.model_ref))

    def resolve(_: str, version: int | None) -> PackageSource:
        return package_source(ref, settings, version=version)

    summary = run_batch(job, resolve, progress=progress_for(progress))
    if log_predictions:
        from modelport.batch.logged import log_output

        log_output(
            summary.output,
            model=summary.model,
            version=summary.version,
            uri=settings.resolved_prediction_log_uri,
            settings=settings.prediction_log,
        )
    return summary
