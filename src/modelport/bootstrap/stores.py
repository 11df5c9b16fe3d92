"""The stores and the registry built from Settings: the only place that chooses
concrete back ends (SQL, fsspec, memory), and the database's revision and upgrade."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

from modelport.artifacts.local import LocalArtifactStore
from modelport.artifacts.memory import MemoryArtifactStore
from modelport.artifacts.store import ArtifactStore
from modelport.config import Settings
from modelport.errors import InvalidArgumentError, MissingDependencyError
from modelport.flavors.catalog import default_catalog
from modelport.metadata.memory import MemoryMetadataStore
from modelport.metadata.store import MetadataStore
from modelport.package.signing import SigningPolicy
from modelport.registry.service import RegistryService

if TYPE_CHECKING:
    from modelport.monitoring.alerts.engine import AlertEngine
    from modelport.webhooks.dispatcher import WebhookDispatcher

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
