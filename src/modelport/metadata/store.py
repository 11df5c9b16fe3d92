"""The MetadataStore contract: registry metadata behind one small protocol.

Every read and write happens inside a session; a write session is one transaction
that commits when its ``with`` block ends normally and rolls back when it raises,
so a half-made change is never visible. The business rules (who may delete what,
what the audit trail says) live in ``RegistryService``; a store only stores.

Implementations: ``MemoryMetadataStore`` (in process, the reference the contract
tests hold every other store to) and ``SqlMetadataStore`` (SQLite, PostgreSQL).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from contextlib import AbstractContextManager
from datetime import datetime
from typing import Protocol

from modelport.domain.alerts import (
    AlertDelivery,
    AlertEvent,
    AlertState,
    NewAlertDelivery,
    NewAlertEvent,
)
from modelport.domain.deployments import Deployment, DeploymentEvent, NewDeploymentEvent
from modelport.domain.entities import (
    AuditEntry,
    ModelVersion,
    NewAuditEntry,
    NewVersion,
    RegisteredModel,
    VersionStatus,
)
from modelport.domain.rollouts import RolloutRecord
from modelport.domain.search import VersionFilter
from modelport.errors import DeploymentNotFoundError, StaleDeploymentError
from modelport.metadata.keys import KeyStore
from modelport.metadata.sessions import SessionStore


class MetadataSession(KeyStore, SessionStore, Protocol):
    """Operations available inside one session (transaction).

    Methods that take a model ``name`` raise ``ModelNotFoundError`` when there is no
    such model, and those that take a ``version`` raise ``VersionNotFoundError`` when
    the model has no such version, unless they say they return None.
    """

    # -- registered models
    def get_model(self, name: str) -> RegisteredModel | None:
        """The model, or None."""
        ...

    def list_models(self) -> list[RegisteredModel]:
        """Every model, sorted by name."""
        ...

    def ensure_model(
        self, name: str, *, description: str, tags: Mapping[str, str], now: datetime
    ) -> tuple[RegisteredModel, bool]:
        """Get the model, creating it if absent; True when this call created it.

        Safe when two sessions race to create the same name: both succeed and one creates.
        """
        ...

    def update_model(self, name: str, *, description: str, now: datetime) -> RegisteredModel:
        """Change a model's description."""
        ...

    def set_model_tag(self, name: str, key: str, value: str, *, now: datetime) -> None:
        """Set (or replace) one tag on a model."""
        ...

    def delete_model_tag(self, name: str, key: str, *, now: datetime) -> None:
        """Remove one tag from a model; no error when absent."""
        ...

    def delete_model(self, name: str) -> None:
        """Delete a model with all its versions, aliases and tags (not its audit entries)."""
        ...

    # -- versions
    def allocate_version(self, name: str, *, now: datetime) -> int:
        """Reserve the model's next version number (1, 2, 3, ...; never reused).

        Holds the model's row lock until the session ends, so concurrent registrations
        get distinct numbers.
        """
        ...

    def create_version(self, version: int, new: NewVersion) -> ModelVersion:
        """Store a version under a number from ``allocate_version``."""
        ...

    def get_version(self, name: str, version: int) -> ModelVersion | None:
        """The version, or None (the model must exist)."""
        ...

    def list_versions(self, name: str) -> list[ModelVersion]:
        """Every version of the model, newest first."""
        ...

    def search_versions(self, query: VersionFilter, *, max_results: int) -> list[ModelVersion]:
        """Versions of any model matching every condition, by name then newest first."""
        ...

    def set_version_status(self, name: str, version: int, status: VersionStatus) -> None:
        """Mark a version active or archived."""
        ...

    def set_version_tag(self, name: str, version: int, key: str, value: str) -> None:
        """Set (or replace) one tag on a version."""
        ...

    def delete_version_tag(self, name: str, version: int, key: str) -> None:
        """Remove one tag from a version; no error when absent."""
        ...

    def delete_version(self, name: str, version: int) -> None:
        """Delete a version with its tags, metrics and params (and any alias rows)."""
        ...

    # -- aliases (stages are aliases with reserved names)
    def get_alias(self, name: str, alias: str) -> int | None:
        """The version the alias points at, or None."""
        ...

    def set_alias(self, name: str, alias: str, version: int) -> None:
        """Point an alias at a version, replacing where it pointed before."""
        ...

    def delete_alias(self, name: str, alias: str) -> None:
        """Remove an alias; no error when absent."""
        ...

    # -- audit trail
    def add_audit(self, entry: NewAuditEntry) -> None:
        """Append one entry to the audit trail."""
        ...

    def list_audit(
        self, *, model: str | None = None, since: datetime | None = None, limit: int = 100
    ) -> list[AuditEntry]:
        """Audit entries, newest first; optionally for one model or since a time.

        Entries of deleted models stay listable by name.
        """
        ...

    # -- alerts (the states, transitions and deliveries of monitoring's alert rules)
    def get_alert_state(self, rule: str) -> AlertState | None:
        """The rule's stored state, or None."""
        ...

    def list_alert_states(self) -> list[AlertState]:
        """Every stored rule state, sorted by rule name."""
        ...

    def save_alert_state(self, state: AlertState, *, expected_revision: int) -> AlertState | None:
        """Store ``state`` if the stored revision is still ``expected_revision`` (0: no
        state stored yet); the stored state (its revision one higher), or None when
        another writer saved first and nothing was written.

        Evaluators running side by side use this to act on each transition once.
        """
        ...

    def add_alert_event(self, event: NewAlertEvent) -> AlertEvent:
        """Append one transition to the alert history."""
        ...

    def list_alert_events(
        self, *, rule: str | None = None, model: str | None = None, limit: int = 100
    ) -> list[AlertEvent]:
        """Transitions, newest first; optionally of one rule or one model."""
        ...

    def add_alert_delivery(self, delivery: NewAlertDelivery) -> AlertDelivery:
        """Append one delivery attempt to the delivery log."""
        ...

    def list_alert_deliveries(
        self, *, rule: str | None = None, event_id: int | None = None, limit: int = 100
    ) -> list[AlertDelivery]:
        """Delivery attempts, newest first; optionally of one rule or one event."""
        ...

    # -- deployments (named endpoints and their arms) and their history
    def get_deployment(self, name: str) -> Deployment | None:
        """The stored deployment, or None."""
        ...

    def list_deployments(self) -> list[Deployment]:
        """Every deployment, sorted by name."""
        ...

    def save_deployment(
        self, deployment: Deployment, *, expected_revision: int, now: datetime, actor: str
    ) -> Deployment:
        """Store ``deployment`` at revision ``expected_revision + 1`` (0: create it) and
        return it as stored (``updated_at`` ``now``, ``updated_by`` ``actor``).

        Raises ``StaleDeploymentError`` when the stored revision is not
        ``expected_revision`` (creating a name that exists included): of concurrent
        writers that read the same revision, exactly one wins.
        """
        ...

    def delete_deployment(self, name: str) -> None:
        """Delete a deployment (``DeploymentNotFoundError`` when absent); its history stays."""
        ...

    def add_deployment_event(self, event: NewDeploymentEvent) -> DeploymentEvent:
        """Append one change to a deployment's history."""
        ...

    def list_deployment_events(self, name: str, *, limit: int = 100) -> list[DeploymentEvent]:
        """A deployment's changes, newest first (also after it was deleted)."""
        ...

    # -- rollouts (the controller's state) and leases (who may act)
    def get_rollout(self, deployment: str) -> RolloutRecord | None:
        """The deployment's stored rollout state, or None."""
        ...

    def save_rollout(
        self, record: RolloutRecord, *, expected_revision: int
    ) -> RolloutRecord | None:
        """Store ``record`` if the stored revision is still ``expected_revision`` (0: none
        stored yet); the stored record (its revision one higher), or None when another
        writer saved first and nothing was written."""
        ...

    def delete_rollout(self, deployment: str) -> None:
        """Remove the deployment's rollout state; no error when absent."""
        ...

    def acquire_lease(self, name: str, owner: str, *, now: datetime, ttl_s: float) -> bool:
        """Take or extend the lease ``name`` until ``now + ttl_s``: True when it was free,
        expired or already ``owner``'s; False (and nothing changed) while another owner
        holds it."""
        ...

    def release_lease(self, name: str, owner: str) -> None:
        """Give the lease up if ``owner`` holds it; no error otherwise."""
        ...


class MetadataStore(Protocol):
    """A metadata back end."""

    @property
    def url(self) -> str:
        """Where the store lives, with any password hidden."""
        ...

    def transaction(self) -> AbstractContextManager[MetadataSession]:
        """A read-write session: one transaction, committed on normal exit."""
        ...

    def reader(self) -> AbstractContextManager[MetadataSession]:
        """A session for reads only (may be cheaper than ``transaction``)."""
        ...

    def close(self) -> None:
        """Release connections."""
        ...


def aliases_by_version(aliases: Mapping[str, int]) -> dict[int, tuple[str, ...]]:
    """Invert alias -> version into version -> sorted aliases."""
    inverted: dict[int, list[str]] = {}
    for alias, version in aliases.items():
        inverted.setdefault(version, []).append(alias)
    return {version: tuple(sorted(names)) for version, names in inverted.items()}


def sort_versions(versions: Sequence[ModelVersion]) -> list[ModelVersion]:
    """Search order: by model name, then newest version first."""
    return sorted(versions, key=lambda v: (v.name, -v.version))


def deployment_not_found(name: str) -> DeploymentNotFoundError:
    """The error for a deployment that does not exist."""
    return DeploymentNotFoundError(f"deployment {name!r} does not exist", deployment=name)


def stale_deployment(name: str, expected: int, found: int) -> StaleDeploymentError:
    """The error for a write based on a revision that is no longer the stored one."""
    if expected == 0:
        message = (
            f"deployment {name!r} already exists (revision {found}): change it, or delete it first"
        )
    elif found == 0:
        message = f"deployment {name!r} was deleted since revision {expected} was read"
    else:
        message = (
            f"deployment {name!r} changed since it was read: it is at revision {found}, "
            f"not {expected}; read it again and retry"
        )
    return StaleDeploymentError(message, deployment=name, expected=expected, found=found)
