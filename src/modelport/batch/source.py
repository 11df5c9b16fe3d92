"""Where a batch worker loads its model from: a registered version's package in the
artifact store, verified against the digest recorded at registration.

The driver resolves the reference once (``bootstrap.package_source``) and sends this
small, picklable description to every worker (Dask, Ray, Spark): the model itself never
travels through a scheduler, and a worker needs no database, only the artifact store.
Each worker process loads a given source once and keeps it for all its tasks.

A driver following a control plane by its URL (``MODELPORT_REGISTRY_URL``) downloads
the package into its cache first and sends a source whose ``fetch_package`` finds it
there, or, on a worker of another machine, downloads it through the control plane with
that worker's own ``MODELPORT_API_KEY``: no key travels through the scheduler.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from modelport.artifacts.store import ArtifactStore
from modelport.config import VersionCheck
from modelport.domain.entities import ModelVersion
from modelport.errors import InvalidArgumentError

if TYPE_CHECKING:
    from modelport.package.loaded import LoadedModel

OpenStore = Callable[[str, Path], ArtifactStore]
"""``bootstrap.create_artifact_store``: a module-level function, so it pickles by name."""

FetchPackage = Callable[["PackageSource"], Path]
"""``bootstrap.fetch_registry_package``: the source's package directory, downloaded
through the control plane at ``artifacts_uri`` when this machine has no copy yet."""


@dataclass(frozen=True)
class PackageSource:
    """A resolved version and the artifact store holding its package (or, with
    ``fetch_package``, the control plane at ``artifacts_uri`` serving it)."""

    version: ModelVersion
    artifacts_uri: str
    cache_dir: str
    open_store: OpenStore = field(compare=False)
    accelerate: bool = True
    version_check: VersionCheck = "strict"
    trust: tuple[str, ...] = ()
    fetch_package: FetchPackage | None = field(default=None, compare=False)

    @property
    def ref(self) -> str:
        """``name/version``: what the output's model columns and messages name."""
        return f"{self.version.name}/{self.version.version}"

    def load(self) -> LoadedModel:
        """The loaded model, once per process (later calls return the same one)."""
        key = (self.ref, self.artifacts_uri, self.accelerate, self.version_check, self.trust)
        with _LOCK:
            loaded = _LOADED.get(key)
            if loaded is None:
                loaded = _LOADED[key] = self._load_now()
            return loaded

    def _load_now(self) -> LoadedModel:
        from modelport.flavors.catalog import default_catalog
        from modelport.package.reader import load_package

        if self.fetch_package is not None:
            directory = self.fetch_package(self)
        else:
            directory = self._stored_package()
        return load_package(
            directory,
            default_catalog(),
            trust=self.trust,
            version_check=self.version_check,
            expected_manifest_digest=self.version.manifest_digest,
            source=self.version.ref,
            version=self.version,
            accelerate=self.accelerate,
        )

    def _stored_package(self) -> Path:
        if self.artifacts_uri == "memory://":
            raise InvalidArgumentError(
                "an in-memory artifact store cannot be read by other processes; "
                "use a directory or an object store (MODELPORT_ARTIFACTS_URI)",
                field="artifacts_uri",
            )
        store = self.open_store(self.artifacts_uri, Path(self.cache_dir))
        return store.local_path(self.version.artifact_key)


# One per worker process, by design: a Dask, Ray or Spark worker runs many tasks of one
# job, and each would otherwise load (and verify) the package again. Keyed by version and
# store, so two jobs with different versions in one worker keep both.
_LOCK = threading.Lock()
_LOADED: dict[tuple[object, ...], LoadedModel] = {}
