"""The rollout controller: one step at a time, state in the registry, a lease per rollout.

Each ``tick`` of a deployment's rollout:

1. takes (or renews) the lease ``rollout:<name>`` in the database: while one controller
   holds it, another does nothing for that rollout;
2. reads the state and finishes what a stopped controller left half done (the
   deployment follows the stored state, see ``rollout.apply``);
3. when the next check is due, reads both arms' numbers over the current step and asks
   ``decide`` (advance, roll back, wait, inconclusive);
4. stores the new state with a compare-and-set on its revision (a person's ``abort``
   in between wins: this controller's write is refused and it does nothing);
5. changes the deployment to match (audited with the decision's numbers), then emits
   ``rollout.step_decided`` and posts it to the rollout webhooks.

Plain waits (not enough data yet) move only the next check's time; every other
decision is audited, emitted and posted. ``start``, ``resume`` and ``abort`` are the
commands a person gives (``deploy rollout|resume|abort``).
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from modelport.domain.deployments import Deployment
from modelport.domain.rollout_plan import RolloutState, RolloutStatus
from modelport.errors import (
    InvalidArgumentError,
    ModelportError,
    StaleDeploymentError,
    StoreUnavailableError,
)
from modelport.rollout.apply import apply_state, canary_arm
from modelport.rollout.decision import Decision, decide
from modelport.rollout.notify import DecisionNotifier
from modelport.rollout.numbers import ArmNumbersSource
from modelport.rollout.records import RolloutRecords
from modelport.rollout.transitions import announcement, transition

if TYPE_CHECKING:
    from modelport.registry.service import RegistryService

logger = logging.getLogger("modelport.rollout")

EVENT = "rollout.step_decided"
_APPLY_ATTEMPTS = 3


def default_owner() -> str:
    """A name unique to this controller: host, process and a random part."""
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


@dataclass(frozen=True)
class StepOutcome:
    """What one tick did: the state after it, the decision when one was made, and
    ``note`` saying why nothing happened otherwise."""

    deployment: str
    state: RolloutState | None
    decision: Decision | None = None
    note: str = ""

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form (one line per tick under ``--json``)."""
        return {
            "deployment": self.deployment,
            "status": self.state.status.value if self.state is not None else None,
            "weight": self.state.weight if self.state is not None else None,
            "message": self.state.message if self.state is not None else None,
            "decision": self.decision.to_dict() if self.decision is not None else None,
            "note": self.note,
        }


class RolloutController:
    """Drives rollouts stored in ``registry`` with numbers from ``numbers``."""

    def __init__(
        self,
        registry: RegistryService,
        numbers: ArmNumbersSource,
        *,
        notifier: DecisionNotifier | None = None,
        owner: str | None = None,
        clock: Callable[[], datetime] | None = None,
        lease_ttl: timedelta = timedelta(seconds=30),
    ) -> None:
        self.registry = registry
        self.numbers = numbers
        self.notifier = notifier or DecisionNotifier(())
        self.owner = owner or default_owner()
        self.lease_ttl = lease_ttl
        self._clock = clock or registry.context.clock
        self.records = RolloutRecords(registry, self._clock)

    # ---------------------------------------------------------------------- ticks

    def tick(self, name: str) -> StepOutcome:
        """One look at ``name``'s rollout (see the module docstring)."""
        if not self.records.acquire(name, self.owner, self.lease_ttl):
            # another controller drives it: show where it is, decide nothing
            held = "another controller holds this rollout's lease"
            return StepOutcome(name, self.state(name), note=held)
        loaded = self.records.load(name)
        if loaded is None:
            self.records.release(name, self.owner)
            return StepOutcome(name, None, note="no rollout")
        state, revision = self.settle(*loaded)
        if state.status is not RolloutStatus.RUNNING:
            self.records.release(name, self.owner)  # nothing to do until a person acts
            return StepOutcome(name, state, note=f"the rollout is {state.status.value}")
        now = self._clock()
        if now < state.next_check_at:
            return StepOutcome(name, state, note=f"next check at {state.next_check_at:%H:%M:%S}")
        return self._check(state, revision, now)

    def tick_all(self) -> list[StepOutcome]:
        """One tick of every rollout that is running, paused or left half applied; a
        rollout that fails (a deployment deleted meanwhile, an unreadable log) is logged
        and tried again next time, the others go on; so is a database that cannot be
        reached."""
        try:
            names = self.records.pending()
        except StoreUnavailableError as exc:
            logger.error("rollouts: %s", exc)
            return [StepOutcome("*", None, note=f"error: {exc.message}")]
        return [self._tick_safely(name) for name in names]

    def _tick_safely(self, name: str) -> StepOutcome:
        try:
            return self.tick(name)
        except ModelportError as exc:
            logger.error("rollout of %s: %s", name, exc)
            return StepOutcome(name, None, note=f"error: {exc.message}")
        except Exception as exc:  # a bug or a broken log file must not stop the others
            logger.exception("rollout of %s failed", name)
            return StepOutcome(name, None, note=f"error: {type(exc).__name__}: {exc}")

    def follow(
        self,
        name: str,
        stop: threading.Event,
        *,
        poll: timedelta,
        report: Callable[[StepOutcome], None] = lambda _: None,
    ) -> RolloutState | None:
        """Tick ``name`` every ``poll`` until its rollout is no longer running (or
        ``stop`` is set); the last state. Each outcome goes to ``report``; a database
        that cannot be reached is reported and tried again."""
        state: RolloutState | None = None
        try:
            while not stop.is_set():
                try:
                    outcome = self.tick(name)
                    state = outcome.state if outcome.state is not None else self.state(name)
                except StoreUnavailableError as exc:  # try again after the poll
                    report(StepOutcome(name, state, note=f"error: {exc.message}"))
                    stop.wait(poll.total_seconds())
                    continue
                report(outcome)
                if state is None or state.status is not RolloutStatus.RUNNING:
                    break
                stop.wait(poll.total_seconds())
        finally:
            self.records.release(name, self.owner)
        return state

    def run(
        self,
        stop: threading.Event,
        *,
        poll: timedelta,
        report: Callable[[StepOutcome], None] = lambda _: None,
    ) -> None:
        """Tick every rollout every ``poll`` until ``stop`` is set (``deploy controller``);
        the leases are given up at the end, so that another controller takes over at
        once rather than after they lapse."""
        try:
            while not stop.is_set():
                for outcome in self.tick_all():
                    report(outcome)
                stop.wait(poll.total_seconds())
        finally:
            self.release_all()

    def release_all(self) -> None:
        """Give up this controller's leases (a lease held by another stays)."""
        for name in self.records.names():
            self.records.release(name, self.owner)

    def now(self) -> datetime:
        """The controller's clock."""
        return self._clock()

    def state(self, name: str) -> RolloutState | None:
        """The stored state of ``name``'s rollout, or None."""
        loaded = self.records.load(name)
        return loaded[0] if loaded is not None else None

    def close(self, timeout: float | None = 30.0) -> None:
        """Deliver the decisions still queued for the webhooks."""
        self.notifier.close(timeout)

    # ---------------------------------------------------------------------- steps

    def _check(self, state: RolloutState, revision: int, now: datetime) -> StepOutcome:
        deployment = self.registry.get_deployment(state.deployment)
        canary = canary_arm(deployment, state)
        if canary is None:  # settle stops a rollout whose canary left: not reached
            return StepOutcome(state.deployment, state, note="the canary arm is missing")
        champion = deployment.champion
        numbers = self.numbers(
            state.deployment, (champion, canary), since=state.step_started_at, until=now
        )
        decision = decide(
            state.plan,
            numbers[canary.name],
            numbers[champion.name],
            in_step=now - state.step_started_at,
            failures=state.failures,
        )
        step = transition(state, decision, now)
        stored = self.records.save(step.state, expected_revision=revision)
        if stored is None:
            return StepOutcome(state.deployment, state, note="another writer changed the rollout")
        if step.action is None:
            return StepOutcome(state.deployment, step.state, decision)
        details = announcement(step.state, decision, owner=self.owner, time=now)
        if not step.moves_arms or step.state.status is RolloutStatus.PROMOTED:
            # the promotion's own audit entry has no room for the numbers: this one has
            self.records.audit(deployment, step.action, reason=decision.reason, details=details)
        after, revision = self.settle(
            step.state, stored, action=step.action, details=details, decision=decision
        )
        if after.status is step.state.status:  # else settle announced why it stopped
            self.announce(
                after, announcement(after, decision, owner=self.owner, time=now), revision
            )
        return StepOutcome(state.deployment, after, decision)

    def settle(
        self,
        state: RolloutState,
        revision: int,
        *,
        action: str = "rollout.step",
        details: Mapping[str, Any] | None = None,
        decision: Decision | None = None,
    ) -> tuple[RolloutState, int]:
        """Make the deployment follow ``state`` (stored at ``revision``); store the state
        when that changed it (applied, or stopped: the canary left, gates refused).
        The state and its revision afterwards."""
        if state.applied and not state.status.active:
            return state, revision
        last = state.decisions[-1] if state.decisions else {}
        after, deployment = self._apply(state, action, details or last)
        if after == state:
            return state, revision
        stored = self.records.save(after, expected_revision=revision)
        if stored is None:
            return state, revision
        if after.status is not state.status:  # stopped by apply: canary left, gates refused
            self._stopped(deployment, after, stored, decision)
        return after, stored

    def _apply(
        self, state: RolloutState, action: str, details: Mapping[str, Any]
    ) -> tuple[RolloutState, Deployment]:
        """``apply_state``, read again when another writer changed the deployment in
        between (another controller finishing the same state, a person's change): the
        write then fails as stale, or the arm it changes is already gone. Applying is
        idempotent, so the next attempt sees what is left to do, if anything."""
        for _ in range(_APPLY_ATTEMPTS - 1):
            try:
                return apply_state(self.registry, state, action=action, details=details)
            except (StaleDeploymentError, InvalidArgumentError):
                continue
        return apply_state(self.registry, state, action=action, details=details)

    def _stopped(
        self,
        deployment: Deployment,
        state: RolloutState,
        revision: int,
        decision: Decision | None,
    ) -> None:
        action = f"rollout.{'pause' if state.status is RolloutStatus.PAUSED else 'abort'}"
        details = announcement(state, decision, owner=self.owner, time=self._clock())
        self.records.audit(deployment, action, reason=state.message, details=details)
        self.announce(state, details, revision)

    def announce(self, state: RolloutState, details: Mapping[str, Any], revision: int) -> None:
        """Emit ``rollout.step_decided`` to the registry's listeners and post it to the
        rollout webhooks (after the decision was stored and applied)."""
        self.registry.context.emit(EVENT, details)
        self.notifier.send(revision, details)
        logger.info("rollout of %s: %s", state.deployment, state.message)
