"""What every part of the registry works on: the stores, the flavors, who acts and when.

``RegistryService`` owns one ``RegistryContext`` and hands it to its parts
(``VersionWrites``, ``Lifecycle``); replacing a store on the service replaces it for all
of them.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from modelport.artifacts.store import ArtifactStore
from modelport.domain.entities import NewAuditEntry
from modelport.flavors.catalog import FlavorCatalog
from modelport.metadata.store import MetadataSession, MetadataStore

Clock = Callable[[], datetime]


def utc_now() -> datetime:
    """The current time in UTC (the registry's default clock)."""
    return datetime.now(UTC)


@dataclass
class RegistryContext:
    """The stores and settings the registry's parts share."""

    metadata: MetadataStore
    artifacts: ArtifactStore
    catalog: FlavorCatalog
    actor: str
    clock: Clock = utc_now

    def audit(
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
        """Record a change in the audit trail, in the transaction that makes it."""
        tx.add_audit(
            NewAuditEntry(
                actor=self.actor,
                action=action,
                model=model,
                timestamp=self.clock(),
                version=version,
                target=target,
                before=before,
                after=after,
            )
        )
