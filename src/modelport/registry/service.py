"""RegistryService: register, resolve, alias, promote, search, archive, delete, audit.

The rules of the registry live here; the stores only store. Every change is made in
one metadata transaction together with its audit entry, so the trail cannot miss a
change or record one that did not happen.
"""

from __future__ import annotations

import logging
import tempfile
import uuid
from collections.abc import Callable, Iterable, Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from modelport.artifacts.store import ArtifactStore
from modelport.config import VersionCheck
from modelport.domain.entities import (
    AuditEntry,
    ModelVersion,
    NewAuditEntry,
    NewVersion,
    RegisteredModel,
    VersionStatus,
)
from modelport.domain.names import Stage, is_stage, validate_alias, validate_model_name
from modelport.domain.refs import ModelRef, parse_ref
from modelport.domain.search import parse_filter
from modelport.errors import (
    AliasInUseError,
    AliasNotFoundError,
    InvalidArgumentError,
    ModelNotFoundError,
    VersionNotFoundError,
)
from modelport.flavors.catalog import FlavorCatalog
from modelport.metadata.store import MetadataSession, MetadataStore
from modelport.package.loaded import LoadedModel
from modelport.package.location import MANIFEST_FILE
from modelport.package.manifest import Manifest, manifest_digest
from modelport.package.options import PackageOptions, clean_tags
from modelport.package.reader import load_package

logger = logging.getLogger(__name__)

Clock = Callable[[], datetime]


def _utc_now() -> datetime:
    return datetime.now(UTC)


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
        clock: Clock = _utc_now,
    ) -> None:
        self.metadata = metadata
        self.artifacts = artifacts
        self.catalog = catalog
        self.actor = actor
        self.version_check = version_check
        self._clock = clock

    # ------------------------------------------------------------------ registration

    def register(
        self, source: Any, name: str, options: PackageOptions | None = None
    ) -> ModelVersion:
        """Package ``source`` (a live model, a model file or a package directory) and
        register it as the next version of ``name``, creating the model if needed.

        All or nothing: if packaging, the upload or the metadata write fails, no version
        row and no artifact files remain.
        """
        from modelport.package.writer import build_package  # pandas, stats: only to register

        validate_model_name(name)
        options = options or PackageOptions()
        with tempfile.TemporaryDirectory(prefix="modelport-register-") as scratch:
            package_dir = Path(scratch) / "package"
            manifest = build_package(source, package_dir, self.catalog, options)
            return self._publish(name, package_dir, manifest)

    def _publish(self, name: str, package_dir: Path, manifest: Manifest) -> ModelVersion:
        key = f"{name}/{uuid.uuid4().hex}"
        digests = {path: entry.sha256 for path, entry in manifest.files.items()}
        digests[MANIFEST_FILE] = manifest_digest(package_dir)
        try:
            self.artifacts.put_directory(package_dir, key, digests)
            return self._record_version(name, key, manifest, digests[MANIFEST_FILE])
        except BaseException:
            # Stores clean up after their own failures; this also covers a failure after
            # the upload (the metadata write) and a store that broke its promise.
            self._delete_artifacts(key)
            raise

    def _record_version(
        self, name: str, key: str, manifest: Manifest, pinned_digest: str
    ) -> ModelVersion:
        now = self._clock()
        flavor = manifest.flavor.name
        new = NewVersion(
            name=name,
            flavor=flavor,
            artifact_key=key,
            manifest_digest=pinned_digest,
            created_by=self.actor,
            created_at=now,
            description=manifest.description,
            tags=manifest.lineage.tags,
            metrics=manifest.lineage.metrics,
            params=manifest.lineage.params,
            signature=manifest.signature_data,
        )
        with self.metadata.transaction() as tx:
            _, created = tx.ensure_model(name, description="", tags={}, now=now)
            if created:
                self._audit(tx, "model.create", name, after={"name": name})
            number = tx.allocate_version(name, now=now)
            version = tx.create_version(number, new)
            after: dict[str, Any] = {"flavor": flavor, "manifest_sha256": new.manifest_digest}
            if manifest.trust.used:
                after["trusted"] = list(manifest.trust.used)
            self._audit(tx, "version.create", name, version=number, after=after)
        return version

    # ---------------------------------------------------------------------- reading

    def get_model(self, name: str) -> RegisteredModel:
        """The registered model called ``name``."""
        with self.metadata.reader() as tx:
            return _require_model(tx, name)

    def list_models(self) -> list[RegisteredModel]:
        """Every registered model, by name."""
        with self.metadata.reader() as tx:
            return tx.list_models()

    def list_versions(self, name: str) -> list[ModelVersion]:
        """Every version of a model, newest first."""
        with self.metadata.reader() as tx:
            _require_model(tx, name)
            return tx.list_versions(name)

    def get_version(self, name: str, version: int) -> ModelVersion:
        """One version of a model."""
        with self.metadata.reader() as tx:
            return _require_version(tx, name, version)

    def resolve(self, ref: str | ModelRef) -> ModelVersion:
        """The version a reference such as ``churn@production`` or ``churn/3`` names."""
        parsed = parse_ref(ref) if isinstance(ref, str) else ref
        with self.metadata.reader() as tx:
            return _resolve(tx, parsed)

    def version_number(self, ref: str | ModelRef) -> int:
        """The number of the version ``ref`` names now: ``resolve`` for watchers that poll
        an alias (one query instead of loading the whole version)."""
        parsed = parse_ref(ref) if isinstance(ref, str) else ref
        with self.metadata.reader() as tx:
            if parsed.alias is not None:
                number = tx.get_alias(parsed.name, parsed.alias)
                if number is not None:
                    return number
            return _resolve(tx, parsed).version  # the latest, or the precise error

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

    # ---------------------------------------------------------------------- loading

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

    # ---------------------------------------------------------------------- changes

    def update_model(self, name: str, *, description: str) -> RegisteredModel:
        """Change a model's description."""
        with self.metadata.transaction() as tx:
            before = _require_model(tx, name)
            model = tx.update_model(name, description=description, now=self._clock())
            self._audit(
                tx,
                "model.update",
                name,
                before={"description": before.description},
                after={"description": description},
            )
            return model

    def set_model_tags(self, name: str, tags: Mapping[str, str]) -> RegisteredModel:
        """Set tags on a model (others stay)."""
        cleaned = clean_tags(tags)
        with self.metadata.transaction() as tx:
            before = dict(_require_model(tx, name).tags)
            for key, value in cleaned.items():
                tx.set_model_tag(name, key, value, now=self._clock())
            self._audit(tx, "model.tags", name, before=before, after={**before, **cleaned})
            return _require_model(tx, name)

    def set_version_tags(self, name: str, version: int, tags: Mapping[str, str]) -> ModelVersion:
        """Set tags on a version (others stay)."""
        cleaned = clean_tags(tags)
        with self.metadata.transaction() as tx:
            before = dict(_require_version(tx, name, version).tags)
            for key, value in cleaned.items():
                tx.set_version_tag(name, version, key, value)
            self._audit(
                tx,
                "version.tags",
                name,
                version=version,
                before=before,
                after={**before, **cleaned},
            )
            return _require_version(tx, name, version)

    def set_alias(self, name: str, alias: str, version: int) -> ModelVersion:
        """Point an alias (or stage) at a version, moving it if it pointed elsewhere."""
        validate_alias(alias)
        if is_stage(alias):
            return self.promote(name, version, alias)
        with self.metadata.transaction() as tx:
            target = _require_version(tx, name, version)
            _refuse_archived(target, alias)
            before = tx.get_alias(name, alias)
            tx.set_alias(name, alias, version)
            self._audit(
                tx,
                "alias.set",
                name,
                version=version,
                target=alias,
                before={"version": before},
                after={"version": version},
            )
            return _require_version(tx, name, version)

    def delete_alias(self, name: str, alias: str) -> None:
        """Remove an alias (or stage); ``AliasNotFoundError`` when it points nowhere."""
        validate_alias(alias)
        with self.metadata.transaction() as tx:
            _require_model(tx, name)
            before = tx.get_alias(name, alias)
            if before is None:
                raise AliasNotFoundError(f"model {name!r} has no alias {alias!r}", model=name)
            tx.delete_alias(name, alias)
            self._audit(
                tx,
                "alias.delete",
                name,
                version=before,
                target=alias,
                before={"version": before},
                after=None,
            )

    def promote(
        self, name: str, version: int, stage: str | Stage, *, archive_previous: bool = False
    ) -> ModelVersion:
        """Move a stage to a version in one transaction.

        ``staging``/``production``: the version becomes active if it was archived; with
        ``archive_previous`` the version that held the stage is archived. ``archived``:
        the same as ``archive_version``.
        """
        stage = _parse_stage(stage)
        if stage is Stage.ARCHIVED:
            return self.archive_version(name, version)
        with self.metadata.transaction() as tx:
            target = _require_version(tx, name, version)
            previous = tx.get_alias(name, stage.value)
            if target.status is VersionStatus.ARCHIVED:
                tx.set_version_status(name, version, VersionStatus.ACTIVE)
            tx.set_alias(name, stage.value, version)
            if archive_previous and previous not in (None, version):
                assert previous is not None
                self._archive_in(tx, name, previous, reason=f"replaced in {stage.value}")
            self._audit(
                tx,
                "stage.promote",
                name,
                version=version,
                target=stage.value,
                before={"version": previous, "status": target.status.value},
                after={"version": version, "status": VersionStatus.ACTIVE.value},
            )
            return _require_version(tx, name, version)

    def archive_version(self, name: str, version: int) -> ModelVersion:
        """Archive a version: it stays loadable by number but leaves every alias, and the
        ``archived`` stage points at it. Refused while ``staging`` or ``production`` does."""
        with self.metadata.transaction() as tx:
            self._archive_in(tx, name, version, reason="archived")
            return _require_version(tx, name, version)

    def _archive_in(self, tx: MetadataSession, name: str, version: int, *, reason: str) -> None:
        target = _require_version(tx, name, version)
        live = [a for a in target.aliases if a in (Stage.STAGING.value, Stage.PRODUCTION.value)]
        if live and reason == "archived":
            raise AliasInUseError(
                f"version {version} of {name!r} is in {', '.join(live)}; promote another version "
                "there (or delete the stage) before archiving it",
                model=name,
                version=version,
                aliases=tuple(live),
            )
        for alias in target.aliases:
            tx.delete_alias(name, alias)
        tx.set_version_status(name, version, VersionStatus.ARCHIVED)
        tx.set_alias(name, Stage.ARCHIVED.value, version)
        self._audit(
            tx,
            "version.archive",
            name,
            version=version,
            before={"status": target.status.value, "aliases": list(target.aliases)},
            after={"status": VersionStatus.ARCHIVED.value, "reason": reason},
        )

    def delete_version(self, name: str, version: int) -> None:
        """Delete a version and its files; refused while an alias or stage points at it
        (except ``archived``, which moves away with it)."""
        with self.metadata.transaction() as tx:
            target = _require_version(tx, name, version)
            holding = tuple(a for a in target.aliases if a != Stage.ARCHIVED.value)
            if holding:
                raise AliasInUseError(
                    f"version {version} of {name!r} is still pointed at by "
                    f"{', '.join(holding)}; move or delete them first",
                    model=name,
                    version=version,
                    aliases=holding,
                )
            tx.delete_version(name, version)
            self._audit(
                tx,
                "version.delete",
                name,
                version=version,
                before={"flavor": target.flavor, "status": target.status.value},
                after=None,
            )
        self._delete_artifacts(target.artifact_key)

    def delete_model(self, name: str) -> None:
        """Delete a model, its versions and their files; refused while any version has an
        alias or stage other than ``archived``."""
        with self.metadata.transaction() as tx:
            model = _require_model(tx, name)
            holding = {a: v for a, v in model.aliases.items() if a != Stage.ARCHIVED.value}
            if holding:
                _, version = sorted(holding.items())[0]
                raise AliasInUseError(
                    f"model {name!r} still has aliases ({', '.join(sorted(holding))}); "
                    "delete them first",
                    model=name,
                    version=version,
                    aliases=tuple(sorted(holding)),
                )
            keys = [v.artifact_key for v in tx.list_versions(name)]
            tx.delete_model(name)
            self._audit(tx, "model.delete", name, before={"versions": len(keys)}, after=None)
        for key in keys:
            self._delete_artifacts(key)

    def _delete_artifacts(self, key: str) -> None:
        # Called only when no version row points at ``key``: a failure here leaves
        # unreferenced files (logged), never a version without its files.
        try:
            self.artifacts.delete(key)
        except OSError as exc:
            logger.warning("could not delete artifacts %s: %s", key, exc)

    def _audit(
        self,
        tx: MetadataSession,
        action: str,
        model: str,
        *,
        version: int | None = None,
        target: str | None = None,
        before: Mapping[str, Any] | None = None,
        after: Mapping[str, Any] | None = None,
    ) -> None:
        tx.add_audit(
            NewAuditEntry(
                actor=self.actor,
                action=action,
                model=model,
                timestamp=self._clock(),
                version=version,
                target=target,
                before=before,
                after=after,
            )
        )

    def close(self) -> None:
        """Release the stores."""
        self.metadata.close()
        close = getattr(self.artifacts, "close", None)
        if callable(close):
            close()

    def __enter__(self) -> RegistryService:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


def _require_model(tx: MetadataSession, name: str) -> RegisteredModel:
    validate_model_name(name)
    model = tx.get_model(name)
    if model is None:
        raise ModelNotFoundError(f"model {name!r} does not exist", model=name)
    return model


def _require_version(tx: MetadataSession, name: str, version: int) -> ModelVersion:
    _require_model(tx, name)
    if not isinstance(version, int) or isinstance(version, bool) or version < 1:
        raise InvalidArgumentError(
            f"version must be a positive integer, got {version!r}", field="version"
        )
    found = tx.get_version(name, version)
    if found is None:
        raise VersionNotFoundError(
            f"model {name!r} has no version {version}", model=name, version=version
        )
    return found


def _resolve(tx: MetadataSession, ref: ModelRef) -> ModelVersion:
    model = _require_model(tx, ref.name)
    if ref.version is not None:
        return _require_version(tx, ref.name, ref.version)
    if ref.alias is not None:
        number = model.aliases.get(ref.alias)
        if number is None:
            known = ", ".join(sorted(model.aliases)) or "none"
            raise AliasNotFoundError(
                f"model {ref.name!r} has no alias {ref.alias!r} (its aliases: {known})",
                model=ref.name,
            )
        return _require_version(tx, ref.name, number)
    if model.latest_version is None:
        raise VersionNotFoundError(f"model {ref.name!r} has no versions", model=ref.name)
    return _require_version(tx, ref.name, model.latest_version)


def _parse_stage(stage: str | Stage) -> Stage:
    try:
        return Stage(stage)
    except ValueError:
        stages = ", ".join(s.value for s in Stage)
        raise InvalidArgumentError(
            f"unknown stage {stage!r}; stages: {stages}", field="stage"
        ) from None


def _refuse_archived(version: ModelVersion, alias: str) -> None:
    if version.status is VersionStatus.ARCHIVED:
        raise InvalidArgumentError(
            f"version {version.version} of {version.name!r} is archived; promote it to staging or "
            f"production to bring it back before pointing {alias!r} at it",
            model=version.name,
            version=version.version,
        )
