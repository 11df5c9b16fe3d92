"""The metadata tables, as SQLAlchemy declarative classes.

Rows are read through the ORM and converted with ``to_domain()``; the store writes
with plain INSERT/UPDATE/DELETE statements so that upserts and the version counter
are single atomic statements. Relationships are view-only for that reason, and load
with ``lazy="raise"`` so every query states what it loads.

Schema changes go through the alembic migrations in ``modelport/metadata/migrations``;
a test checks that these classes and the migrations describe the same schema.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    Boolean,
    DateTime,
    Dialect,
    Double,
    ForeignKey,
    ForeignKeyConstraint,
    Index,
    Integer,
    MetaData,
    String,
    Text,
    TypeDecorator,
    UniqueConstraint,
    and_,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, foreign, mapped_column, relationship

from modelport.domain.alerts import AlertDelivery, AlertEvent, AlertState, AlertStatus
from modelport.domain.entities import (
    AuditEntry,
)

# Explicit constraint names, so migrations can refer to them and SQLite and
# PostgreSQL end up with the same names.
NAMING_CONVENTION = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_N_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

# Names and aliases are validated to these lengths before they reach the store;
# tag, metric and param keys are not, so they are unbounded text.
NAME_LENGTH = 128
ALIAS_LENGTH = 64


class UtcDateTime(TypeDecorator[datetime]):
    """A timezone-aware timestamp, stored in UTC and always read back in UTC.

    SQLite has no timezone type, so there the value is stored as naive UTC text,
    which also keeps text comparisons (``timestamp >= :since``) in time order.
    """

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError(f"naive datetime {value!r}: pass a timezone-aware time")
        utc = value.astimezone(UTC)
        return utc.replace(tzinfo=None) if dialect.name == "sqlite" else utc

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value.astimezone(UTC)


class JsonText(TypeDecorator[Any]):
    """JSON kept as text: portable, and the store never queries inside it."""

    impl = Text
    cache_ok = True

    def process_bind_param(self, value: Any, dialect: Dialect) -> str | None:
        return None if value is None else json.dumps(value, sort_keys=True)

    def process_result_value(self, value: str | None, dialect: Dialect) -> Any:
        return None if value is None else json.loads(value)


class Base(DeclarativeBase):
    """Declarative base of every metadata table."""

    metadata = MetaData(naming_convention=NAMING_CONVENTION)


class ModelRow(Base):
    """A registered model. ``latest_version`` is the version counter: the highest
    number ever allocated, so numbers are not reused after a version is deleted."""

    __tablename__ = "registered_models"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(NAME_LENGTH), unique=True)
    description: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime)
    updated_at: Mapped[datetime] = mapped_column(UtcDateTime)
    latest_version: Mapped[int] = mapped_column(Integer, server_default="0")

    tags: Mapped[list[ModelTagRow]] = relationship(viewonly=True, lazy="raise")
    aliases: Mapped[list[AliasRow]] = relationship(viewonly=True, lazy="raise")


class ModelTagRow(Base):
    """One tag of a registered model."""

    __tablename__ = "model_tags"

    model_id: Mapped[int] = mapped_column(
        ForeignKey("registered_models.id", ondelete="CASCADE"), primary_key=True
    )
    key: Mapped[str] = mapped_column(Text, primary_key=True)
    value: Mapped[str] = mapped_column(Text)


class VersionRow(Base):
    """One version of a registered model."""

    __tablename__ = "model_versions"
    __table_args__ = (UniqueConstraint("model_id", "version"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    model_id: Mapped[int] = mapped_column(ForeignKey("registered_models.id", ondelete="CASCADE"))
    version: Mapped[int] = mapped_column(Integer)
    flavor: Mapped[str] = mapped_column(String(64))
    status: Mapped[str] = mapped_column(String(16))
    artifact_key: Mapped[str] = mapped_column(Text)
    manifest_digest: Mapped[str] = mapped_column(Text)
    created_by: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime)
    description: Mapped[str] = mapped_column(Text)
    signature: Mapped[dict[str, Any] | None] = mapped_column(JsonText)

    model: Mapped[ModelRow] = relationship(viewonly=True, lazy="raise")
    tags: Mapped[list[VersionTagRow]] = relationship(viewonly=True, lazy="raise")
    metrics: Mapped[list[VersionMetricRow]] = relationship(viewonly=True, lazy="raise")
    params: Mapped[list[VersionParamRow]] = relationship(viewonly=True, lazy="raise")
    aliases: Mapped[list[AliasRow]] = relationship(
        primaryjoin=lambda: and_(
            VersionRow.model_id == foreign(AliasRow.model_id),
            VersionRow.version == foreign(AliasRow.version),
        ),
        viewonly=True,
        lazy="raise",
    )


class VersionTagRow(Base):
    """One tag of a version."""

    __tablename__ = "version_tags"

    version_id: Mapped[int] = mapped_column(
        ForeignKey("model_versions.id", ondelete="CASCADE"), primary_key=True
    )
    key: Mapped[str] = mapped_column(Text, primary_key=True)
    value: Mapped[str] = mapped_column(Text)


class VersionMetricRow(Base):
    """One metric of a version."""

    __tablename__ = "version_metrics"

    version_id: Mapped[int] = mapped_column(
        ForeignKey("model_versions.id", ondelete="CASCADE"), primary_key=True
    )
    key: Mapped[str] = mapped_column(Text, primary_key=True)
    value: Mapped[float] = mapped_column(Double)


class VersionParamRow(Base):
    """One training parameter of a version."""

    __tablename__ = "version_params"

    version_id: Mapped[int] = mapped_column(
        ForeignKey("model_versions.id", ondelete="CASCADE"), primary_key=True
    )
    key: Mapped[str] = mapped_column(Text, primary_key=True)
    value: Mapped[str] = mapped_column(Text)


class AliasRow(Base):
    """An alias (or stage) of a model pointing at one of its versions.

    The foreign key on (model_id, version) makes an alias point only at a version of
    its own model, and deletes the alias with the version.
    """

    __tablename__ = "model_aliases"
    __table_args__ = (
        ForeignKeyConstraint(
            ["model_id", "version"],
            ["model_versions.model_id", "model_versions.version"],
            ondelete="CASCADE",
        ),
    )

    model_id: Mapped[int] = mapped_column(
        ForeignKey("registered_models.id", ondelete="CASCADE"), primary_key=True
    )
    alias: Mapped[str] = mapped_column(String(ALIAS_LENGTH), primary_key=True)
    version: Mapped[int] = mapped_column(Integer)


class AuditRow(Base):
    """One audit-trail entry. ``model`` is the name, not a foreign key, so the trail
    outlives the model it describes."""

    __tablename__ = "audit_entries"
    __table_args__ = (Index("ix_audit_entries_model_id", "model", "id"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    timestamp: Mapped[datetime] = mapped_column(UtcDateTime, index=True)
    actor: Mapped[str] = mapped_column(Text)
    action: Mapped[str] = mapped_column(String(64))
    model: Mapped[str] = mapped_column(String(NAME_LENGTH))
    version: Mapped[int | None] = mapped_column(Integer)
    target: Mapped[str | None] = mapped_column(Text)
    before: Mapped[dict[str, Any] | None] = mapped_column("before_state", JsonText)
    after: Mapped[dict[str, Any] | None] = mapped_column("after_state", JsonText)

    def to_domain(self) -> AuditEntry:
        """The domain audit entry."""
        return AuditEntry(
            actor=self.actor,
            action=self.action,
            model=self.model,
            timestamp=self.timestamp,
            version=self.version,
            target=self.target,
            before=self.before,
            after=self.after,
            id=self.id,
        )


class AlertStateRow(Base):
    """The current state of one alert rule. ``model`` is a name, not a foreign key:
    a rule may watch a model before it is registered, and outlives it."""

    __tablename__ = "alert_states"

    rule: Mapped[str] = mapped_column(String(NAME_LENGTH), primary_key=True)
    model: Mapped[str] = mapped_column(String(NAME_LENGTH))
    status: Mapped[str] = mapped_column(String(16))
    since: Mapped[datetime] = mapped_column(UtcDateTime)
    evaluated_at: Mapped[datetime] = mapped_column(UtcDateTime)
    value: Mapped[float | None] = mapped_column(Double)
    samples: Mapped[int] = mapped_column(Integer)
    notified_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    revision: Mapped[int] = mapped_column(Integer)

    def to_domain(self) -> AlertState:
        """The domain state."""
        return AlertState(
            rule=self.rule,
            model=self.model,
            status=AlertStatus(self.status),
            since=self.since,
            evaluated_at=self.evaluated_at,
            value=self.value,
            samples=self.samples,
            notified_at=self.notified_at,
            revision=self.revision,
        )


class AlertEventRow(Base):
    """One transition of an alert rule."""

    __tablename__ = "alert_events"
    __table_args__ = (
        Index("ix_alert_events_rule_id", "rule", "id"),
        Index("ix_alert_events_model_id", "model", "id"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    rule: Mapped[str] = mapped_column(String(NAME_LENGTH))
    model: Mapped[str] = mapped_column(String(NAME_LENGTH))
    time: Mapped[datetime] = mapped_column(UtcDateTime)
    from_status: Mapped[str] = mapped_column(String(16))
    to_status: Mapped[str] = mapped_column(String(16))
    value: Mapped[float | None] = mapped_column(Double)
    samples: Mapped[int] = mapped_column(Integer)
    message: Mapped[str] = mapped_column(Text)
    details: Mapped[dict[str, Any]] = mapped_column(JsonText)

    def to_domain(self) -> AlertEvent:
        """The domain event."""
        return AlertEvent(
            rule=self.rule,
            model=self.model,
            time=self.time,
            from_status=AlertStatus(self.from_status),
            to_status=AlertStatus(self.to_status),
            value=self.value,
            samples=self.samples,
            message=self.message,
            details=self.details,
            id=self.id,
        )


class AlertDeliveryRow(Base):
    """One attempt to deliver an alert event through one action."""

    __tablename__ = "alert_deliveries"
    __table_args__ = (Index("ix_alert_deliveries_rule_id", "rule", "id"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    event_id: Mapped[int] = mapped_column(
        ForeignKey("alert_events.id", ondelete="CASCADE"), index=True
    )
    rule: Mapped[str] = mapped_column(String(NAME_LENGTH))
    time: Mapped[datetime] = mapped_column(UtcDateTime)
    action: Mapped[str] = mapped_column(String(16))
    target: Mapped[str] = mapped_column(Text)
    attempt: Mapped[int] = mapped_column(Integer)
    ok: Mapped[bool] = mapped_column(Boolean)
    code: Mapped[int | None] = mapped_column(Integer)
    error: Mapped[str | None] = mapped_column(Text)
    duration_s: Mapped[float] = mapped_column(Double)

    def to_domain(self) -> AlertDelivery:
        """The domain delivery attempt."""
        return AlertDelivery(
            event_id=self.event_id,
            rule=self.rule,
            time=self.time,
            action=self.action,
            target=self.target,
            attempt=self.attempt,
            ok=self.ok,
            code=self.code,
            error=self.error,
            duration_s=self.duration_s,
            id=self.id,
        )
