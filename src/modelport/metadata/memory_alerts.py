"""The alert part of the in-memory metadata session (the reference for the SQL one)."""

from __future__ import annotations

from dataclasses import dataclass, field, replace

from modelport.domain.alerts import (
    AlertDelivery,
    AlertEvent,
    AlertState,
    NewAlertDelivery,
    NewAlertEvent,
)


@dataclass
class AlertRecords:
    """Every rule's state, the transitions and the delivery log, oldest first."""

    states: dict[str, AlertState] = field(default_factory=dict)
    events: list[AlertEvent] = field(default_factory=list)
    deliveries: list[AlertDelivery] = field(default_factory=list)


class MemoryAlertSession:
    """Alert operations of ``MemorySession``; see ``MetadataSession`` for the contract."""

    _alerts: AlertRecords

    def get_alert_state(self, rule: str) -> AlertState | None:
        return self._alerts.states.get(rule)

    def list_alert_states(self) -> list[AlertState]:
        return [self._alerts.states[rule] for rule in sorted(self._alerts.states)]

    def save_alert_state(self, state: AlertState, *, expected_revision: int) -> AlertState | None:
        current = self._alerts.states.get(state.rule)
        if (current.revision if current is not None else 0) != expected_revision:
            return None
        stored = replace(state, revision=expected_revision + 1)
        self._alerts.states[state.rule] = stored
        return stored

    def add_alert_event(self, event: NewAlertEvent) -> AlertEvent:
        stored = AlertEvent(**vars(event), id=len(self._alerts.events) + 1)
        self._alerts.events.append(stored)
        return stored

    def list_alert_events(
        self, *, rule: str | None = None, model: str | None = None, limit: int = 100
    ) -> list[AlertEvent]:
        found = [
            event
            for event in reversed(self._alerts.events)
            if (rule is None or event.rule == rule) and (model is None or event.model == model)
        ]
        return found[:limit]

    def add_alert_delivery(self, delivery: NewAlertDelivery) -> AlertDelivery:
        stored = AlertDelivery(**vars(delivery), id=len(self._alerts.deliveries) + 1)
        self._alerts.deliveries.append(stored)
        return stored

    def list_alert_deliveries(
        self, *, rule: str | None = None, event_id: int | None = None, limit: int = 100
    ) -> list[AlertDelivery]:
        found = [
            delivery
            for delivery in reversed(self._alerts.deliveries)
            if (rule is None or delivery.rule == rule)
            and (event_id is None or delivery.event_id == event_id)
        ]
        return found[:limit]
