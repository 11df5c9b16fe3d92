"""Evaluating alert rules: read each signal, move each state, run the actions.

States live in the metadata database, so an evaluator that restarts carries on where
it stopped (a pending rule keeps its start time, a firing one its cooldown). Each
state is saved with a compare-and-set on its revision in the same transaction as the
event it causes; an evaluator that loses that race (another one evaluated the rule
in between) drops its result and runs no action, so running two by mistake never
notifies twice. A rule whose signal cannot be read is reported and keeps its state.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from modelport.config import AlertRule
from modelport.domain.alerts import AlertState
from modelport.domain.refs import parse_ref_or_name
from modelport.errors import InvalidArgumentError, ModelportError
from modelport.metadata.store import MetadataStore
from modelport.monitoring.alerts.actions import ActionRunner
from modelport.monitoring.alerts.notice import Notice
from modelport.monitoring.alerts.readings import Reading, SignalReader, SignalRequest
from modelport.monitoring.alerts.transitions import next_state

logger = logging.getLogger("modelport.monitoring.alerts")


@dataclass(frozen=True)
class RuleOutcome:
    """What one evaluation of one rule did."""

    rule: str
    state: AlertState | None
    changed: bool
    notified: bool
    error: str | None = None
    lost_race: bool = False

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form."""
        return {
            "rule": self.rule,
            "state": self.state.to_dict() if self.state is not None else None,
            "changed": self.changed,
            "notified": self.notified,
            "error": self.error,
            "lost_race": self.lost_race,
        }


class AlertEngine:
    """Evaluates a set of rules against the prediction log, keeping states in ``store``."""

    def __init__(
        self,
        rules: Mapping[str, AlertRule],
        store: MetadataStore,
        reader: SignalReader,
        actions: ActionRunner,
        *,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self.rules = dict(rules)
        self._store = store
        self._reader = reader
        self._actions = actions
        self._clock = clock

    @property
    def store(self) -> MetadataStore:
        """The metadata store the states are kept in."""
        return self._store

    def evaluate(self, now: datetime | None = None) -> list[RuleOutcome]:
        """Evaluate every rule once, in name order."""
        at = now or self._clock()
        return [self.evaluate_rule(name, at) for name in sorted(self.rules)]

    def evaluate_rule(self, name: str, now: datetime) -> RuleOutcome:
        """Evaluate one rule at ``now``."""
        rule = self.rules[name]
        with self._store.reader() as session:
            previous = session.get_alert_state(name)
        try:
            request = self._reader.request(name, rule, since=now - rule.window, until=now)
            reading = self._reader.read(request)
        except (ModelportError, OSError) as exc:  # reported in the outcome; state unchanged
            return RuleOutcome(name, previous, False, False, error=_error_text(exc))
        except Exception as exc:  # a bad segment must not stop every rule
            logger.exception("alert %s: reading %s failed", name, rule.signal)
            return RuleOutcome(name, previous, False, False, error=_error_text(exc))
        return self._apply(request, previous, reading, now=now)

    def _apply(
        self,
        request: SignalRequest,
        previous: AlertState | None,
        reading: Reading,
        *,
        now: datetime,
    ) -> RuleOutcome:
        name, rule = request.rule_name, request.rule
        transition = next_state(name, rule, previous, reading, now)
        expected = previous.revision if previous is not None else 0
        with self._store.transaction() as session:
            saved = session.save_alert_state(transition.state, expected_revision=expected)
            if saved is None:
                return RuleOutcome(name, previous, False, False, lost_race=True)
            event = session.add_alert_event(transition.event) if transition.event else None
        if event is not None:
            logger.info("alert %s: %s -> %s: %s", name, event.from_status, event.to_status,
                        event.message)  # fmt: skip
        notified = event is not None and transition.notify and bool(rule.actions)
        if notified and event is not None:
            self._actions.run(Notice(name, rule, event, request))
        return RuleOutcome(name, saved, event is not None, notified)


def check_rules(rules: Mapping[str, AlertRule]) -> None:
    """Refuse rules that cannot work, before any is evaluated: a model reference that
    does not parse, or a signing secret whose environment variable is not set."""
    from modelport.config import RetrainAction, WebhookAction

    for name, rule in rules.items():
        try:
            parse_ref_or_name(rule.model)
        except InvalidArgumentError as exc:
            raise InvalidArgumentError(
                f"alert rule {name!r}: {exc.message}", field=f"monitor.alerts.{name}.model"
            ) from None
        for action in rule.actions:
            if not isinstance(action, WebhookAction | RetrainAction):
                continue
            if action.secret_env and action.secret_value() is None:
                raise InvalidArgumentError(
                    f"alert rule {name!r}: the environment variable {action.secret_env} "
                    "that holds its webhook secret is not set",
                    field=f"monitor.alerts.{name}.actions",
                )


def _error_text(exc: BaseException) -> str:
    message = exc.message if isinstance(exc, ModelportError) else str(exc)
    return f"{type(exc).__name__}: {message}"
