"""From a decision to the rollout's next state (pure), and the document that tells of it.

============  =======================================================  ==================
verdict       next state                                               audited as
============  =======================================================  ==================
advance       next step (its weight, a fresh step window), or          rollout.advance /
              promoted after the last step below 100                   rollout.promote
rollback      rolled back (the canary leaves)                          rollout.rollback
wait          same step, next check one interval later; a failed       rollout.hold (when
              check adds to the failures                               a check failed)
inconclusive  paused until a person resumes or aborts it               rollout.pause
============  =======================================================  ==================
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any

from modelport.domain.rollout_plan import RolloutState, RolloutStatus
from modelport.rollout.decision import Decision, Verdict


@dataclass(frozen=True)
class Step:
    """The next state, the audit action (None: a plain wait, not audited) and whether
    the deployment's arms change."""

    state: RolloutState
    action: str | None
    moves_arms: bool


def transition(state: RolloutState, decision: Decision, now: datetime) -> Step:
    """The state after ``decision`` taken at ``now`` (see the module docstring)."""
    plan = state.plan
    record = decision_record(state, decision, now)
    if decision.verdict is Verdict.ADVANCE and state.last_step:
        promoted = state.with_decision(
            record,
            status=RolloutStatus.PROMOTED,
            applied=False,
            message=f"promoted to champion: {decision.reason}",
        )
        return Step(promoted, "rollout.promote", moves_arms=True)
    if decision.verdict is Verdict.ADVANCE:
        weight = plan.trial_steps[state.step + 1]
        advanced = state.with_decision(
            record,
            step=state.step + 1,
            step_started_at=now,
            next_check_at=now + plan.interval,
            applied=False,
            message=f"advanced to {weight:g}%: {decision.reason}",
        )
        return Step(advanced, "rollout.advance", moves_arms=True)
    if decision.verdict is Verdict.ROLLBACK:
        rolled = state.with_decision(
            record,
            status=RolloutStatus.ROLLED_BACK,
            failures=decision.failures,
            applied=False,
            message=f"rolled back: {decision.reason}",
        )
        return Step(rolled, "rollout.rollback", moves_arms=True)
    if decision.verdict is Verdict.INCONCLUSIVE:
        paused = state.with_decision(
            record, status=RolloutStatus.PAUSED, message=f"inconclusive: {decision.reason}"
        )
        return Step(paused, "rollout.pause", moves_arms=False)
    return _wait(state, decision, now, record)


def _wait(state: RolloutState, decision: Decision, now: datetime, record: dict[str, Any]) -> Step:
    later = now + state.plan.interval
    if decision.failures > state.failures:  # a check failed, short of max_failures
        held = state.with_decision(
            record,
            failures=decision.failures,
            next_check_at=later,
            message=f"holding: {decision.reason}",
        )
        return Step(held, "rollout.hold", moves_arms=False)
    waiting = replace(state, next_check_at=later, message=decision.reason)
    return Step(waiting, None, moves_arms=False)


def decision_record(state: RolloutState, decision: Decision, now: datetime) -> dict[str, Any]:
    """A decision as the state keeps it: when, at which step, and the numbers."""
    return {
        "time": now.isoformat(),
        "step": state.step,
        "weight": state.weight,
        **decision.to_dict(),
    }


def announcement(
    state: RolloutState, decision: Decision | None, *, owner: str, time: datetime
) -> dict[str, Any]:
    """The ``rollout.step_decided`` payload: audited as the details, emitted to the
    registry's listeners and posted to the rollout webhooks."""
    return {
        "event": "rollout.step_decided",
        "deployment": state.deployment,
        "model": state.model,
        "version": state.version,
        "status": state.status.value,
        "step": state.step,
        "weight": state.weight,
        "steps": list(state.plan.steps),
        "failures": state.failures,
        "message": state.message,
        "champion": {"model": state.champion[0], "version": state.champion[1]},
        "decision": decision.to_dict() if decision is not None else None,
        "time": time.isoformat(),
        "controller": owner,
    }
