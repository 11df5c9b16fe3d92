"""What the alert engine keeps: each rule's state, its transitions and its deliveries.

A rule is ``inactive`` until its condition holds, ``pending`` while the condition has
held for less than its ``for`` duration, ``firing`` after, and ``resolved`` once the
condition stops holding after firing. Every change of status is an ``AlertEvent``;
every attempt to notify (a webhook call, a command run, a retraining hand-off) is an
``AlertDelivery`` of one event.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any


class AlertStatus(StrEnum):
    """Where a rule is in its life cycle."""

    INACTIVE = "inactive"
    PENDING = "pending"
    FIRING = "firing"
    RESOLVED = "resolved"


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value is not None else None


@dataclass(frozen=True)
class AlertState:
    """A rule's current status, as of its latest evaluation.

    ``revision`` counts the writes of this state: an evaluator saves a new state only
    if nobody saved one since it read the old (see ``MetadataSession.save_alert_state``),
    so two evaluators never both fire one transition.
    """

    rule: str
    model: str
    status: AlertStatus
    since: datetime
    evaluated_at: datetime
    value: float | None = None
    samples: int = 0
    notified_at: datetime | None = None
    revision: int = 0

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form for ``--json`` output and the REST API."""
        return {
            "rule": self.rule,
            "model": self.model,
            "status": self.status.value,
            "since": _iso(self.since),
            "evaluated_at": _iso(self.evaluated_at),
            "value": self.value,
            "samples": self.samples,
            "notified_at": _iso(self.notified_at),
        }


@dataclass(frozen=True)
class NewAlertEvent:
    """One change of a rule's status, with the numbers that caused it."""

    rule: str
    model: str
    time: datetime
    from_status: AlertStatus
    to_status: AlertStatus
    value: float | None
    samples: int
    message: str
    details: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class AlertEvent(NewAlertEvent):
    """A stored event; ``id`` orders events and names them in deliveries."""

    id: int = 0

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form for ``--json`` output and the REST API."""
        return {
            "id": self.id,
            "rule": self.rule,
            "model": self.model,
            "time": _iso(self.time),
            "from": self.from_status.value,
            "to": self.to_status.value,
            "value": self.value,
            "samples": self.samples,
            "message": self.message,
            "details": dict(self.details),
        }


@dataclass(frozen=True)
class NewAlertDelivery:
    """One attempt of one action for one event.

    ``target`` names where it went without secrets (a URL, a program name);
    ``code`` is the HTTP status or the exit code when there was one.
    """

    event_id: int
    rule: str
    time: datetime
    action: str
    target: str
    attempt: int
    ok: bool
    code: int | None = None
    error: str | None = None
    duration_s: float = 0.0


@dataclass(frozen=True)
class AlertDelivery(NewAlertDelivery):
    """A stored delivery attempt."""

    id: int = 0

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form for ``--json`` output and the REST API."""
        return {
            "id": self.id,
            "event_id": self.event_id,
            "rule": self.rule,
            "time": _iso(self.time),
            "action": self.action,
            "target": self.target,
            "attempt": self.attempt,
            "ok": self.ok,
            "code": self.code,
            "error": self.error,
            "duration_s": self.duration_s,
        }
