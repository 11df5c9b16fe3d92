"""Batch scoring's sources and jobs: a reference resolved once for workers that load
its package themselves, from the artifact store or through a control plane's URL."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from modelport.bootstrap.stores import build_registry, create_artifact_store
from modelport.config import Settings
from modelport.package.signing import SigningPolicy

if TYPE_CHECKING:
    from modelport.batch.job import BatchJob, BatchSummary
    from modelport.batch.source import FetchPackage, PackageSource
    from modelport.domain.entities import ModelVersion
    from modelport.domain.refs import ModelRef


def package_source(
    ref: str,
    settings: Settings,
    *,
    accelerate: bool = True,
    trust: Sequence[str] = (),
    version: int | None = None,
) -> PackageSource:
    """Resolve ``ref`` once, for batch workers that load its package themselves
    (``batch.source``): from the artifact store, or through the control plane at
    ``registry_url``, which downloads it (every sha256 checked) into this machine's cache
    now so that local workers start from files (workers elsewhere download it
    themselves). ``version`` loads that version of ``ref``'s model instead (a resumed
    job's). Where ``[signing] require_signed`` covers ``ref``'s alias, the version's
    signature is verified here, before any worker loads it (as serve does)."""
    from modelport.batch.source import PackageSource
    from modelport.domain.refs import ModelRef, parse_ref

    parsed = parse_ref(ref)
    wanted = parsed if version is None else ModelRef(parsed.name, version)
    policy = SigningPolicy.from_settings(settings.signing)
    keys = policy.trusted_keys if policy is not None and policy.requires(parsed.alias) else None
    if settings.registry_url is not None:
        found, artifacts_uri = _through_control_plane(settings, wanted, keys)
        fetch: FetchPackage | None = fetch_registry_package
    else:
        with build_registry(settings) as registry:
            found = registry.resolve(wanted)
            if keys is not None:
                registry.check_signature(found, keys)
        artifacts_uri, fetch = settings.resolved_artifacts_uri, None
    return PackageSource(
        version=found,
        artifacts_uri=artifacts_uri,
        cache_dir=str(settings.cache_dir),
        open_store=create_artifact_store,
        accelerate=accelerate,
        version_check=settings.version_check,
        trust=tuple(trust),
        fetch_package=fetch,
    )


def _through_control_plane(
    settings: Settings, wanted: ModelRef, keys: Sequence[Path] | None
) -> tuple[ModelVersion, str]:
    """The version ``wanted`` names, its package downloaded here and its signature
    verified with ``keys`` when given; and the control plane's URL."""
    from modelport.client import RegistryClient

    with RegistryClient.from_settings(settings) as client:
        found = client.resolve(wanted)
        client.package_dir(found)
        if keys is not None:
            client.check_signature(found, keys)
        return found, client.url


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
