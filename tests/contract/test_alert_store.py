"""The alert part of the MetadataStore contract, on memory, SQLite and PostgreSQL alike."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest

from modelport.domain.alerts import (
    AlertState,
    AlertStatus,
    NewAlertDelivery,
    NewAlertEvent,
)
from modelport.metadata.store import MetadataStore

NOW = datetime(2026, 12, 6, 9, 30, 15, 250000, tzinfo=UTC)


def state(rule: str = "churn_accuracy", **changes: object) -> AlertState:
    base = AlertState(
        rule=rule,
        model="churn",
        status=AlertStatus.PENDING,
        since=NOW,
        evaluated_at=NOW,
        value=0.71,
        samples=250,
    )
    return replace(base, **changes)  # type: ignore[arg-type]


def event(rule: str = "churn_accuracy", model: str = "churn", minute: int = 0) -> NewAlertEvent:
    return NewAlertEvent(
        rule=rule,
        model=model,
        time=NOW + timedelta(minutes=minute),
        from_status=AlertStatus.PENDING,
        to_status=AlertStatus.FIRING,
        value=0.71,
        samples=250,
        message="accuracy 0.71 < 0.8",
        details={"signal": "accuracy", "threshold": 0.8, "window": "1h"},
    )


def test_a_first_state_is_saved_at_revision_one(metadata_store: MetadataStore) -> None:
    with metadata_store.transaction() as session:
        assert session.get_alert_state("churn_accuracy") is None
        saved = session.save_alert_state(state(), expected_revision=0)
    assert saved is not None and saved.revision == 1
    with metadata_store.reader() as session:
        assert session.get_alert_state("churn_accuracy") == saved
        assert saved == replace(state(), revision=1)


def test_a_stale_revision_saves_nothing(metadata_store: MetadataStore) -> None:
    with metadata_store.transaction() as session:
        session.save_alert_state(state(), expected_revision=0)
    firing = state(status=AlertStatus.FIRING, notified_at=NOW, value=None, samples=0)
    with metadata_store.transaction() as session:
        first = session.save_alert_state(firing, expected_revision=1)
        # A second evaluator that read revision 1 too, or that thought none existed.
        assert session.save_alert_state(state(value=0.5), expected_revision=1) is None
        assert session.save_alert_state(state(value=0.5), expected_revision=0) is None
    assert first is not None and first.revision == 2
    with metadata_store.reader() as session:
        stored = session.get_alert_state("churn_accuracy")
    assert stored == replace(firing, revision=2)
    assert stored is not None and stored.value is None and stored.notified_at == NOW


def test_states_are_listed_by_rule(metadata_store: MetadataStore) -> None:
    with metadata_store.transaction() as session:
        for rule in ("p99", "drift", "accuracy"):
            session.save_alert_state(state(rule), expected_revision=0)
    with metadata_store.reader() as session:
        assert [s.rule for s in session.list_alert_states()] == ["accuracy", "drift", "p99"]


def test_events_are_listed_newest_first_by_rule_or_model(metadata_store: MetadataStore) -> None:
    with metadata_store.transaction() as session:
        first = session.add_alert_event(event("a", "churn", 0))
        session.add_alert_event(event("b", "fraud", 1))
        third = session.add_alert_event(event("a", "churn", 2))
    assert first.id < third.id
    with metadata_store.reader() as session:
        assert [e.id for e in session.list_alert_events(rule="a")] == [third.id, first.id]
        assert [e.rule for e in session.list_alert_events(model="fraud")] == ["b"]
        assert len(session.list_alert_events(limit=2)) == 2
        stored = session.list_alert_events(rule="a")[-1]
    assert stored == first
    assert stored.details == {"signal": "accuracy", "threshold": 0.8, "window": "1h"}
    assert stored.to_dict()["from"] == "pending" and stored.to_dict()["to"] == "firing"


def test_deliveries_are_logged_per_event(metadata_store: MetadataStore) -> None:
    with metadata_store.transaction() as session:
        fired = session.add_alert_event(event())
        other = session.add_alert_event(event("b"))
        for attempt, ok in ((1, False), (2, True)):
            session.add_alert_delivery(
                NewAlertDelivery(
                    event_id=fired.id,
                    rule="churn_accuracy",
                    time=NOW,
                    action="webhook",
                    target="http://127.0.0.1:9/hook",
                    attempt=attempt,
                    ok=ok,
                    code=500 if not ok else 200,
                    error="HTTP 500" if not ok else None,
                    duration_s=0.01,
                )
            )
        session.add_alert_delivery(
            NewAlertDelivery(other.id, "b", NOW, "command", "notify", 1, True, code=0)
        )
    with metadata_store.reader() as session:
        log = session.list_alert_deliveries(event_id=fired.id)
        by_rule = session.list_alert_deliveries(rule="b")
    assert [(d.attempt, d.ok, d.code, d.error) for d in log] == [
        (2, True, 200, None),
        (1, False, 500, "HTTP 500"),
    ]
    assert [d.action for d in by_rule] == ["command"]


def test_a_failed_transaction_keeps_no_alert_change(metadata_store: MetadataStore) -> None:
    def fail_midway() -> None:
        with metadata_store.transaction() as session:
            session.save_alert_state(state(), expected_revision=0)
            session.add_alert_event(event())
            raise RuntimeError("evaluation failed")

    with pytest.raises(RuntimeError):
        fail_midway()
    with metadata_store.reader() as session:
        assert session.list_alert_states() == []
        assert session.list_alert_events() == []


@pytest.mark.parametrize("start", [0, 1], ids=["first-state", "next-state"])
def test_evaluators_racing_on_one_state_save_it_once(
    metadata_store: MetadataStore, start: int
) -> None:
    import threading
    from concurrent.futures import ThreadPoolExecutor

    if start:
        with metadata_store.transaction() as session:
            session.save_alert_state(state(), expected_revision=0)
    barrier = threading.Barrier(8)

    def evaluate(worker: int) -> bool:
        barrier.wait()
        with metadata_store.transaction() as session:
            saved = session.save_alert_state(
                state(value=float(worker), status=AlertStatus.FIRING), expected_revision=start
            )
            if saved is not None:
                session.add_alert_event(event())
        return saved is not None

    with ThreadPoolExecutor(8) as pool:
        won = list(pool.map(evaluate, range(8)))
    assert won.count(True) == 1
    with metadata_store.reader() as session:
        stored = session.get_alert_state("churn_accuracy")
        assert len(session.list_alert_events()) == 1
    assert stored is not None and stored.revision == start + 1
    assert stored.value == float(won.index(True))
