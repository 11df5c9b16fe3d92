"""What an action receives: the alert as one JSON document and as environment variables.

The document is the webhook body and a command's stdin; the variables carry its
scalar fields (``MODELPORT_ALERT_NAME``, ``..._STATUS``, ``..._VALUE``, ...) for
scripts that do not read JSON. A retraining hand-off adds a ``retrain`` object (and
``MODELPORT_RETRAIN_*`` variables) naming the exported file.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from modelport.config import AlertRule
from modelport.domain.alerts import AlertEvent
from modelport.monitoring.alerts.readings import SignalRequest
from modelport.monitoring.alerts.transitions import rule_details

NOTICE_VERSION = 1


@dataclass(frozen=True)
class Notice:
    """One alert event of one rule, ready to deliver."""

    rule_name: str
    rule: AlertRule
    event: AlertEvent
    request: SignalRequest
    retrain: dict[str, Any] | None = field(default=None)

    def document(self) -> dict[str, Any]:
        """The JSON document every action receives."""
        event = self.event
        body: dict[str, Any] = {
            "notice_version": NOTICE_VERSION,
            "alert": self.rule_name,
            "status": event.to_status.value,
            "previous_status": event.from_status.value,
            "event_id": event.id,
            "time": event.time.isoformat(),
            "model": self.rule.model,
            "model_name": self.request.model,
            "version": self.request.version,
            **rule_details(self.rule),
            "value": event.value,
            "samples": event.samples,
            "message": event.message,
            "description": self.rule.description,
            "labels": dict(self.rule.labels),
            "since": self.request.since.isoformat(),
            "until": self.request.until.isoformat(),
        }
        if self.retrain is not None:
            body["retrain"] = self.retrain
        return body

    def body(self) -> bytes:
        """The document as compact UTF-8 JSON: the exact bytes that are signed."""
        return json.dumps(self.document(), separators=(",", ":"), default=str).encode()

    def environment(self) -> dict[str, str]:
        """``MODELPORT_ALERT_*`` (and ``MODELPORT_RETRAIN_*``) variables."""
        document = self.document()
        keys = (
            ("NAME", "alert"),
            ("STATUS", "status"),
            ("EVENT_ID", "event_id"),
            ("TIME", "time"),
            ("MODEL", "model"),
            ("VERSION", "version"),
            ("SIGNAL", "signal"),
            ("FEATURE", "feature"),
            ("COMPARISON", "comparison"),
            ("THRESHOLD", "threshold"),
            ("VALUE", "value"),
            ("SAMPLES", "samples"),
            ("WINDOW", "window"),
            ("SINCE", "since"),
            ("UNTIL", "until"),
            ("MESSAGE", "message"),
        )
        variables = {
            f"MODELPORT_ALERT_{name}": _text(document[key])
            for name, key in keys
            if document.get(key) is not None
        }
        for key, value in (self.retrain or {}).items():
            if isinstance(value, str | int | float):
                variables[f"MODELPORT_RETRAIN_{key.upper()}"] = _text(value)
        return variables


def _text(value: Any) -> str:
    return value if isinstance(value, str) else json.dumps(value)
