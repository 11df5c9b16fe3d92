"""RegistryService: register, resolve, alias, promote, search, archive, delete, audit.

The rules of the registry live in this package; the stores only store. The service is
the one public facade: it reads and loads here, and hands writes to its parts,
``VersionWrites`` (register, edit, delete: ``registry.versions``) and ``Lifecycle``
(aliases, stages, archive: ``registry.lifecycle``). Every change is made in one
metadata transaction together with its audit entry, so the trail cannot miss a change
or record one that did not happen.
"""

from __future__ import annotations

import copy
import dataclasses
from collections.abc import Callable, Iterable, Mapping, Sequence
from datetime import datetime
from pathlib import Path
from typing import Any

from modelport.artifacts.store import ArtifactStore
from modelport.config import VersionCheck
from modelport.domain.deployments import Deployment, DeploymentEvent
from modelport.domain.entities import AliasMove, AuditEntry, ModelVersion, RegisteredModel
from modelport.domain.gates import PromotionGates
from modelport.domain.names import Stage
from modelport.domain.refs import ModelRef, parse_ref
from modelport.domain.search import parse_filter
from modelport.errors import InvalidArgumentError
from modelport.flavors.catalog import FlavorCatalog
from modelport.metadata.store import MetadataStore
from modelport.package.loaded import LoadedModel
from modelport.package.manifest import Manifest
from modelport.package.options import PackageOptions
from modelport.package.reader import load_package, read_pinned_manifest
from modelport.package.signing import SigningPolicy, Verified
from modelport.registry import reference_stats, signatures
from modelport.registry.context import Clock, EventListener, RegistryContext, utc_now
from modelport.registry.deployments import Deployments
from modelport.registry.lifecycle import Lifecycle, parse_stage
from modelport.registry.lookups import require_model, require_version, resolve_ref
from modelport.registry.signatures import VersionSigning
from modelport.registry.versions import VersionWrites


class RegistryService:
    """The model registry over a metadata store and an artifact store."""

    def __init__(
        self,
        metadata: MetadataStore,
        artifacts: ArtifactStore,
        catalog: FlavorCatalog,
        *,
        actor: str,
        version_check: VersionCheck = "strict",
        clock: Clock = utc_now,
        on_event: EventListener | None = None,
        gates: PromotionGates | None = None,
    ) -> None:
        self._context = RegistryContext(
            metadata, artifacts, catalog, actor, clock, on_event, gates=gates
        )
        self.version_check = version_check
        self._versions = VersionWrites(self._context)
        self._lifecycle = Lifecycle(self._context)
        self._deployments = Deployments(self._context)

    # The stores can be replaced (tests put failing ones in); every part sees the change.

    @property
    def metadata(self) -> MetadataStore:
        """The metadata store."""
        return self._context.metadata

    @metadata.setter
    def metadata(self, store: MetadataStore) -> None:
        self._context.metadata = store

    @property
    def artifacts(self) -> ArtifactStore:
        """The artifact store."""
        return self._context.artifacts

    @artifacts.setter
    def artifacts(self, store: ArtifactStore) -> None:
        self._context.artifacts = store

    @property
    def gates(self) -> PromotionGates | None:
        """The gates promotions to guarded stages pass (None: none run)."""
        return self._context.gates

    @gates.setter
    def gates(self, gates: PromotionGates | None) -> None:
        self._context.gates = gates

    @property
    def signing(self) -> SigningPolicy | None:
        """The ``[signing]`` policy moves to stages and aliases check (None: none)."""
        return self._context.signing

    @signing.setter
    def signing(self, policy: SigningPolicy | None) -> None:
        self._context.signing = policy

    @property
    def catalog(self) -> FlavorCatalog:
        """The flavors that save and load models."""
        return self._context.catalog

    @property
    def context(self) -> RegistryContext:
        """What every part shares: set ``on_event`` (the webhooks; ``close`` closes it too,
        when it has a ``close``) and ``gates`` here."""
        return self._context

    @property
    def actor(self) -> str:
        """The name recorded in the audit trail and as each version's creator."""
        return self._context.actor

    def acting_as(self, actor: str) -> RegistryService:
        """This registry over the same stores, gates and listener, recording ``actor``
        (a server acting for an API key: ``key:<name>``). Close only the original: the
        stores are shared."""
        twin = copy.copy(self)
        twin._context = dataclasses.replace(self._context, actor=actor)
        twin._versions = VersionWrites(twin._context)
        twin._lifecycle = Lifecycle(twin._context)
        twin._deployments = Deployments(twin._context)
        return twin

    # ---------------------------------------------------------------------- reading

    def get_model(self, name: str) -> RegisteredModel:
        """The registered model called ``name``."""
        with self.metadata.reader() as tx:
            return require_model(tx, name)

    def list_models(self) -> list[RegisteredModel]:
        """Every registered model, by name."""
        with self.metadata.reader() as tx:
            return tx.list_models()

    def list_versions(self, name: str) -> list[ModelVersion]:
        """Every version of a model, newest first."""
        with self.metadata.reader() as tx:
            require_model(tx, name)
            return tx.list_versions(name)

    def get_version(self, name: str, version: int) -> ModelVersion:
        """One version of a model."""
        with self.metadata.reader() as tx:
            return require_version(tx, name, version)

    def resolve(self, ref: str | ModelRef) -> ModelVersion:
        """The version a reference such as ``churn@production`` or ``churn/3`` names."""
        parsed = parse_ref(ref) if isinstance(ref, str) else ref
        with self.metadata.reader() as tx:
            return resolve_ref(tx, parsed)

    def version_number(self, ref: str | ModelRef) -> int:
        """The number of the version ``ref`` names now: ``resolve`` for watchers that poll
        an alias (one query instead of loading the whole version)."""
        parsed = parse_ref(ref) if isinstance(ref, str) else ref
        with self.metadata.reader() as tx:
            if parsed.alias is not None:
                number = tx.get_alias(parsed.name, parsed.alias)
                if number is not None:
                    return number
            return resolve_ref(tx, parsed).version  # the latest, or the precise error

    def search_versions(
        self, filter_text: str | None = None, *, max_results: int = 1000
    ) -> list[ModelVersion]:
        """Versions matching a filter such as ``name = 'churn' AND metrics.auc > 0.9``."""
        if max_results < 1:
            raise InvalidArgumentError("max_results must be at least 1", field="max_results")
        query = parse_filter(filter_text)
        with self.metadata.reader() as tx:
            return tx.search_versions(query, max_results=max_results)

    def get_audit_log(
        self, model: str | None = None, *, since: datetime | None = None, limit: int = 100
    ) -> list[AuditEntry]:
        """The audit trail, newest first."""
        if limit < 1:
            raise InvalidArgumentError("limit must be at least 1", field="limit")
        with self.metadata.reader() as tx:
            return tx.list_audit(model=model, since=since, limit=limit)

    def get_manifest(self, ref: str | ModelRef | ModelVersion) -> Manifest:
        """The ``modelport.yaml`` of the version ``ref`` names (or of ``ref`` itself),
        checked against the digest recorded at registration: what it recorded beyond
        the registry's rows, such as why it was not accelerated. A remote artifact store
        downloads the package into its cache."""
        version = ref if isinstance(ref, ModelVersion) else self.resolve(ref)
        directory = self.artifacts.local_path(version.artifact_key)
        return read_pinned_manifest(directory, version.manifest_digest)

    def load(
        self,
        ref: str | ModelRef,
        *,
        trust: Iterable[str] = (),
        version_check: VersionCheck | None = None,
        accelerate: bool = False,
    ) -> LoadedModel:
        """Resolve ``ref``, fetch its package, verify every file (and the manifest against
        the digest recorded at registration), and load it (its verified ONNX graph when
        ``accelerate`` and the package has one)."""
        version = self.resolve(ref)
        directory = self.artifacts.local_path(version.artifact_key)
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

    def reference_stats(
        self, ref: str | ModelRef | ModelVersion
    ) -> tuple[dict[str, Any] | None, str]:
        """The version's reference statistics, and where they came from: ``recomputed``
        (stored beside the package by ``recompute_reference_stats``, preferred) or
        ``package`` (its own ``reference_stats.json``); None when it has none. Both are
        checked against their recorded sha256 (``registry.reference_stats``)."""
        version = ref if isinstance(ref, ModelVersion) else self.resolve(ref)
        return reference_stats.read(self.artifacts, version, self.get_manifest(version))

    def recomputed_stats_file(self, version: ModelVersion) -> Path | None:
        """The local file of the version's recomputed statistics (checked against its
        recorded sha256), or None when it has none (servers pin it at start-up)."""
        return reference_stats.recomputed_file(self.artifacts, version)

    def recompute_reference_stats(self, ref: str | ModelRef, sample: Any) -> ModelVersion:
        """Compute reference statistics (the current version) from ``sample`` and the
        version's predictions on it, and store them beside its package without touching
        the package; readers prefer them from now on."""
        from modelport.package.stats import model_statistics  # pandas: only here

        version = self.resolve(ref)
        with self.load(ModelRef(version.name, version=version.version)) as loaded:
            stats = model_statistics(loaded, sample)
        previous = reference_stats.stats_key(version)
        tag = reference_stats.upload(self.artifacts, version, stats)
        updated = self.set_version_tags(
            version.name, version.version, {reference_stats.STATS_TAG: tag}
        )
        if previous is not None and previous != tag.partition(" ")[0]:
            self._versions.delete_artifacts(previous)
        return updated

    # ------------------------------------------------ signatures (registry.signatures)

    def sign_version(
        self, ref: str | ModelRef, private_key: Path, *, password: str | None = None
    ) -> ModelVersion:
        """Sign the package of the version ``ref`` names with an EC private key (PEM) in
        the OpenSSF Model Signing format; store the signature beside it (audited)."""
        return VersionSigning(self._context).sign(self.resolve(ref), private_key, password=password)

    def attach_signature(
        self, ref: str | ModelRef, signature: bytes, public_key: bytes
    ) -> ModelVersion:
        """Store a signature of the version's package made elsewhere (``RegistryClient.
        sign_version`` signs its downloaded copy), once it holds for the stored files with
        ``public_key`` (PEM); ``SignatureVerificationError`` otherwise (audited as a signing)."""
        return VersionSigning(self._context).attach(self.resolve(ref), signature, public_key)

    def verify_version(
        self, ref: str | ModelRef, public_keys: Sequence[Path] | None = None
    ) -> Verified:
        """Verify the version's package against its signature and ``public_keys`` (default
        the trusted keys of ``[signing]``); ``SignatureVerificationError`` naming what
        failed. The outcome is audited."""
        keys = public_keys if public_keys is not None else self._trusted_keys()
        return VersionSigning(self._context).verify(self.resolve(ref), keys)

    def check_signature(self, version: ModelVersion, public_keys: Sequence[Path]) -> Verified:
        """Verify the version's package against its signature and ``public_keys`` with
        nothing recorded (what serving and batch check before they load a version)."""
        return signatures.verify_version(self.artifacts, version, public_keys)

    def signature_file(self, version: ModelVersion) -> Path | None:
        """The local copy of the version's signature (checked), or None when unsigned."""
        return signatures.signature_file(self.artifacts, version)

    def _trusted_keys(self) -> tuple[Path, ...]:
        policy = self._context.signing
        return policy.trusted_keys if policy is not None else ()

    # ---------------------------------------------------- versions (registry.versions)

    def register(
        self, source: Any, name: str, options: PackageOptions | None = None
    ) -> ModelVersion:
        """Package ``source`` (a live model, a model file or a package directory) and
        register it as the next version of ``name``, creating the model if needed.

        All or nothing: if packaging, the upload or the metadata write fails, no version
        row and no artifact files remain.
        """
        return self._versions.register(source, name, options)

    def update_model(self, name: str, *, description: str) -> RegisteredModel:
        """Change a model's description."""
        return self._versions.update_model(name, description=description)

    def set_model_tags(self, name: str, tags: Mapping[str, str]) -> RegisteredModel:
        """Set tags on a model (others stay)."""
        return self._versions.set_model_tags(name, tags)

    def set_version_tags(self, name: str, version: int, tags: Mapping[str, str]) -> ModelVersion:
        """Set tags on a version (others stay)."""
        return self._versions.set_version_tags(name, version, tags)

    def delete_version_tags(self, name: str, version: int, keys: Iterable[str]) -> ModelVersion:
        """Remove tags from a version (absent ones are ignored)."""
        return self._versions.delete_version_tags(name, version, list(keys))

    def delete_version(self, name: str, version: int) -> None:
        """Delete a version and its files; refused while an alias or stage points at it."""
        self._versions.delete_version(name, version)

    def delete_model(self, name: str) -> None:
        """Delete a model, its versions and their files; refused while any version has an
        alias or stage."""
        self._versions.delete_model(name)

    # -------------------------------------- aliases, stages, archive (registry.lifecycle)

    def set_alias(
        self,
        name: str,
        alias: str,
        version: int,
        *,
        force: bool = False,
        skip_gates: str | None = None,
    ) -> ModelVersion:
        """Point an alias (or stage) at a version, moving it if it pointed elsewhere.

        A stage goes through ``promote`` (with ``force`` and ``skip_gates``). Another
        alias takes a version without a signature with a ``MissingSignatureWarning``,
        unless ``force``; it runs the gates too when ``[gates] targets`` names it.
        """
        return self._lifecycle.move(
            name, alias, version, force=force, skip_gates=skip_gates
        ).version

    def delete_alias(self, name: str, alias: str) -> None:
        """Remove an alias (or stage); ``AliasNotFoundError`` when it points nowhere."""
        self._lifecycle.delete_alias(name, alias)

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
        """Move a stage to a version in one transaction; the version as it is now.

        ``staging``/``production``: the version becomes active if it was archived; with
        ``archive_previous`` the version that held the stage is archived. ``archived``:
        the same as ``archive_version``.

        ``production`` refuses a version without a signature (``MissingSignatureError``)
        unless ``force``, and the audit entry then records ``"forced": ["signature"]``;
        ``staging`` takes it with a ``MissingSignatureWarning``.

        A stage the gates guard (``production`` by default, when the registry has gates)
        first runs them: ``GateFailedError`` with every gate's numbers when one fails or
        cannot be evaluated. ``skip_gates`` (the reason) skips them; the audit entry
        records it.
        """
        stage = parse_stage(stage)
        move = self.move(
            name,
            stage,
            version,
            archive_previous=archive_previous,
            force=force,
            skip_gates=skip_gates,
        )
        return move.version

    def archive_version(self, name: str, version: int) -> ModelVersion:
        """Archive a version: ``archived`` is its status (any number of versions may have
        it); it stays loadable by number but leaves every alias. Refused while
        ``staging`` or ``production`` points at it."""
        return self.move(name, Stage.ARCHIVED, version).version

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
        """Point an alias or stage at a version, as ``set_alias``, ``promote`` and (for
        ``archived``) ``archive_version`` do, and say what that did: the version it
        pointed at before, whether the version came back from the archive, the versions
        archived and the aliases each of them lost (``AliasMove``).

        ``archive_previous`` applies to ``staging`` and ``production`` only; the gates
        run (or are skipped with ``skip_gates``) as ``promote`` says.
        """
        return self._lifecycle.move(
            name,
            alias,
            version,
            archive_previous=archive_previous,
            force=force,
            skip_gates=skip_gates,
        )

    # ------------------------------------------------ deployments (registry.deployments)

    def find_deployment(self, name: str) -> Deployment | None:
        """The deployment called ``name``, or None (servers poll this to reconcile)."""
        return self._deployments.find(name)

    def get_deployment(self, name: str) -> Deployment:
        """The deployment called ``name``; ``DeploymentNotFoundError`` when there is none."""
        return self._deployments.get(name)

    def list_deployments(self) -> list[Deployment]:
        """Every deployment, by name."""
        return self._deployments.list_all()

    def deployment_history(self, name: str, limit: int = 50) -> list[DeploymentEvent]:
        """A deployment's changes, newest first (kept after it is deleted)."""
        return self._deployments.history(name, limit)

    def create_deployment(
        self, name: str, version: int, *, model: str | None = None, reason: str | None = None
    ) -> Deployment:
        """A new deployment ``name`` answered by ``model/version`` (model defaults to
        ``name``); ``StaleDeploymentError`` when it exists."""
        return self._deployments.create(name, version, model=model, reason=reason)

    def deploy_canary(
        self,
        name: str,
        version: int,
        weight: float,
        *,
        model: str | None = None,
        reason: str | None = None,
    ) -> Deployment:
        """Put ``version`` on ``weight`` percent of the traffic as the canary (replacing
        any canary or challengers); the champion keeps the rest."""
        return self._deployments.canary(name, version, weight, model=model, reason=reason)

    def deploy_ab(
        self,
        name: str,
        arms: Sequence[tuple[int, float]],
        *,
        sticky: str | None = None,
        model: str | None = None,
        reason: str | None = None,
    ) -> Deployment:
        """Split the traffic between ``(version, weight)`` arms, weights adding up to 100;
        ``sticky`` (``header:X-User-ID``, ``field:customer_id``) keeps a caller on one arm."""
        return self._deployments.ab(name, arms, sticky=sticky, model=model, reason=reason)

    def deploy_shadow(
        self,
        name: str,
        version: int,
        sample: float,
        *,
        model: str | None = None,
        reason: str | None = None,
    ) -> Deployment:
        """Copy ``sample`` (0 < sample <= 1) of the requests to ``version``; its answers
        are logged, never returned."""
        return self._deployments.shadow(name, version, sample, model=model, reason=reason)

    def set_arm_weight(
        self, name: str, arm: str, weight: float, *, reason: str | None = None
    ) -> Deployment:
        """Set a live arm's weight; the champion (or the one other arm) takes the rest."""
        return self._deployments.set_weight(name, arm, weight, reason=reason)

    def remove_arm(self, name: str, arm: str, *, reason: str | None = None) -> Deployment:
        """Remove a candidate or shadow arm; its weight goes back to the champion."""
        return self._deployments.remove_arm(name, arm, reason=reason)

    def promote_deployment(
        self,
        name: str,
        arm: str | None = None,
        *,
        skip_gates: str | None = None,
        reason: str | None = None,
    ) -> Deployment:
        """The candidate (the only one, or ``arm``) becomes the champion on 100%, once the
        gates guarding production pass for it (``GateFailedError`` otherwise);
        ``skip_gates`` skips them, its reason recorded in the audit trail."""
        return self._deployments.promote(name, arm, skip_gates=skip_gates, reason=reason)

    def rollback_deployment(self, name: str, *, reason: str | None = None) -> Deployment:
        """Back to the last good champion: drop the candidates, or undo the last promotion."""
        return self._deployments.rollback(name, reason=reason)

    def delete_deployment(self, name: str, *, reason: str | None = None) -> None:
        """Delete a deployment (and its rollout state); its history stays."""
        self._deployments.delete(name, reason=reason)

    def change_deployment(
        self,
        name: str,
        change: Callable[[Deployment], Deployment],
        *,
        action: str,
        reason: str | None = None,
        details: Mapping[str, Any] | None = None,
        expected_revision: int | None = None,
    ) -> Deployment:
        """Apply a pure ``change`` to the stored deployment in one audited transaction
        (``action`` names it in the audit trail and the history, ``details`` holds the
        numbers behind it); ``StaleDeploymentError`` when ``expected_revision`` is given
        and the deployment moved past it."""
        return self._deployments.change(
            name,
            change,
            action=action,
            reason=reason,
            details=details,
            expected_revision=expected_revision,
        )

    # ---------------------------------------------------------------------- closing

    def close(self) -> None:
        """Deliver the events still queued (a bounded wait), then release the stores."""
        _close(self._context.on_event)
        self.metadata.close()
        _close(self.artifacts)

    def __enter__(self) -> RegistryService:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


def _close(resource: object) -> None:
    """Call ``resource.close()`` when it has one (a listener or a store may not)."""
    close = getattr(resource, "close", None)
    if callable(close):
        close()
