"""Posting registry events to the ``[webhooks.NAME]`` receivers, off the writer's path.

The registry calls the dispatcher after a change has committed; the dispatcher only
queues the event (one queue and one thread per receiver, so a slow receiver delays
neither the write nor the other receivers). ``close`` waits a bounded time for what is
queued, so that the event of a CLI command reaches its receivers before the process
exits; a receiver that is still failing then is logged, never waited on for ever.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections.abc import Mapping
from typing import Any

from modelport.config import WebhookSettings
from modelport.outgoing import DEFAULT_POLICY, OutgoingPolicy
from modelport.webhooks.envelope import NAME_HEADER, Envelope
from modelport.webhooks.sending import EVENT_HEADER, Attempt, Sleep, post_webhook, redacted

logger = logging.getLogger("modelport.webhooks")

CLOSE_WAIT_S = 15.0
"""How long ``close`` waits for queued deliveries (retries included) before giving up."""


def deliver(
    name: str,
    hook: WebhookSettings,
    envelope: Envelope,
    *,
    policy: OutgoingPolicy,
    sleep: Sleep = time.sleep,
) -> list[Attempt]:
    """Post ``envelope`` to the receiver ``name`` now, with its retries; every attempt.
    A failed attempt is logged with the receiver's name; ``policy`` says which
    addresses may be called."""
    attempts: list[Attempt] = []
    secret = hook.secret_value()
    if hook.secret_env and secret is None:
        logger.warning(
            "webhook %s: %s is unset or empty, so %s is sent unsigned",
            name, hook.secret_env, envelope.event,
        )  # fmt: skip

    def record(attempt: Attempt) -> None:
        attempts.append(attempt)
        if not attempt.ok:
            logger.warning(
                "webhook %s: %s %s to %s failed (attempt %d of %d): %s",
                name, envelope.event, envelope.id, redacted(hook.url), attempt.attempt,
                hook.retries + 1, attempt.error,
            )  # fmt: skip

    post_webhook(
        hook.url,
        envelope.body(),
        secret=secret,
        headers={EVENT_HEADER: envelope.id, NAME_HEADER: envelope.event},
        timeout=hook.timeout,
        retries=hook.retries,
        backoff=hook.backoff,
        record=record,
        policy=policy,
        sleep=sleep,
    )
    return attempts


class _Receiver:
    """One receiver's queue and the thread that empties it (started at its first event)."""

    def __init__(
        self, name: str, hook: WebhookSettings, policy: OutgoingPolicy, sleep: Sleep
    ) -> None:
        self.name = name
        self.hook = hook
        self._policy = policy
        self._sleep = sleep
        self._queue: queue.SimpleQueue[Envelope | None] = queue.SimpleQueue()
        self._idle = threading.Condition()
        self._pending = 0
        self._thread: threading.Thread | None = None

    def put(self, envelope: Envelope) -> None:
        with self._idle:
            self._pending += 1
            if self._thread is None:
                self._thread = threading.Thread(
                    target=self._run, name=f"modelport-webhook-{self.name}", daemon=True
                )
                self._thread.start()
        self._queue.put(envelope)

    def wait(self, deadline: float) -> int:
        """Wait until the queue is empty or ``deadline`` (monotonic); what is left."""
        with self._idle:
            self._idle.wait_for(lambda: self._pending == 0, max(0.0, deadline - time.monotonic()))
            return self._pending

    def stop(self) -> None:
        if self._thread is not None:
            self._queue.put(None)

    def _run(self) -> None:
        while (envelope := self._queue.get()) is not None:
            try:
                attempts = deliver(
                    self.name, self.hook, envelope, policy=self._policy, sleep=self._sleep
                )
                if not attempts or not attempts[-1].ok:
                    logger.error(
                        "webhook %s: gave up on %s %s", self.name, envelope.event, envelope.id
                    )
            except Exception:  # a broken receiver must not end the thread
                logger.exception("webhook %s: cannot deliver %s", self.name, envelope.event)
            with self._idle:
                self._pending -= 1
                self._idle.notify_all()


class WebhookDispatcher:
    """The registry's event listener: queues each event for every receiver that
    subscribes to it, and delivers it in the background."""

    def __init__(
        self,
        hooks: Mapping[str, WebhookSettings],
        *,
        policy: OutgoingPolicy = DEFAULT_POLICY,
        close_wait_s: float = CLOSE_WAIT_S,
        sleep: Sleep = time.sleep,
    ) -> None:
        self._receivers = [
            _Receiver(name, hook, policy, sleep) for name, hook in sorted(hooks.items())
        ]
        self._close_wait_s = close_wait_s
        self._closed = False

    def __call__(self, event: str, payload: Mapping[str, Any]) -> None:
        """Queue ``event`` (called by the registry after its change committed)."""
        if self._closed:
            logger.warning("webhooks closed: %s not sent", event)
            return
        envelope = Envelope(event, payload)
        for receiver in self._receivers:
            if receiver.hook.wants(event):
                receiver.put(envelope)

    def flush(self, timeout_s: float) -> dict[str, int]:
        """Wait up to ``timeout_s`` in all for the queued deliveries; the receivers that
        still have some, with how many."""
        deadline = time.monotonic() + timeout_s
        left = {receiver.name: receiver.wait(deadline) for receiver in self._receivers}
        return {name: count for name, count in left.items() if count}

    def close(self) -> None:
        """Deliver what is queued (waiting at most ``close_wait_s``), then stop."""
        if self._closed:
            return
        self._closed = True
        for name, count in self.flush(self._close_wait_s).items():
            logger.error(
                "webhook %s: %d event(s) still undelivered after %gs; not waiting longer",
                name, count, self._close_wait_s,
            )  # fmt: skip
        for receiver in self._receivers:
            receiver.stop()
