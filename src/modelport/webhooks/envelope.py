"""What a receiver gets: one registry event wrapped with its name, id and time.

The body is compact UTF-8 JSON and those exact bytes are signed::

    {"event": "model_version.created", "id": "9f1c...", "timestamp": "2026-...Z",
     "payload": {"name": "churn", "version": 3, ...}}

``id`` is the same in every attempt at one delivery, so a receiver can drop the
repeats that a retry after a lost answer causes.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

NAME_HEADER = "X-Modelport-Event-Name"
TEST_EVENT = "webhook.test"
"""The event ``modelport webhooks test`` sends (no receiver subscribes to it: it is sent
to the one named)."""


@dataclass(frozen=True)
class Envelope:
    """One event, ready to send to every receiver that subscribes to it."""

    event: str
    payload: Mapping[str, Any]
    id: str = field(default_factory=lambda: uuid.uuid4().hex)
    timestamp: datetime = field(default_factory=lambda: datetime.now(UTC))

    def document(self) -> dict[str, Any]:
        """The JSON document a receiver gets."""
        return {
            "event": self.event,
            "id": self.id,
            "timestamp": self.timestamp.isoformat().replace("+00:00", "Z"),
            "payload": dict(self.payload),
        }

    def body(self) -> bytes:
        """The document as compact UTF-8 JSON: the exact bytes that are signed."""
        return json.dumps(self.document(), separators=(",", ":"), default=str).encode()
