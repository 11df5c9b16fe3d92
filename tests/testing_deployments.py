"""Helpers for deployment tests: version rows to deploy, without packaging models."""

from __future__ import annotations

from datetime import UTC, datetime

from modelport.domain.entities import NewVersion
from modelport.registry.service import RegistryService


def add_versions(registry: RegistryService, name: str, count: int) -> None:
    """The next ``count`` version rows of ``name`` (created if absent): deployments only
    check that the versions exist and are active, so no package is written."""
    now = datetime.now(UTC)
    with registry.metadata.transaction() as tx:
        tx.ensure_model(name, description="", tags={}, now=now)
        for _ in range(count):
            number = tx.allocate_version(name, now=now)
            tx.create_version(
                number,
                NewVersion(
                    name=name,
                    flavor="sklearn",
                    artifact_key=f"{name}/{number}",
                    manifest_digest="sha256:" + "0" * 64,
                    created_by="alice",
                    created_at=now,
                ),
            )
