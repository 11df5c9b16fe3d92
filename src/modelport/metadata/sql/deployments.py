"""The deployment part of the SQL metadata session: deployments, their history,
rollout states and leases.

Deployments and rollout states are written with a compare-and-set on their revision
(an INSERT that does nothing on conflict for revision 1, an ``UPDATE ... WHERE
revision = :expected`` after): when two writers read the same revision, PostgreSQL
makes the second wait for the first's commit and then finds the revision moved, and
SQLite never lets them overlap (write transactions begin with the write lock). A
lease is one upsert whose update only applies when the lease is ours or expired.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import delete, insert, or_, select, update
from sqlalchemy.orm import Session

from modelport.domain.deployments import Deployment, DeploymentEvent, NewDeploymentEvent
from modelport.domain.rollouts import RolloutRecord
from modelport.metadata.sql.deployment_tables import (
    DeploymentEventRow,
    DeploymentRow,
    LeaseRow,
    RolloutRow,
)
from modelport.metadata.sql.statements import insert_row, sortable
from modelport.metadata.store import deployment_not_found, stale_deployment

_NO_SYNC = {"synchronize_session": False}


class SqlDeploymentSession:
    """Deployment operations of ``SqlMetadataSession``; see ``MetadataSession``."""

    _orm: Session
    _dialect: str

    # -- deployments
    def get_deployment(self, name: str) -> Deployment | None:
        row = self._orm.scalar(
            select(DeploymentRow)
            .where(DeploymentRow.name == name)
            .execution_options(populate_existing=True)
        )
        return row.to_domain() if row is not None else None

    def list_deployments(self) -> list[Deployment]:
        rows = self._orm.scalars(
            select(DeploymentRow)
            .order_by(sortable(DeploymentRow.name, self._dialect))
            .execution_options(populate_existing=True)
        )
        return [row.to_domain() for row in rows]

    def save_deployment(
        self, deployment: Deployment, *, expected_revision: int, now: datetime, actor: str
    ) -> Deployment:
        values: dict[str, Any] = {
            "spec": deployment.spec_dict(),
            "revision": expected_revision + 1,
            "updated_at": now,
            "updated_by": actor,
        }
        if expected_revision == 0:
            statement = (
                insert_row(
                    DeploymentRow,
                    {**values, "name": deployment.name, "created_at": now},
                    self._dialect,
                )
                .on_conflict_do_nothing()
                .returning(DeploymentRow.name)
            )
        else:
            statement = (
                update(DeploymentRow)
                .where(
                    DeploymentRow.name == deployment.name,
                    DeploymentRow.revision == expected_revision,
                )
                .values(values)
                .returning(DeploymentRow.name)
                .execution_options(**_NO_SYNC)
            )
        if self._orm.scalar(statement) is None:
            found = self._orm.scalar(
                select(DeploymentRow.revision).where(DeploymentRow.name == deployment.name)
            )
            raise stale_deployment(deployment.name, expected_revision, found or 0)
        stored = self.get_deployment(deployment.name)
        assert stored is not None
        return stored

    def delete_deployment(self, name: str) -> None:
        deleted = self._orm.scalar(
            delete(DeploymentRow).where(DeploymentRow.name == name).returning(DeploymentRow.name),
            execution_options=_NO_SYNC,
        )
        if deleted is None:
            raise deployment_not_found(name)

    def add_deployment_event(self, event: NewDeploymentEvent) -> DeploymentEvent:
        values = dict(vars(event))
        values["spec"] = dict(event.spec)
        values["details"] = dict(event.details)
        event_id = self._orm.scalar(
            insert(DeploymentEventRow).values(values).returning(DeploymentEventRow.id)
        )
        assert event_id is not None
        return DeploymentEvent(**vars(event), id=event_id)

    def list_deployment_events(self, name: str, *, limit: int = 100) -> list[DeploymentEvent]:
        query = (
            select(DeploymentEventRow)
            .where(DeploymentEventRow.deployment == name)
            .order_by(DeploymentEventRow.id.desc())
            .limit(max(limit, 0))
        )
        return [row.to_domain() for row in self._orm.scalars(query)]

    # -- rollouts and leases
    def get_rollout(self, deployment: str) -> RolloutRecord | None:
        row = self._orm.scalar(
            select(RolloutRow)
            .where(RolloutRow.deployment == deployment)
            .execution_options(populate_existing=True)
        )
        return row.to_domain() if row is not None else None

    def save_rollout(
        self, record: RolloutRecord, *, expected_revision: int
    ) -> RolloutRecord | None:
        values: dict[str, Any] = {
            "state": dict(record.state),
            "revision": expected_revision + 1,
            "updated_at": record.updated_at,
        }
        if expected_revision == 0:
            statement = (
                insert_row(RolloutRow, {**values, "deployment": record.deployment}, self._dialect)
                .on_conflict_do_nothing()
                .returning(RolloutRow.deployment)
            )
        else:
            statement = (
                update(RolloutRow)
                .where(
                    RolloutRow.deployment == record.deployment,
                    RolloutRow.revision == expected_revision,
                )
                .values(values)
                .returning(RolloutRow.deployment)
                .execution_options(**_NO_SYNC)
            )
        if self._orm.scalar(statement) is None:
            return None
        return self.get_rollout(record.deployment)

    def delete_rollout(self, deployment: str) -> None:
        self._orm.execute(
            delete(RolloutRow).where(RolloutRow.deployment == deployment),
            execution_options=_NO_SYNC,
        )

    def acquire_lease(self, name: str, owner: str, *, now: datetime, ttl_s: float) -> bool:
        expires = now + timedelta(seconds=ttl_s)
        statement = insert_row(
            LeaseRow, {"name": name, "owner": owner, "expires_at": expires}, self._dialect
        )
        statement = statement.on_conflict_do_update(
            index_elements=["name"],
            set_={"owner": statement.excluded.owner, "expires_at": statement.excluded.expires_at},
            where=or_(LeaseRow.owner == owner, LeaseRow.expires_at <= now),
        ).returning(LeaseRow.name)
        return self._orm.scalar(statement) is not None

    def release_lease(self, name: str, owner: str) -> None:
        self._orm.execute(
            delete(LeaseRow).where(LeaseRow.name == name, LeaseRow.owner == owner),
            execution_options=_NO_SYNC,
        )
