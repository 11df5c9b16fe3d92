"""One evaluation round of the alert rules on request: what the control plane runs for
``POST /api/monitoring/alerts/evaluate``, which ``modelport monitor run`` and
``modelport serve --monitor`` call every interval when ``MODELPORT_REGISTRY_URL``
points them at it (the caller is the clock, the control plane holds the states).

Two callers at once never notify twice: the engine saves each state with a
compare-and-set on its revision and runs actions only for the transition it saved;
rounds in one process run one at a time. Every state change a round makes is recorded
in the audit trail with the caller as the actor.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from modelport.domain.entities import NewAuditEntry
from modelport.domain.refs import parse_ref_or_name
from modelport.errors import InvalidArgumentError

if TYPE_CHECKING:
    from modelport.monitoring.alerts.engine import AlertEngine, RuleOutcome

AUDIT_ACTION = "alert.evaluate"


class AlertRounds:
    """Rounds of the engine ``build`` makes on first use (it opens the database)."""

    def __init__(self, build: Callable[[], AlertEngine], *, configured: bool, actor: str) -> None:
        self._build = build
        self._configured = configured
        self._actor = actor  # when the request has no key (a server without keys)
        self._engine: AlertEngine | None = None
        self._lock = threading.Lock()

    def __call__(self, actor: str | None) -> list[dict[str, Any]]:
        """Evaluate every rule once, as ``actor`` (default: this server's user); the
        outcomes, JSON-ready."""
        if not self._configured:
            raise InvalidArgumentError(
                "the control plane has no alert rules: add [monitor.alerts.NAME] tables to "
                "the config file `modelport ui` reads (--config or MODELPORT_CONFIG)",
                field="monitor.alerts",
            )
        with self._lock:
            if self._engine is None:
                self._engine = self._build()
            engine = self._engine
            outcomes = engine.evaluate(datetime.now(UTC))
            _audit(engine, outcomes, actor or self._actor)
        return [outcome.to_dict() for outcome in outcomes]


def _audit(engine: AlertEngine, outcomes: list[RuleOutcome], actor: str) -> None:
    changed = [o for o in outcomes if o.changed and o.state is not None]
    if not changed:
        return
    with engine.store.transaction() as session:
        for outcome in changed:
            state = outcome.state
            assert state is not None
            session.add_audit(
                NewAuditEntry(
                    actor=actor,
                    action=AUDIT_ACTION,
                    model=parse_ref_or_name(state.model).name,
                    timestamp=state.evaluated_at,
                    target=outcome.rule,
                    after={"status": state.status.value, "value": state.value,
                           "notified": outcome.notified},
                )
            )  # fmt: skip
