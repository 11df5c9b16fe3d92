"""A rule's next state from its previous state and a new reading (pure: no I/O).

inactive/resolved ──condition holds──► pending ──held for ``for``──► firing
      ▲                                   │                            │
      └──────── condition stops ──────────┘     condition stops ──► resolved

With ``for = 0`` a holding condition goes straight to firing. A reading with fewer
than ``min_samples`` rows decides nothing: a pending rule goes back to inactive (the
condition is no longer established), a firing one stays firing (no data is not good
news). Actions run on the way to firing unless the rule notified less than
``cooldown`` ago, and on the way to resolved when that firing was notified.
"""

from __future__ import annotations

import operator
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import datetime

from modelport.config import AlertRule, format_duration
from modelport.domain.alerts import AlertState, AlertStatus, NewAlertEvent
from modelport.monitoring.alerts.readings import Reading

COMPARE: dict[str, Callable[[float, float], bool]] = {
    ">": operator.gt,
    ">=": operator.ge,
    "<": operator.lt,
    "<=": operator.le,
}
_QUIET = (AlertStatus.INACTIVE, AlertStatus.RESOLVED)


@dataclass(frozen=True)
class Transition:
    """The state to save, the event to record (None: no change) and whether to notify."""

    state: AlertState
    event: NewAlertEvent | None
    notify: bool


def next_state(
    name: str,
    rule: AlertRule,
    previous: AlertState | None,
    reading: Reading,
    now: datetime,
) -> Transition:
    """What ``reading`` at ``now`` does to the rule ``name``'s ``previous`` state."""
    before = previous or AlertState(name, rule.model, AlertStatus.INACTIVE, now, now)
    current = replace(
        before, model=rule.model, evaluated_at=now, value=reading.value, samples=reading.samples
    )
    if reading.value is None or reading.samples < rule.min_samples:
        if before.status is AlertStatus.PENDING:
            return _move(rule, current, AlertStatus.INACTIVE, reading, now=now,
                         reason="not enough samples")  # fmt: skip
        return Transition(current, None, notify=False)
    if COMPARE[rule.comparison](reading.value, rule.threshold):
        return _holding(rule, before, current, reading, now)
    if before.status is AlertStatus.PENDING:
        return _move(rule, current, AlertStatus.INACTIVE, reading, now=now,
                     reason="condition cleared")  # fmt: skip
    if before.status is AlertStatus.FIRING:
        notified = before.notified_at is not None and before.notified_at >= before.since
        moved = _move(rule, current, AlertStatus.RESOLVED, reading, now=now,
                      reason="condition cleared")  # fmt: skip
        return replace(moved, notify=notified)
    return Transition(current, None, notify=False)


def _holding(
    rule: AlertRule, before: AlertState, current: AlertState, reading: Reading, now: datetime
) -> Transition:
    """The condition holds: start pending, keep pending, or fire."""
    if before.status in _QUIET and rule.for_.total_seconds() > 0:
        return _move(rule, current, AlertStatus.PENDING, reading, now=now,
                     reason="condition holds")  # fmt: skip
    if before.status in _QUIET or (
        before.status is AlertStatus.PENDING and now - before.since >= rule.for_
    ):
        return _fire(rule, current, reading, now)
    return Transition(current, None, notify=False)


def _fire(rule: AlertRule, current: AlertState, reading: Reading, now: datetime) -> Transition:
    cooling = current.notified_at is not None and now - current.notified_at < rule.cooldown
    state = current if cooling else replace(current, notified_at=now)
    reason = "condition held" if not cooling else "condition held (in cooldown, not notified)"
    moved = _move(rule, state, AlertStatus.FIRING, reading, now=now, reason=reason)
    return replace(moved, notify=not cooling)


def _move(
    rule: AlertRule,
    current: AlertState,
    status: AlertStatus,
    reading: Reading,
    *,
    now: datetime,
    reason: str,
) -> Transition:
    event = NewAlertEvent(
        rule=current.rule,
        model=rule.model,
        time=now,
        from_status=current.status,
        to_status=status,
        value=reading.value,
        samples=reading.samples,
        message=f"{describe(rule, reading)}: {reason}",
        details={**rule_details(rule), "reading": dict(reading.details)},
    )
    return Transition(replace(current, status=status, since=now), event, notify=False)


def describe(rule: AlertRule, reading: Reading) -> str:
    """``accuracy 0.71 < 0.8 over 1d (250 samples)``."""
    signal = f"{rule.signal}[{rule.feature}]" if rule.feature else rule.signal
    value = "no value" if reading.value is None else f"{reading.value:.4g}"
    return (
        f"{signal} {value} {rule.comparison} {rule.threshold:g} over "
        f"{format_duration(rule.window)} ({reading.samples} samples)"
    )


def rule_details(rule: AlertRule) -> dict[str, object]:
    """The rule's condition as JSON-ready data."""
    return {
        "signal": rule.signal,
        "feature": rule.feature,
        "comparison": rule.comparison,
        "threshold": rule.threshold,
        "window": format_duration(rule.window),
        "for": format_duration(rule.for_),
        "min_samples": rule.min_samples,
    }
