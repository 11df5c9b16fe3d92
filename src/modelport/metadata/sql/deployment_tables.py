"""The deployment tables (schema revision 0004): deployments, their history, the
rollout controller's state and its leases.

They share ``tables.Base`` with the registry's tables; this module is imported by the
session (and by the migrations' environment), so ``Base.metadata`` always holds them.
Deployments name models as text inside their spec, not by foreign key: the registry
checks that arm versions exist when it writes, and the history outlives the models.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Index, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from modelport.domain.deployments import Deployment, DeploymentEvent
from modelport.domain.rollouts import RolloutRecord
from modelport.metadata.sql.tables import NAME_LENGTH, Base, JsonText, UtcDateTime

LEASE_LENGTH = 255


class DeploymentRow(Base):
    """A deployment: its spec (``Deployment.spec_dict()``) and the revision counter
    that writers compare-and-set."""

    __tablename__ = "deployments"

    name: Mapped[str] = mapped_column(String(NAME_LENGTH), primary_key=True)
    spec: Mapped[dict[str, Any]] = mapped_column(JsonText)
    revision: Mapped[int] = mapped_column(Integer)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime)
    updated_at: Mapped[datetime] = mapped_column(UtcDateTime)
    updated_by: Mapped[str] = mapped_column(Text)

    def to_domain(self) -> Deployment:
        """The domain deployment."""
        return Deployment.from_spec(
            self.name,
            self.spec,
            revision=self.revision,
            created_at=self.created_at,
            updated_at=self.updated_at,
            updated_by=self.updated_by,
        )


class DeploymentEventRow(Base):
    """One change of a deployment. ``deployment`` is a name, not a foreign key, so the
    history outlives the deployment."""

    __tablename__ = "deployment_events"
    __table_args__ = (Index("ix_deployment_events_deployment_id", "deployment", "id"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    deployment: Mapped[str] = mapped_column(String(NAME_LENGTH))
    revision: Mapped[int] = mapped_column(Integer)
    action: Mapped[str] = mapped_column(String(64))
    actor: Mapped[str] = mapped_column(Text)
    reason: Mapped[str | None] = mapped_column(Text)
    timestamp: Mapped[datetime] = mapped_column(UtcDateTime)
    spec: Mapped[dict[str, Any]] = mapped_column(JsonText)
    details: Mapped[dict[str, Any]] = mapped_column(JsonText)

    def to_domain(self) -> DeploymentEvent:
        """The domain event."""
        return DeploymentEvent(
            deployment=self.deployment,
            revision=self.revision,
            action=self.action,
            actor=self.actor,
            reason=self.reason,
            timestamp=self.timestamp,
            spec=self.spec,
            details=self.details,
            id=self.id,
        )


class RolloutRow(Base):
    """The rollout controller's state for one deployment, with its revision counter."""

    __tablename__ = "rollouts"

    deployment: Mapped[str] = mapped_column(String(NAME_LENGTH), primary_key=True)
    state: Mapped[dict[str, Any]] = mapped_column(JsonText)
    revision: Mapped[int] = mapped_column(Integer)
    updated_at: Mapped[datetime] = mapped_column(UtcDateTime)

    def to_domain(self) -> RolloutRecord:
        """The domain record."""
        return RolloutRecord(
            deployment=self.deployment,
            state=self.state,
            revision=self.revision,
            updated_at=self.updated_at,
        )


class LeaseRow(Base):
    """Who may act on something (``name``) until when: one controller at a time."""

    __tablename__ = "leases"

    name: Mapped[str] = mapped_column(String(LEASE_LENGTH), primary_key=True)
    owner: Mapped[str] = mapped_column(Text)
    expires_at: Mapped[datetime] = mapped_column(UtcDateTime)
