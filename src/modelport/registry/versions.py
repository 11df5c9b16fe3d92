"""Writing versions and models: register, describe, tag, delete.

Every change is made in one metadata transaction together with its audit entry.
Registration is all or nothing: if packaging, the upload or the metadata write fails,
no version row and no artifact files remain.
"""

from __future__ import annotations

import logging
import tempfile
import uuid
from collections.abc import Mapping
from datetime import datetime
from pathlib import Path
from typing import Any

from modelport.domain.entities import ModelVersion, NewVersion, RegisteredModel
from modelport.domain.names import validate_model_name
from modelport.errors import AliasInUseError
from modelport.package.location import MANIFEST_FILE
from modelport.package.manifest import Manifest, manifest_digest
from modelport.package.options import PackageOptions, clean_tags
from modelport.registry import events
from modelport.registry.context import RegistryContext
from modelport.registry.lookups import require_model, require_version
from modelport.registry.reference_stats import stats_key
from modelport.registry.signatures import signature_key

logger = logging.getLogger(__name__)


class VersionWrites:
    """Registers, edits and deletes versions and models."""

    def __init__(self, context: RegistryContext) -> None:
        self._context = context

    # ------------------------------------------------------------------ registration

    def register(self, source: Any, name: str, options: PackageOptions | None) -> ModelVersion:
        """Package ``source`` and register it as the next version of ``name``."""
        from modelport.package.writer import build_package  # pandas, stats: only to register

        validate_model_name(name)
        options = options or PackageOptions()
        with tempfile.TemporaryDirectory(prefix="modelport-register-") as scratch:
            package_dir = Path(scratch) / "package"
            manifest = build_package(source, package_dir, self._context.catalog, options)
            return self._publish(name, package_dir, manifest)

    def _publish(self, name: str, package_dir: Path, manifest: Manifest) -> ModelVersion:
        key = f"{name}/{uuid.uuid4().hex}"
        digests = {path: entry.sha256 for path, entry in manifest.files.items()}
        digests[MANIFEST_FILE] = manifest_digest(package_dir)
        try:
            self._context.artifacts.put_directory(package_dir, key, digests)
            return self._record_version(name, key, manifest, digests[MANIFEST_FILE])
        except BaseException:
            # Stores clean up after their own failures; this also covers a failure after
            # the upload (the metadata write) and a store that broke its promise.
            self.delete_artifacts(key)
            raise

    def _record_version(
        self, name: str, key: str, manifest: Manifest, pinned_digest: str
    ) -> ModelVersion:
        context = self._context
        now = context.clock()
        new = _new_version(
            name, key, manifest, pinned_digest=pinned_digest, actor=context.actor, now=now
        )
        with context.metadata.transaction() as tx:
            _, created = tx.ensure_model(name, description="", tags={}, now=now)
            if created:
                context.audit(tx, "model.create", name, after={"name": name})
            number = tx.allocate_version(name, now=now)
            version = tx.create_version(number, new)
            after: dict[str, Any] = {"flavor": new.flavor, "manifest_sha256": new.manifest_digest}
            if manifest.trust.used:
                after["trusted"] = list(manifest.trust.used)
            context.audit(tx, "version.create", name, version=number, after=after)
        announced = [events.version_created(version, actor=context.actor)]
        if created:
            announced.insert(0, events.model_created(name, actor=context.actor))
        events.announce(context, announced)
        return version

    # ---------------------------------------------------------------------- editing

    def update_model(self, name: str, *, description: str) -> RegisteredModel:
        """Change a model's description."""
        context = self._context
        with context.metadata.transaction() as tx:
            before = require_model(tx, name)
            model = tx.update_model(name, description=description, now=context.clock())
            context.audit(
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
        context = self._context
        with context.metadata.transaction() as tx:
            before = dict(require_model(tx, name).tags)
            for key, value in cleaned.items():
                tx.set_model_tag(name, key, value, now=context.clock())
            context.audit(tx, "model.tags", name, before=before, after={**before, **cleaned})
            return require_model(tx, name)

    def set_version_tags(self, name: str, version: int, tags: Mapping[str, str]) -> ModelVersion:
        """Set tags on a version (others stay)."""
        cleaned = clean_tags(tags)
        context = self._context
        with context.metadata.transaction() as tx:
            before = dict(require_version(tx, name, version).tags)
            for key, value in cleaned.items():
                tx.set_version_tag(name, version, key, value)
            after = {**before, **cleaned}
            context.audit(tx, "version.tags", name, version=version, before=before, after=after)
            updated = require_version(tx, name, version)
        events.announce(context, events.tags_set(name, version, cleaned, actor=context.actor))
        return updated

    def delete_version_tags(self, name: str, version: int, keys: list[str]) -> ModelVersion:
        """Remove tags from a version (absent ones are ignored)."""
        context = self._context
        with context.metadata.transaction() as tx:
            before = dict(require_version(tx, name, version).tags)
            removed = [key for key in dict.fromkeys(keys) if key in before]
            for key in removed:
                tx.delete_version_tag(name, version, key)
            after = {key: value for key, value in before.items() if key not in removed}
            if removed:
                context.audit(tx, "version.tags", name, version=version, before=before, after=after)
            updated = require_version(tx, name, version)
        events.announce(context, events.tags_deleted(name, version, removed, actor=context.actor))
        return updated

    # --------------------------------------------------------------------- deleting

    def delete_version(self, name: str, version: int) -> None:
        """Delete a version and its files; refused while an alias or stage points at it."""
        context = self._context
        with context.metadata.transaction() as tx:
            target = require_version(tx, name, version)
            check_version_deletable(target)
            tx.delete_version(name, version)
            before = {"flavor": target.flavor, "status": target.status.value}
            context.audit(tx, "version.delete", name, version=version, before=before)
        self.delete_artifacts(target.artifact_key)
        for beside in (stats_key(target), signature_key(target)):  # kept beside the package
            if beside is not None:
                self.delete_artifacts(beside)

    def delete_model(self, name: str) -> None:
        """Delete a model, its versions and their files; refused while any version has an
        alias or stage."""
        context = self._context
        with context.metadata.transaction() as tx:
            check_model_deletable(require_model(tx, name))
            versions = tx.list_versions(name)
            keys = [v.artifact_key for v in versions]
            keys += [key for v in versions if (key := stats_key(v)) is not None]
            keys += [key for v in versions if (key := signature_key(v)) is not None]
            tx.delete_model(name)
            context.audit(tx, "model.delete", name, before={"versions": len(versions)})
        for key in keys:
            self.delete_artifacts(key)

    def delete_artifacts(self, key: str) -> None:
        """Delete the files under ``key``, logging (not raising) a failure."""
        # Called only when no version row points at ``key``: a failure here leaves
        # unreferenced files (logged), never a version without its files.
        try:
            self._context.artifacts.delete(key)
        except OSError as exc:
            logger.warning("could not delete artifacts %s: %s", key, exc)


def check_version_deletable(version: ModelVersion) -> None:
    """Refuse (``AliasInUseError``) to delete a version an alias or stage points at: a
    server following it would lose its model. Callers that ask for confirmation check
    this first, so that nobody confirms a deletion that is then refused."""
    if version.aliases:
        raise AliasInUseError(
            f"version {version.version} of {version.name!r} is still pointed at by "
            f"{', '.join(version.aliases)}; move or delete them first",
            model=version.name,
            version=version.version,
            aliases=version.aliases,
        )


def check_model_deletable(model: RegisteredModel) -> None:
    """Refuse (``AliasInUseError``) to delete a model while any alias or stage points at
    one of its versions."""
    if model.aliases:
        aliases = tuple(sorted(model.aliases))
        raise AliasInUseError(
            f"model {model.name!r} still has aliases ({', '.join(aliases)}); delete them first",
            model=model.name,
            version=model.aliases[aliases[0]],
            aliases=aliases,
        )


def _new_version(
    name: str, key: str, manifest: Manifest, *, pinned_digest: str, actor: str, now: datetime
) -> NewVersion:
    return NewVersion(
        name=name,
        flavor=manifest.flavor.name,
        artifact_key=key,
        manifest_digest=pinned_digest,
        created_by=actor,
        created_at=now,
        description=manifest.description,
        tags=manifest.lineage.tags,
        metrics=manifest.lineage.metrics,
        params=manifest.lineage.params,
        signature=manifest.signature_data,
    )
