"""A report's alert history: the alert store's events of one model, within the window."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from modelport.domain.alerts import AlertStatus, NewAlertEvent
from modelport.metadata.memory import MemoryMetadataStore
from modelport.monitoring.report.history import alert_source
from modelport.monitoring.report.model import AlertEvent

NOW = datetime(2026, 3, 10, 12, 0, tzinfo=UTC)


def event(rule: str, model: str, hours: float, before: str, after: str) -> NewAlertEvent:
    return NewAlertEvent(
        rule=rule,
        model=model,
        time=NOW - timedelta(hours=hours),
        from_status=AlertStatus(before),
        to_status=AlertStatus(after),
        value=0.5,
        samples=100,
        message=f"{rule} {after}",
    )


def test_events_of_the_model_in_the_window_newest_first() -> None:
    store = MemoryMetadataStore()
    with store.transaction() as session:
        session.add_alert_event(event("drift", "churn@production", 50, "pending", "firing"))
        session.add_alert_event(event("drift", "churn@production", 5, "pending", "firing"))
        session.add_alert_event(event("p99", "models:/churn/3", 4, "inactive", "pending"))
        session.add_alert_event(event("other", "fraud@production", 3, "pending", "firing"))
        session.add_alert_event(event("drift", "churn@production", 1, "firing", "resolved"))
    read = alert_source(store, "churn")
    found = read(NOW - timedelta(hours=24), NOW)
    assert found == [
        AlertEvent(NOW - timedelta(hours=1), "drift", "resolved", 0.5, "drift resolved", "firing"),
        AlertEvent(NOW - timedelta(hours=4), "p99", "pending", 0.5, "p99 pending", "inactive"),
        AlertEvent(NOW - timedelta(hours=5), "drift", "firing", 0.5, "drift firing", "pending"),
    ]
