"""Loading the models a server serves, from the registry or from package directories.

The registry is the database's (``RegistryService``) or, for a server following a
control plane by its URL, the HTTP client: anything with the calls ``FollowedRegistry``
names. Everything here is synchronous and runs in the runtime's loading threads.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, Protocol

from modelport.config import VersionCheck
from modelport.domain.deployments import Deployment
from modelport.domain.entities import ModelVersion
from modelport.domain.refs import ModelRef
from modelport.flavors.catalog import FlavorCatalog
from modelport.package.loaded import LoadedModel
from modelport.package.reader import load_package
from modelport.package.signing import SIGNATURE_FILE, SigningPolicy, Verified, verify_directory
from modelport.registry.reference_stats import load_file
from modelport.serving.sources import ModelSource


class FollowedRegistry(Protocol):
    """What a server asks of the registry it follows (``RegistryService`` and
    ``modelport.client.RegistryClient`` both answer it)."""

    def version_number(self, ref: str | ModelRef) -> int:
        """The number of the version ``ref`` names now."""
        ...

    def find_deployment(self, name: str) -> Deployment | None:
        """The deployment called ``name``, or None."""
        ...

    def get_version(self, name: str, version: int) -> ModelVersion:
        """One version of a model."""
        ...

    def load(
        self, ref: str | ModelRef, *, version_check: VersionCheck | None = ...,
        accelerate: bool = ...,
    ) -> LoadedModel:  # fmt: skip
        """Resolve, fetch, verify and load a version."""
        ...

    def reference_stats(
        self, ref: str | ModelRef | ModelVersion
    ) -> tuple[dict[str, Any] | None, str]:
        """The version's reference statistics and their origin."""
        ...

    def check_signature(self, version: ModelVersion, public_keys: Sequence[Path]) -> Verified:
        """Verify the version's package against its signature and ``public_keys``."""
        ...

    def close(self) -> None:
        """Release connections."""
        ...


class ModelLoader:
    """Finds which version a source means now, and loads a given version of it.

    The registry is built on first use: a worker whose sources are pinned (see
    ``ModelSource``) starts without opening the database.
    """

    def __init__(
        self,
        registry: Callable[[], FollowedRegistry] | None,
        catalog: FlavorCatalog,
        *,
        accelerate: bool,
        version_check: VersionCheck,
        signing: SigningPolicy | None = None,
    ) -> None:
        self._make_registry = registry
        self._signing = signing
        self._registry: FollowedRegistry | None = None
        self._lock = threading.Lock()
        self._catalog = catalog
        self._accelerate = accelerate
        self._version_check = version_check

    def current_version(self, source: ModelSource) -> int | None:
        """The version the source names now (None for a package directory)."""
        if source.ref is None:
            return None
        return self._require_registry().version_number(source.model_ref)

    def find_deployment(self, name: str) -> Deployment | None:
        """The registry's deployment ``name`` now (None: there is none)."""
        return self._require_registry().find_deployment(name)

    def load(self, source: ModelSource, version: int | None) -> LoadedModel:
        """Load and verify one version (the package itself for a directory source);
        first its model signature, when ``[signing]`` requires one for the source
        (before any of its files is unpickled)."""
        if self._signing is not None and self._signing.requires(source.alias):
            self._verify_signature(self._signing, source, version)
        if source.directory is not None and version == source.version:
            return load_package(
                Path(source.directory),
                self._catalog,
                version_check=self._version_check,
                accelerate=self._accelerate,
                expected_manifest_digest=source.manifest_digest,
                source=str(ModelRef(source.model_ref.name, version=version)),
            )
        if source.path is not None:
            return load_package(
                Path(source.path),
                self._catalog,
                version_check=self._version_check,
                accelerate=self._accelerate,
                source=source.path,
            )
        assert version is not None
        ref = ModelRef(source.model_ref.name, version=version)
        return self._require_registry().load(
            ref, version_check=self._version_check, accelerate=self._accelerate
        )

    def _verify_signature(
        self, policy: SigningPolicy, source: ModelSource, version: int | None
    ) -> None:
        """``SignatureVerificationError`` unless the version's signature holds: the one
        pinned at start-up, a package directory's ``model.sig``, or the registry's."""
        keys = policy.trusted_keys
        signature = Path(source.signature_path) if source.signature_path else None
        # A signature pinned at start-up is gone once the version is signed again: then
        # the registry says which one is current.
        pinned = signature is not None and signature.is_file()
        if source.directory is not None and version == source.version and pinned:
            name = source.model_ref.name
            verify_directory(
                Path(source.directory),
                signature,
                keys,
                what=f"{name}/{version}",
                model=name,
                version=version,
            )
        elif source.path is not None:
            directory = Path(source.path)
            verify_directory(directory, directory / SIGNATURE_FILE, keys, what=source.path)
        else:
            assert version is not None  # a registry source loads a resolved version
            registry = self._require_registry()
            found = registry.get_version(source.model_ref.name, version)
            # a control plane's: its package and signature downloaded, checked here
            registry.check_signature(found, keys)

    def reference_stats(
        self, source: ModelSource, version: int | None, loaded: LoadedModel
    ) -> dict[str, Any] | None:
        """The version's reference statistics: recomputed ones first (pinned at start-up,
        or asked of the registry for a later version), else the package's own."""
        if source.directory is not None and version == source.version:
            if source.stats_path is not None:
                return load_file(Path(source.stats_path))
            return loaded.reference_stats()
        if source.ref is None or version is None:
            return loaded.reference_stats()
        stats, _ = self._require_registry().reference_stats(
            ModelRef(source.model_ref.name, version=version)
        )
        return stats

    def _require_registry(self) -> FollowedRegistry:
        with self._lock:  # loads run in two threads
            if self._registry is None:
                assert self._make_registry is not None, "registry sources need a registry"
                self._registry = self._make_registry()
            return self._registry

    def close(self) -> None:
        """Release the registry's connections."""
        if self._registry is not None:
            self._registry.close()
