"""The controller's reads and writes in the registry: its state, its lease, its audit.

The state of a deployment's rollout is one JSON document (``RolloutState.to_dict()``)
stored with a revision; ``save`` is a compare-and-set on it, so of two writers that
read the same revision only one stores (the other gets None and reads again). The
lease (``rollout:<deployment>``) keeps a second controller from even trying while the
first renews it. Decisions that change no arm (a failed check counted, a pause) are
audited here, with a deployment event for the history, like the changes that do.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from modelport.domain.deployments import Deployment, NewDeploymentEvent
from modelport.domain.entities import NewAuditEntry
from modelport.domain.rollout_plan import RolloutState
from modelport.domain.rollouts import RolloutRecord

if TYPE_CHECKING:
    from modelport.registry.service import RegistryService

LEASE_PREFIX = "rollout:"


def lease_name(deployment: str) -> str:
    """The lease a controller holds while it acts on ``deployment``'s rollout."""
    return f"{LEASE_PREFIX}{deployment}"


class RolloutRecords:
    """Rollout state, leases and audit entries in the registry's metadata store."""

    def __init__(self, registry: RegistryService, clock: Callable[[], datetime]) -> None:
        self._registry = registry
        self._clock = clock

    def load(self, deployment: str) -> tuple[RolloutState, int] | None:
        """The stored state and its revision, or None when the deployment has none."""
        with self._registry.metadata.reader() as tx:
            record = tx.get_rollout(deployment)
        if record is None:
            return None
        return RolloutState.from_dict(record.state), record.revision

    def save(self, state: RolloutState, *, expected_revision: int) -> int | None:
        """Store ``state`` if the stored revision is still ``expected_revision`` (0: none
        stored); the new revision, or None when another writer stored first."""
        record = RolloutRecord(
            deployment=state.deployment,
            state=state.to_dict(),
            revision=expected_revision + 1,
            updated_at=self._clock(),
        )
        with self._registry.metadata.transaction() as tx:
            stored = tx.save_rollout(record, expected_revision=expected_revision)
        return stored.revision if stored is not None else None

    def names(self) -> list[str]:
        """The deployments that have a rollout state, by name."""
        with self._registry.metadata.reader() as tx:
            return [d.name for d in tx.list_deployments() if tx.get_rollout(d.name) is not None]

    def pending(self) -> list[str]:
        """The deployments whose rollout needs a controller: running or paused (a paused
        one is checked for a canary removed by hand), or with a decision not applied."""
        found = []
        with self._registry.metadata.reader() as tx:
            for deployment in tx.list_deployments():
                record = tx.get_rollout(deployment.name)
                if record is None:
                    continue
                state = RolloutState.from_dict(record.state)
                if state.status.active or not state.applied:
                    found.append(deployment.name)
        return found

    def acquire(self, deployment: str, owner: str, ttl: timedelta) -> bool:
        """Take or renew the lease on ``deployment``'s rollout for ``ttl``."""
        with self._registry.metadata.transaction() as tx:
            return tx.acquire_lease(
                lease_name(deployment), owner, now=self._clock(), ttl_s=ttl.total_seconds()
            )

    def release(self, deployment: str, owner: str) -> None:
        """Give up the lease, if ``owner`` holds it."""
        with self._registry.metadata.transaction() as tx:
            tx.release_lease(lease_name(deployment), owner)

    def audit(
        self,
        deployment: Deployment,
        action: str,
        *,
        reason: str | None,
        details: Mapping[str, Any],
    ) -> None:
        """Record a decision that changed no arm: an audit entry and a history event."""
        now, actor = self._clock(), self._registry.actor
        spec = deployment.spec_dict()
        champion = deployment.champion
        with self._registry.metadata.transaction() as tx:
            tx.add_audit(
                NewAuditEntry(
                    actor=actor,
                    action=action,
                    model=champion.model,
                    timestamp=now,
                    version=champion.version,
                    target=f"deployment:{deployment.name}",
                    before=spec,
                    after={"spec": spec, "reason": reason, "details": dict(details)},
                )
            )
            tx.add_deployment_event(
                NewDeploymentEvent(
                    deployment=deployment.name,
                    revision=deployment.revision,
                    action=action,
                    actor=actor,
                    reason=reason,
                    timestamp=now,
                    spec=spec,
                    details=dict(details),
                )
            )
