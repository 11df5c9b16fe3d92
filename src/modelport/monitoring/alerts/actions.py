"""Running a rule's actions for one event, and writing each attempt to the delivery log.

Webhooks and commands get firing events, and resolved ones when their
``send_resolved`` says so; the retraining trigger runs on firing only. One failing
action does not stop the others: each outcome is in the delivery log.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import replace
from datetime import UTC, datetime, timedelta

from modelport.config import (
    AlertAction,
    CommandAction,
    RetrainAction,
    WebhookAction,
    child_environment,
)
from modelport.domain.alerts import AlertStatus, NewAlertDelivery
from modelport.metadata.store import MetadataStore
from modelport.monitoring.alerts.delivery import run_command
from modelport.monitoring.alerts.notice import Notice
from modelport.monitoring.alerts.retrain import export_window
from modelport.outgoing import DEFAULT_POLICY, OutgoingPolicy
from modelport.webhooks.sending import EVENT_HEADER, Attempt, post_webhook, redacted

logger = logging.getLogger("modelport.monitoring.alerts")


class ActionRunner:
    """Delivers notices through their rule's actions."""

    def __init__(
        self,
        store: MetadataStore,
        *,
        log_uri: str,
        retrain_dir: str,
        policy: OutgoingPolicy = DEFAULT_POLICY,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self._store = store
        self._policy = policy
        self._log_uri = log_uri
        self._retrain_dir = retrain_dir
        self._sleep = sleep

    def run(self, notice: Notice) -> None:
        """Run every action of ``notice``'s rule that this event concerns."""
        for action in notice.rule.actions:
            if not _concerns(action, notice.event.to_status):
                continue
            try:
                self._run_one(action, notice)
            except Exception as exc:  # one broken action spares the others
                self._log(notice, action.type, _target(action), Attempt(
                    1, False, datetime.now(UTC), None, f"{type(exc).__name__}: {exc}", 0.0
                ))  # fmt: skip

    def _run_one(self, action: AlertAction, notice: Notice) -> None:
        if isinstance(action, WebhookAction):
            self._post(action, action.url, notice, "webhook")
        elif isinstance(action, CommandAction):
            self._command(action.run, action.timeout, notice, "command")
        else:
            self._retrain(action, notice)

    def _post(
        self, action: WebhookAction | RetrainAction, url: str, notice: Notice, kind: str
    ) -> None:
        post_webhook(
            url,
            notice.body(),
            secret=action.secret_value(),
            headers={EVENT_HEADER: str(notice.event.id)},
            timeout=action.timeout,
            retries=action.retries,
            backoff=action.backoff,
            record=lambda attempt: self._log(notice, kind, redacted(url), attempt),
            policy=self._policy,
            sleep=self._sleep,
        )

    def _command(self, argv: list[str], timeout: timedelta, notice: Notice, kind: str) -> None:
        run_command(
            argv,
            notice.body(),
            child_environment(notice.environment()),
            timeout=timeout,
            record=lambda attempt: self._log(notice, kind, argv[0], attempt),
        )

    def _retrain(self, action: RetrainAction, notice: Notice) -> None:
        request = notice.request
        stamp = notice.event.time.strftime("%Y%m%dT%H%M%SZ")
        export = export_window(
            self._log_uri,
            request.model,
            version=request.version,
            since=request.since,
            until=request.until,
            directory=f"{self._retrain_dir}/{notice.rule_name}",
            name=f"{request.model}-{stamp}-{notice.event.id}",
        )
        handed = replace(notice, retrain={**export.to_dict(), "reason": notice.event.message})
        if action.run is not None:
            self._command(action.run, action.run_timeout, handed, "retrain")
        else:
            assert action.url is not None
            self._post(action, action.url, handed, "retrain")

    def _log(self, notice: Notice, kind: str, target: str, attempt: Attempt) -> None:
        delivery = NewAlertDelivery(
            event_id=notice.event.id,
            rule=notice.rule_name,
            time=attempt.time,
            action=kind,
            target=target,
            attempt=attempt.attempt,
            ok=attempt.ok,
            code=attempt.code,
            error=attempt.error,
            duration_s=attempt.duration_s,
        )
        if not attempt.ok:
            logger.warning(
                "alert %s: %s to %s failed (attempt %d): %s",
                notice.rule_name, kind, target, attempt.attempt, attempt.error,
            )  # fmt: skip
        with self._store.transaction() as session:
            session.add_alert_delivery(delivery)


def _concerns(action: AlertAction, status: AlertStatus) -> bool:
    if status is AlertStatus.FIRING:
        return True
    if status is AlertStatus.RESOLVED and not isinstance(action, RetrainAction):
        return action.send_resolved
    return False


def _target(action: AlertAction) -> str:
    if isinstance(action, CommandAction):
        return action.run[0]
    if isinstance(action, RetrainAction) and action.run is not None:
        return action.run[0]
    url = action.url
    return redacted(url) if url is not None else ""
