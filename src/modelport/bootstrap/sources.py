"""What a server serves, pinned at start: each registry reference resolved to the
version it names now, over the database or through a control plane's URL."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING

from modelport.bootstrap.stores import build_registry
from modelport.config import Settings
from modelport.package.signing import SigningPolicy
from modelport.registry.service import RegistryService
from modelport.serving.sources import ModelSource, pin_all

if TYPE_CHECKING:
    from modelport.serving.loader import FollowedRegistry


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
        return pin_all(
            sources,
            lambda name: registry.find_deployment(name) is not None,
            lambda source: _pin(registry, source),
        )


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
