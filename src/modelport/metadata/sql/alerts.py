"""The alert part of the SQL metadata session: rule states, transitions, deliveries.

A state is saved with a compare-and-set on its revision (an INSERT that does nothing
on conflict for a first state, an ``UPDATE ... WHERE revision = :expected`` after), so
two evaluators that read the same state cannot both save the transition that follows.
"""

from __future__ import annotations

from dataclasses import asdict
from typing import Any

from sqlalchemy import insert, select, update
from sqlalchemy.orm import Session

from modelport.domain.alerts import (
    AlertDelivery,
    AlertEvent,
    AlertState,
    NewAlertDelivery,
    NewAlertEvent,
)
from modelport.metadata.sql.statements import insert_row
from modelport.metadata.sql.tables import AlertDeliveryRow, AlertEventRow, AlertStateRow


class SqlAlertSession:
    """Alert operations of ``SqlMetadataSession``; see ``MetadataSession`` for the contract."""

    _orm: Session
    _dialect: str

    def get_alert_state(self, rule: str) -> AlertState | None:
        row = self._orm.scalar(
            select(AlertStateRow)
            .where(AlertStateRow.rule == rule)
            .execution_options(populate_existing=True)
        )
        return row.to_domain() if row is not None else None

    def list_alert_states(self) -> list[AlertState]:
        rows = self._orm.scalars(
            select(AlertStateRow)
            .order_by(AlertStateRow.rule)
            .execution_options(populate_existing=True)
        )
        return [row.to_domain() for row in rows]

    def save_alert_state(self, state: AlertState, *, expected_revision: int) -> AlertState | None:
        values = _state_values(state)
        values["revision"] = expected_revision + 1
        if expected_revision == 0:
            statement = (
                insert_row(AlertStateRow, values, self._dialect)
                .on_conflict_do_nothing()
                .returning(AlertStateRow.rule)
            )
        else:
            statement = (
                update(AlertStateRow)
                .where(
                    AlertStateRow.rule == state.rule,
                    AlertStateRow.revision == expected_revision,
                )
                .values(values)
                .returning(AlertStateRow.rule)
                .execution_options(synchronize_session=False)
            )
        if self._orm.scalar(statement) is None:
            return None
        return self.get_alert_state(state.rule)

    def add_alert_event(self, event: NewAlertEvent) -> AlertEvent:
        values = asdict(event)
        values["from_status"] = event.from_status.value
        values["to_status"] = event.to_status.value
        statement = insert(AlertEventRow).values(values).returning(AlertEventRow.id)
        event_id = self._orm.scalar(statement)
        assert event_id is not None
        return AlertEvent(**vars(event), id=event_id)

    def list_alert_events(
        self, *, rule: str | None = None, model: str | None = None, limit: int = 100
    ) -> list[AlertEvent]:
        query = select(AlertEventRow).order_by(AlertEventRow.id.desc()).limit(limit)
        if rule is not None:
            query = query.where(AlertEventRow.rule == rule)
        if model is not None:
            query = query.where(AlertEventRow.model == model)
        return [row.to_domain() for row in self._orm.scalars(query)]

    def add_alert_delivery(self, delivery: NewAlertDelivery) -> AlertDelivery:
        values = asdict(delivery)
        delivery_id = self._orm.scalar(
            insert(AlertDeliveryRow).values(values).returning(AlertDeliveryRow.id)
        )
        assert delivery_id is not None
        return AlertDelivery(**vars(delivery), id=delivery_id)

    def list_alert_deliveries(
        self, *, rule: str | None = None, event_id: int | None = None, limit: int = 100
    ) -> list[AlertDelivery]:
        query = select(AlertDeliveryRow).order_by(AlertDeliveryRow.id.desc()).limit(limit)
        if rule is not None:
            query = query.where(AlertDeliveryRow.rule == rule)
        if event_id is not None:
            query = query.where(AlertDeliveryRow.event_id == event_id)
        return [row.to_domain() for row in self._orm.scalars(query)]


def _state_values(state: AlertState) -> dict[str, Any]:
    values = asdict(state)
    values["status"] = state.status.value
    return values
