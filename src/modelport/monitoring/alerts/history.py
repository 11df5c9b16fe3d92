"""The alert view the CLI and the HTTP API show: each rule with its state, the recent
transitions and the delivery log."""

from __future__ import annotations

import threading
from collections.abc import Callable, Mapping
from typing import Any

from modelport.config import AlertRule, format_duration
from modelport.domain.refs import parse_ref_or_name
from modelport.metadata.store import MetadataStore
from modelport.monitoring.alerts.transitions import rule_details


def alert_history(
    store: MetadataStore,
    rules: Mapping[str, AlertRule],
    *,
    model: str | None = None,
    limit: int = 50,
    readable: Callable[[str], bool] | None = None,
) -> dict[str, Any]:
    """Rules (of ``model``'s name when given, of the models ``readable`` accepts when
    given) with their state, newest events and deliveries first. Rules stored but no
    longer configured still show their state."""
    some = model is not None or readable is not None
    with store.reader() as session:
        states = {state.rule: state for state in session.list_alert_states()}
        events = session.list_alert_events(limit=limit * 4 if some else limit)
        deliveries = session.list_alert_deliveries(limit=limit * 4 if some else limit)
    names = sorted(set(rules) | set(states))
    models = {name: _model_of(rules, states, name) for name in names}
    wanted = {
        name
        for name in names
        if (model is None or models[name] == model) and (readable is None or readable(models[name]))
    }
    listed = [
        {
            "name": name,
            "model": rules[name].model if name in rules else states[name].model,
            "configured": name in rules,
            **(_rule_view(rules[name]) if name in rules else {}),
            "state": states[name].to_dict() if name in states else None,
        }
        for name in names
        if name in wanted
    ]
    return {
        "model": model,
        "rules": listed,
        "events": [e.to_dict() for e in events if e.rule in wanted][:limit],
        "deliveries": [d.to_dict() for d in deliveries if d.rule in wanted][:limit],
    }


def _model_of(rules: Mapping[str, AlertRule], states: Mapping[str, Any], name: str) -> str:
    ref = rules[name].model if name in rules else states[name].model
    return parse_ref_or_name(ref).name


def _rule_view(rule: AlertRule) -> dict[str, Any]:
    return {
        **rule_details(rule),
        "cooldown": format_duration(rule.cooldown),
        "actions": [action.type for action in rule.actions],
    }


class AlertHistoryReader:
    """``alert_history`` for one model on a store opened on first use (a server worker
    that is never asked connects to no database)."""

    def __init__(
        self, open_store: Callable[[], MetadataStore], rules: Mapping[str, AlertRule]
    ) -> None:
        self._open_store = open_store
        self._rules = dict(rules)
        self._store: MetadataStore | None = None
        self._lock = threading.Lock()

    def __call__(self, model: str, limit: int) -> dict[str, Any]:
        return alert_history(self._opened(), self._rules, model=model, limit=limit)

    def readable(self, limit: int, readable: Callable[[str], bool]) -> dict[str, Any]:
        """``alert_history`` of every model ``readable`` accepts (by model name)."""
        return alert_history(self._opened(), self._rules, limit=limit, readable=readable)

    def _opened(self) -> MetadataStore:
        with self._lock:
            if self._store is None:
                self._store = self._open_store()
            return self._store
