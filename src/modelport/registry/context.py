"""What every part of the registry works on: the stores, the flavors, who acts and when.

``RegistryService`` owns one ``RegistryContext`` and hands it to its parts
(``VersionWrites``, ``Lifecycle``); replacing a store on the service replaces it for all
of them.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from modelport.artifacts.store import ArtifactStore
from modelport.domain.entities import ModelVersion, NewAuditEntry
from modelport.domain.gates import GateReport, PromotionGates
from modelport.errors import GateFailedError
from modelport.flavors.catalog import FlavorCatalog
from modelport.metadata.store import MetadataSession, MetadataStore
from modelport.package.signing import SigningPolicy

Clock = Callable[[], datetime]
EventListener = Callable[[str, Mapping[str, Any]], None]
"""Hears each registry event (``model_version.created``, ``deployment.changed``, ...) with
its JSON-ready payload, after the change committed (the webhooks)."""

logger = logging.getLogger("modelport.registry")


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
    on_event: EventListener | None = None
    gates: PromotionGates | None = None
    signing: SigningPolicy | None = None  # [signing]: stages that take signed versions only

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

    def emit(self, event: str, payload: Mapping[str, Any]) -> None:
        """Tell the listener of a change that has committed; a listener that fails is
        logged, never undoes or fails the change."""
        if self.on_event is None:
            return
        try:
            self.on_event(event, payload)
        except Exception:
            logger.exception("the listener of registry event %s failed", event)

    def check_gates(
        self, candidate: ModelVersion, target: str, *, skip_reason: str | None = None
    ) -> GateReport | None:
        """Run the gates that guard ``target`` for ``candidate``; raise ``GateFailedError``
        when one fails or cannot be evaluated. None when no gate guards the target or the
        caller skips them (``skip_reason``, which the caller records in its audit entry)."""
        if self.gates is None or skip_reason is not None or not self.gates.guards(target):
            return None
        report = self.gates.check(candidate, target)
        if not report.passed:
            raise GateFailedError(
                f"{candidate.name}/{candidate.version} is refused for {target}: "
                f"{report.describe()} (to promote anyway, skip the gates with a reason)",
                model=candidate.name,
                version=candidate.version,
                report=report.to_dict(),
            )
        return report
