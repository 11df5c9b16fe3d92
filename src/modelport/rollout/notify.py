"""Sending rollout decisions to the webhooks of ``[[rollout.webhooks]]``.

Each decision is POSTed as JSON, signed and retried exactly as the alert webhooks are
(``webhooks.sending.post_webhook``: ``X-Modelport-Signature`` over the body, retries
after timeouts, 429 and 5xx with doubling back-off; ``X-Modelport-Event`` carries the
rollout state's revision and ``X-Modelport-Event-Name`` the event's name). Deliveries run on a
background thread so that a slow receiver never holds the controller past its lease;
``close`` waits for those under way. Every attempt that fails is logged.
"""

from __future__ import annotations

import json
import logging
import queue
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from modelport.config import RolloutWebhook
from modelport.outgoing import DEFAULT_POLICY, OutgoingPolicy
from modelport.webhooks.envelope import NAME_HEADER
from modelport.webhooks.sending import EVENT_HEADER, Attempt, post_webhook, redacted

logger = logging.getLogger("modelport.rollout")

_STOP = object()
EVENT_NAME = "rollout.step_decided"


class DecisionNotifier:
    """Delivers rollout decisions to webhooks, one after another, off the caller's thread."""

    def __init__(
        self,
        webhooks: Sequence[RolloutWebhook],
        *,
        policy: OutgoingPolicy = DEFAULT_POLICY,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.webhooks = tuple(webhooks)
        self._policy = policy
        self._sleep = sleep
        self._queue: queue.Queue[tuple[int, bytes] | object] = queue.Queue()
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()
        self.delivered = 0  # decisions every webhook accepted
        self.failed = 0  # decisions some webhook refused after its retries

    def send(self, event_id: int, payload: Mapping[str, Any]) -> None:
        """Queue ``payload`` for every webhook (nothing happens without webhooks)."""
        if not self.webhooks:
            return
        body = json.dumps(payload, separators=(",", ":"), default=str).encode()
        with self._lock:
            if self._thread is None:
                self._thread = threading.Thread(
                    target=self._drain, name="modelport-rollout-webhooks", daemon=True
                )
                self._thread.start()
        self._queue.put((event_id, body))

    def close(self, timeout: float | None = 30.0) -> None:
        """Deliver what is queued (waiting at most ``timeout`` seconds), then stop."""
        with self._lock:
            thread, self._thread = self._thread, None
        if thread is None:
            return
        self._queue.put(_STOP)
        thread.join(timeout)

    def _drain(self) -> None:
        while True:
            item = self._queue.get()
            if item is _STOP:
                return
            assert isinstance(item, tuple)
            event_id, body = item
            ok = all([self._post(hook, event_id, body) for hook in self.webhooks])
            if ok:
                self.delivered += 1
            else:
                self.failed += 1

    def _post(self, hook: RolloutWebhook, event_id: int, body: bytes) -> bool:
        def record(attempt: Attempt) -> None:
            if not attempt.ok:
                logger.warning(
                    "rollout decision %d to %s failed (attempt %d): %s",
                    event_id, redacted(hook.url), attempt.attempt, attempt.error,
                )  # fmt: skip

        try:
            return post_webhook(
                hook.url,
                body,
                secret=hook.secret_value(),
                headers={EVENT_HEADER: str(event_id), NAME_HEADER: EVENT_NAME},
                timeout=hook.timeout,
                retries=hook.retries,
                backoff=hook.backoff,
                record=record,
                policy=self._policy,
                sleep=self._sleep,
            )
        except Exception:  # a broken receiver never stops the controller
            logger.exception("rollout decision %d to %s failed", event_id, redacted(hook.url))
            return False
