"""The deployment part of the in-memory metadata session: deployments, their history,
rollout states and leases (the reference for the SQL one)."""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta

from modelport.domain.deployments import Deployment, DeploymentEvent, NewDeploymentEvent
from modelport.domain.rollouts import RolloutRecord
from modelport.metadata.store import deployment_not_found, stale_deployment


@dataclass
class DeploymentRecords:
    """Every deployment by name, the history oldest first, rollouts and leases."""

    deployments: dict[str, Deployment] = field(default_factory=dict)
    events: list[DeploymentEvent] = field(default_factory=list)
    rollouts: dict[str, RolloutRecord] = field(default_factory=dict)
    leases: dict[str, tuple[str, datetime]] = field(default_factory=dict)  # owner, expiry


class MemoryDeploymentSession:
    """Deployment operations of ``MemorySession``; see ``MetadataSession`` for the contract."""

    _deployments: DeploymentRecords

    # -- deployments
    def get_deployment(self, name: str) -> Deployment | None:
        return self._deployments.deployments.get(name)

    def list_deployments(self) -> list[Deployment]:
        stored = self._deployments.deployments
        return [stored[name] for name in sorted(stored)]

    def save_deployment(
        self, deployment: Deployment, *, expected_revision: int, now: datetime, actor: str
    ) -> Deployment:
        current = self._deployments.deployments.get(deployment.name)
        found = current.revision if current is not None else 0
        if found != expected_revision:
            raise stale_deployment(deployment.name, expected_revision, found)
        stored = replace(
            deployment,
            revision=expected_revision + 1,
            created_at=current.created_at if current is not None else now,
            updated_at=now,
            updated_by=actor,
        )
        self._deployments.deployments[deployment.name] = stored
        return stored

    def delete_deployment(self, name: str) -> None:
        if self._deployments.deployments.pop(name, None) is None:
            raise deployment_not_found(name)

    def add_deployment_event(self, event: NewDeploymentEvent) -> DeploymentEvent:
        stored = DeploymentEvent(**vars(event), id=len(self._deployments.events) + 1)
        self._deployments.events.append(stored)
        return stored

    def list_deployment_events(self, name: str, *, limit: int = 100) -> list[DeploymentEvent]:
        found = [e for e in reversed(self._deployments.events) if e.deployment == name]
        return found[: max(limit, 0)]

    # -- rollouts and leases
    def get_rollout(self, deployment: str) -> RolloutRecord | None:
        return self._deployments.rollouts.get(deployment)

    def save_rollout(
        self, record: RolloutRecord, *, expected_revision: int
    ) -> RolloutRecord | None:
        current = self._deployments.rollouts.get(record.deployment)
        if (current.revision if current is not None else 0) != expected_revision:
            return None
        stored = replace(record, state=dict(record.state), revision=expected_revision + 1)
        self._deployments.rollouts[record.deployment] = stored
        return stored

    def delete_rollout(self, deployment: str) -> None:
        self._deployments.rollouts.pop(deployment, None)

    def acquire_lease(self, name: str, owner: str, *, now: datetime, ttl_s: float) -> bool:
        held = self._deployments.leases.get(name)
        if held is not None and held[0] != owner and held[1] > now:
            return False
        self._deployments.leases[name] = (owner, now + timedelta(seconds=ttl_s))
        return True

    def release_lease(self, name: str, owner: str) -> None:
        held = self._deployments.leases.get(name)
        if held is not None and held[0] == owner:
            del self._deployments.leases[name]
