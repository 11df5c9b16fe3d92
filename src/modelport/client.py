"""The HTTP SDK: ``RegistryClient`` talks to a control plane (``modelport ui``) with the
methods, signatures and return types of ``RegistryService``, so that code written
against the registry works unchanged over HTTP.

``modelport.api`` and the CLI use it when ``MODELPORT_REGISTRY_URL`` is set (with
``MODELPORT_API_KEY``, sent as ``Authorization: Bearer <key>``): no database
credentials on the machine. Error answers are raised as the same exception classes,
with the same fields, as the registry raises locally. ``register`` packages the model
here and uploads the package with its digests; ``load`` downloads a version's files into
the local cache, checking every sha256, then verifies and loads it like a local load.
Tests pass an ``httpx.Client`` of their own (any transport).
"""

from __future__ import annotations

import ssl
import tempfile
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path
from typing import Any
from urllib.parse import quote

import httpx

from modelport.config import Settings, VersionCheck
from modelport.domain import wire
from modelport.domain.entities import AliasMove, AuditEntry, ModelVersion, RegisteredModel
from modelport.domain.names import Stage
from modelport.domain.refs import ModelRef, parse_ref
from modelport.errors import InvalidArgumentError, StoreUnavailableError
from modelport.flavors.catalog import FlavorCatalog, default_catalog
from modelport.package.loaded import LoadedModel
from modelport.package.manifest import Manifest
from modelport.package.options import PackageOptions
from modelport.package.reader import load_package
from modelport.registry.lifecycle import check_signature
from modelport.remote import packages
from modelport.remote.deployments import DeploymentCalls
from modelport.remote.errors import error_from_answer
from modelport.remote.keys import KeyCalls
from modelport.remote.monitoring import MonitoringCalls
from modelport.remote.rollouts import RolloutCalls
from modelport.remote.versions import VersionCalls

REGISTRY = "/api/registry"
TAR = "application/x-tar"


class RegistryClient(DeploymentCalls, KeyCalls, MonitoringCalls, RolloutCalls, VersionCalls):
    """The registry of a control plane at ``url``, over HTTP."""

    def __init__(
        self,
        url: str,
        *,
        api_key: str | None = None,
        http: httpx.Client | None = None,
        verify: bool | ssl.SSLContext = True,
        timeout_s: float = 300.0,
        cache_dir: Path | None = None,
        catalog: FlavorCatalog | None = None,
        version_check: VersionCheck = "strict",
    ) -> None:
        self.url = url.rstrip("/")
        headers = {"authorization": f"Bearer {api_key}"} if api_key else {}
        self._owned = http is None
        self._http = http or httpx.Client(verify=verify, timeout=timeout_s)
        self._headers = headers
        self.cache_dir = cache_dir or Path(tempfile.gettempdir()) / "modelport-cache"
        self.catalog = catalog or default_catalog()
        self.version_check: VersionCheck = version_check

    @classmethod
    def from_settings(
        cls, settings: Settings, *, http: httpx.Client | None = None
    ) -> RegistryClient:
        """The client ``MODELPORT_REGISTRY_URL``, ``MODELPORT_API_KEY`` and
        ``MODELPORT_REGISTRY_CA_BUNDLE`` describe (https is verified by default)."""
        if settings.registry_url is None:
            raise InvalidArgumentError(
                "no registry URL: set MODELPORT_REGISTRY_URL", field="registry_url"
            )
        key = settings.api_key.get_secret_value() if settings.api_key is not None else None
        bundle = settings.registry_ca_bundle
        return cls(
            settings.registry_url,
            api_key=key,
            http=http,
            verify=(
                ssl.create_default_context(cafile=str(bundle.expanduser()))
                if bundle is not None
                else True
            ),
            timeout_s=settings.registry_timeout_s,
            cache_dir=settings.cache_dir,
            version_check=settings.version_check,
        )

    # ------------------------------------------------------------------- transport

    def _send(
        self, method: str, path: str, *, headers: dict[str, str] | None = None, **kwargs: Any
    ) -> httpx.Response:
        url = self.url + path
        sent = {**self._headers, **(headers or {})}
        try:
            response = self._http.request(method, url, headers=sent, **kwargs)
        except httpx.HTTPError as exc:
            raise StoreUnavailableError(f"cannot reach the registry at {self.url}: {exc}") from None
        if response.status_code >= 400:
            raise error_from_answer(response.status_code, _body_of(response), self.url)
        return response

    def _json(self, method: str, path: str, **kwargs: Any) -> Any:
        return self._send(method, path, **kwargs).json()

    @contextmanager
    def _stream(self, path: str, params: dict[str, str]) -> Iterator[Iterator[bytes]]:
        url = self.url + path
        try:
            with self._http.stream("GET", url, params=params, headers=self._headers) as answer:
                if answer.status_code >= 400:
                    answer.read()
                    raise error_from_answer(answer.status_code, _body_of(answer), self.url)
                yield answer.iter_bytes(1 << 20)
        except httpx.HTTPError as exc:
            raise StoreUnavailableError(f"cannot reach the registry at {self.url}: {exc}") from None

    # ---------------------------------------------------------------------- reading

    def get_model(self, name: str) -> RegisteredModel:
        """The registered model called ``name``."""
        return wire.model_from_wire(self._json("GET", _model(name)))

    def list_models(self) -> list[RegisteredModel]:
        """Every registered model, by name."""
        return [wire.model_from_wire(m) for m in self._json("GET", f"{REGISTRY}/models")["models"]]

    def list_versions(self, name: str) -> list[ModelVersion]:
        """Every version of a model, newest first."""
        found = self._json("GET", f"{_model(name)}/versions")["versions"]
        return [wire.version_from_wire(v) for v in found]

    def get_version(self, name: str, version: int) -> ModelVersion:
        """One version of a model."""
        return wire.version_from_wire(self._json("GET", _version(name, version)))

    def resolve(self, ref: str | ModelRef) -> ModelVersion:
        """The version a reference such as ``churn@production`` or ``churn/3`` names."""
        text = str(parse_ref(ref) if isinstance(ref, str) else ref)
        found = self._json("GET", f"{REGISTRY}/resolve", params={"ref": text})
        return wire.version_from_wire(found)

    def version_number(self, ref: str | ModelRef) -> int:
        """The number of the version ``ref`` names now."""
        return self.resolve(ref).version

    def search_versions(
        self, filter_text: str | None = None, *, max_results: int = 1000
    ) -> list[ModelVersion]:
        """Versions matching a filter such as ``name = 'churn' AND metrics.auc > 0.9``."""
        params = {
            "max_results": str(max_results),
            **({"filter": filter_text} if filter_text else {}),
        }
        found = self._json("GET", f"{REGISTRY}/versions", params=params)["versions"]
        return [wire.version_from_wire(v) for v in found]

    def get_audit_log(
        self, model: str | None = None, *, since: datetime | None = None, limit: int = 100
    ) -> list[AuditEntry]:
        """The audit trail, newest first."""
        params = {"limit": str(limit)}
        if model is not None:
            params["model"] = model
        if since is not None:
            params["since"] = since.isoformat()
        found = self._json("GET", f"{REGISTRY}/audit", params=params)["entries"]
        return [wire.audit_from_wire(e) for e in found]

    def get_manifest(self, ref: str | ModelRef | ModelVersion) -> Manifest:
        """The ``modelport.yaml`` of the version ``ref`` names, as the server read it
        (checked there against the digest recorded at registration)."""
        version = ref if isinstance(ref, ModelVersion) else self.resolve(ref)
        data = self._json("GET", f"{_version(version.name, version.version)}/manifest")
        return Manifest.model_validate(data)

    def reference_stats(
        self, ref: str | ModelRef | ModelVersion
    ) -> tuple[dict[str, Any] | None, str]:
        """The version's reference statistics and where they came from (``recomputed``
        or ``package``; None when it has none), as the server read and checked them."""
        version = ref if isinstance(ref, ModelVersion) else self.resolve(ref)
        found = self._json("GET", f"{_version(version.name, version.version)}/reference-stats")
        return found["stats"], str(found["origin"])

    def load(
        self,
        ref: str | ModelRef,
        *,
        trust: Iterable[str] = (),
        version_check: VersionCheck | None = None,
        accelerate: bool = False,
    ) -> LoadedModel:
        """Resolve ``ref``, download its package into the cache (every file checked
        against its sha256 on the way), verify it against the manifest digest the
        registry recorded, and load it."""
        version = self.resolve(ref)
        directory = self.package_dir(version)
        return load_package(
            directory,
            self.catalog,
            trust=trust,
            version_check=version_check or self.version_check,
            expected_manifest_digest=version.manifest_digest,
            source=version.ref,
            version=version,
            accelerate=accelerate,
        )

    def package_dir(self, version: ModelVersion) -> Path:
        """The version's package in the local cache, downloaded first if needed."""
        path = _version(version.name, version.version)
        target = packages.cache_entry(
            self.cache_dir, self.url, version.name, version.version, version.manifest_digest
        )
        listing = self._json("GET", f"{path}/files")

        def fetch(relpath: str) -> Any:
            return self._stream(f"{path}/file", {"path": relpath})

        return packages.download(listing, version.manifest_digest, target, fetch)

    # ------------------------------------------------------------------- versions

    def register(
        self, source: Any, name: str, options: PackageOptions | None = None
    ) -> ModelVersion:
        """Package ``source`` here (a live model, a model file or a package directory),
        upload the package with its digests, and register it as the next version of
        ``name``. The server checks every file before it commits: all or nothing."""
        from modelport.package.writer import build_package  # pandas, stats: only to register

        with tempfile.TemporaryDirectory(prefix="modelport-upload-") as scratch:
            package = Path(scratch) / "package"
            build_package(source, package, self.catalog, options or PackageOptions())
            with tempfile.TemporaryFile(dir=scratch) as spool:
                digest = packages.package_tar(package, spool)
                headers = {"content-type": TAR, "x-modelport-manifest-sha256": digest}
                found = self._json(
                    "POST", f"{_model(name)}/versions", content=spool, headers=headers
                )
        return wire.version_from_wire(found)

    def update_model(self, name: str, *, description: str) -> RegisteredModel:
        """Change a model's description."""
        found = self._json("PATCH", _model(name), json={"description": description})
        return wire.model_from_wire(found)

    def set_model_tags(self, name: str, tags: Mapping[str, str]) -> RegisteredModel:
        """Set tags on a model (others stay)."""
        found = self._json("POST", f"{_model(name)}/tags", json={"tags": dict(tags)})
        return wire.model_from_wire(found)

    def set_version_tags(self, name: str, version: int, tags: Mapping[str, str]) -> ModelVersion:
        """Set tags on a version (others stay)."""
        found = self._json("POST", f"{_version(name, version)}/tags", json={"tags": dict(tags)})
        return wire.version_from_wire(found)

    def delete_version_tags(self, name: str, version: int, keys: Iterable[str]) -> ModelVersion:
        """Remove tags from a version (absent ones are ignored)."""
        params = [("key", key) for key in keys]
        found = self._json("DELETE", f"{_version(name, version)}/tags", params=params)
        return wire.version_from_wire(found)

    def delete_version(self, name: str, version: int) -> None:
        """Delete a version and its files; refused while an alias or stage points at it."""
        self._send("DELETE", _version(name, version))

    def delete_model(self, name: str) -> None:
        """Delete a model, its versions and their files; refused while it has aliases."""
        self._send("DELETE", _model(name))

    # ------------------------------------------------------ aliases, stages, archive

    def set_alias(
        self,
        name: str,
        alias: str,
        version: int,
        *,
        force: bool = False,
        skip_gates: str | None = None,
    ) -> ModelVersion:
        """Point an alias (or stage) at a version; the server runs the gates."""
        return self.move(name, alias, version, force=force, skip_gates=skip_gates).version

    def delete_alias(self, name: str, alias: str) -> None:
        """Remove an alias (or stage); ``AliasNotFoundError`` when it points nowhere."""
        self._send("DELETE", f"{_model(name)}/aliases/{_part(alias)}")

    def promote(
        self,
        name: str,
        version: int,
        stage: str | Stage,
        *,
        archive_previous: bool = False,
        force: bool = False,
        skip_gates: str | None = None,
    ) -> ModelVersion:
        """Move a stage to a version (gates run on the server); the version as it is now."""
        body = _move_body(str(Stage(stage)) if isinstance(stage, Stage) else stage,
                          archive_previous, force, skip_gates)  # fmt: skip
        found = self._json("POST", f"{_version(name, version)}/promote", json=body)
        return _warned(wire.move_from_wire(found), force).version

    def archive_version(self, name: str, version: int) -> ModelVersion:
        """Archive a version (refused while staging or production points at it)."""
        found = self._json("POST", f"{_version(name, version)}/archive")
        return wire.move_from_wire(found).version

    def move(
        self,
        name: str,
        alias: str | Stage,
        version: int,
        *,
        archive_previous: bool = False,
        force: bool = False,
        skip_gates: str | None = None,
    ) -> AliasMove:
        """Point an alias or stage at a version and say what that did (``AliasMove``)."""
        text = alias.value if isinstance(alias, Stage) else alias
        body = {"version": version, **_move_body(None, archive_previous, force, skip_gates)}
        found = self._json("PUT", f"{_model(name)}/aliases/{_part(text)}", json=body)
        return _warned(wire.move_from_wire(found), force)

    # ---------------------------------------------------------------------- closing

    def close(self) -> None:
        """Close the HTTP connections (not a client passed in)."""
        if self._owned:
            self._http.close()

    def __enter__(self) -> RegistryClient:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


def _warned(move: AliasMove, force: bool) -> AliasMove:
    """``move``, after the ``MissingSignatureWarning`` the registry gave its caller (on
    the server, where nobody sees it) for a version without a signature: the same rule,
    applied to the version the server answers with."""
    check_signature(move.version, move.alias, force=force)
    return move


def _body_of(response: httpx.Response) -> Any:
    """An error answer's JSON (its first 200 characters of text when it is not JSON: a
    proxy's page)."""
    try:
        return response.json()
    except ValueError:
        return response.text[:200] or None


def _part(text: str) -> str:
    return quote(text, safe="")


def _model(name: str) -> str:
    return f"{REGISTRY}/models/{_part(name)}"


def _version(name: str, version: int) -> str:
    return f"{_model(name)}/versions/{int(version)}"


def _move_body(
    stage: str | None, archive_previous: bool, force: bool, skip_gates: str | None
) -> dict[str, Any]:
    body: dict[str, Any] = {"archive_previous": archive_previous, "force": force}
    if stage is not None:
        body["stage"] = stage
    if skip_gates is not None:
        body["skip_gates"] = skip_gates
    return body
