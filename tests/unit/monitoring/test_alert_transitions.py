"""A rule's life cycle: pending, firing, resolved, with for, cooldown and min_samples."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from modelport.config import AlertRule
from modelport.domain.alerts import AlertState, AlertStatus
from modelport.monitoring.alerts.readings import Reading
from modelport.monitoring.alerts.transitions import Transition, describe, next_state

T0 = datetime(2026, 12, 6, 9, 0, tzinfo=UTC)


def rule(**fields: Any) -> AlertRule:
    base: dict[str, Any] = {
        "model": "churn@production",
        "signal": "error_rate",
        "comparison": ">",
        "threshold": 0.05,
        "min_samples": 10,
        "for": "10m",
        "cooldown": "1h",
    }
    return AlertRule.model_validate({**base, **fields})


class Run:
    """Feeds readings one minute apart, keeping the state as the engine would."""

    def __init__(self, watched: AlertRule) -> None:
        self.rule = watched
        self.state: AlertState | None = None
        self.now = T0

    def step(self, value: float | None, samples: int = 100, minutes: int = 1) -> Transition:
        self.now += timedelta(minutes=minutes)
        moved = next_state("errors", self.rule, self.state, Reading(value, samples), self.now)
        self.state = moved.state
        return moved


def test_pending_then_firing_after_for_then_resolved() -> None:
    run = Run(rule())
    first = run.step(0.2)
    assert first.state.status is AlertStatus.PENDING and first.event is not None
    assert (first.event.from_status, first.event.to_status) == (
        AlertStatus.INACTIVE,
        AlertStatus.PENDING,
    )
    assert not first.notify
    assert run.step(0.2, minutes=5).event is None  # 5 of 10 minutes
    fired = run.step(0.2, minutes=5)
    assert fired.state.status is AlertStatus.FIRING and fired.notify
    assert fired.state.notified_at == run.now and fired.state.since == run.now
    assert run.step(0.3).event is None  # still firing: no new event, no new notice
    resolved = run.step(0.01)
    assert resolved.state.status is AlertStatus.RESOLVED and resolved.notify
    assert resolved.event is not None and "condition cleared" in resolved.event.message


def test_a_pending_rule_that_clears_goes_back_to_inactive() -> None:
    run = Run(rule())
    run.step(0.2)
    cleared = run.step(0.01)
    assert cleared.state.status is AlertStatus.INACTIVE and not cleared.notify
    assert cleared.event is not None and cleared.event.from_status is AlertStatus.PENDING


def test_for_zero_fires_at_once() -> None:
    fired = Run(rule(**{"for": "0s"})).step(0.2)
    assert fired.state.status is AlertStatus.FIRING and fired.notify
    assert fired.event is not None and fired.event.from_status is AlertStatus.INACTIVE


def test_too_few_samples_decide_nothing() -> None:
    run = Run(rule())
    assert run.step(0.9, samples=3).event is None
    assert run.state is not None and run.state.status is AlertStatus.INACTIVE
    run.step(0.2)
    back = run.step(0.9, samples=3)
    assert back.state.status is AlertStatus.INACTIVE  # pending needs the condition established
    firing = Run(rule(**{"for": "0s"}))
    firing.step(0.2)
    assert firing.step(None, samples=0).state.status is AlertStatus.FIRING  # no data: no news


def test_cooldown_suppresses_a_second_notice_and_its_resolution() -> None:
    run = Run(rule(**{"for": "0s"}))
    assert run.step(0.2).notify
    assert run.step(0.01).notify  # resolved after a notified firing
    refired = run.step(0.2, minutes=10)  # 11 minutes after the first notice: cooling
    assert refired.state.status is AlertStatus.FIRING and not refired.notify
    assert refired.event is not None and "cooldown" in refired.event.message
    quiet = run.step(0.01)
    assert quiet.state.status is AlertStatus.RESOLVED and not quiet.notify
    later = run.step(0.2, minutes=60)
    assert later.notify and later.state.notified_at == run.now


@pytest.mark.parametrize(
    ("comparison", "value", "holds"),
    [(">", 0.5, False), (">=", 0.5, True), ("<", 0.5, False), ("<=", 0.5, True), ("<", 0.4, True)],
)
def test_comparisons(comparison: str, value: float, holds: bool) -> None:
    watched = rule(comparison=comparison, threshold=0.5, **{"for": "0s"})
    moved = next_state("r", watched, None, Reading(value, 100), T0)
    assert (moved.state.status is AlertStatus.FIRING) is holds


def test_events_describe_the_numbers() -> None:
    watched = rule(signal="feature_drift", feature="age", comparison=">=", threshold=0.1)
    text = describe(watched, Reading(0.123456, 500))
    assert text == "feature_drift[age] 0.1235 >= 0.1 over 1h (500 samples)"
    moved = next_state("r", watched, None, Reading(0.2, 500, {"score": 0.2}), T0)
    assert moved.event is not None
    assert moved.event.details["threshold"] == 0.1
    assert moved.event.details["for"] == "10m"
    assert moved.event.details["reading"] == {"score": 0.2}
