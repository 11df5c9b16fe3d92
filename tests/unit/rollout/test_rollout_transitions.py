"""From a decision to the next state of the rollout (pure)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from modelport.domain.rollout_plan import RolloutPlan, RolloutState, RolloutStatus
from modelport.rollout.decision import ArmNumbers, Decision, Verdict
from modelport.rollout.transitions import announcement, transition

START = datetime(2026, 12, 6, 15, 0, tzinfo=UTC)
NOW = START + timedelta(minutes=5)
PLAN = RolloutPlan(steps=(5, 25, 50, 100), interval=timedelta(minutes=1))


def state(step: int = 0, failures: int = 0) -> RolloutState:
    return RolloutState(
        deployment="churn",
        model="churn",
        version=4,
        plan=PLAN,
        status=RolloutStatus.RUNNING,
        step=step,
        step_started_at=START,
        next_check_at=START + timedelta(minutes=1),
        started_at=START,
        champion=("churn", 3),
        failures=failures,
    )


def decision(verdict: Verdict, failures: int = 0, reason: str = "because") -> Decision:
    return Decision(
        verdict,
        reason,
        (),
        failures,
        ArmNumbers("canary", 4, requests=200),
        ArmNumbers("champion", 3, requests=4000),
    )


def test_advance_moves_to_the_next_weight_with_a_fresh_window() -> None:
    step = transition(state(), decision(Verdict.ADVANCE), NOW)
    assert step.action == "rollout.advance" and step.moves_arms
    after = step.state
    assert (after.step, after.weight, after.status) == (1, 25.0, RolloutStatus.RUNNING)
    assert after.step_started_at == NOW and after.next_check_at == NOW + timedelta(minutes=1)
    assert after.message == "advanced to 25%: because"
    assert after.decisions[-1]["verdict"] == "advance" and after.decisions[-1]["weight"] == 5.0


def test_advance_from_the_last_step_below_100_promotes() -> None:
    step = transition(state(step=2), decision(Verdict.ADVANCE), NOW)
    assert step.action == "rollout.promote"
    assert step.state.status is RolloutStatus.PROMOTED
    assert not step.state.applied  # the deployment follows next


def test_rollback_ends_the_rollout_until_applied() -> None:
    step = transition(state(failures=1), decision(Verdict.ROLLBACK, failures=2), NOW)
    assert step.action == "rollout.rollback" and step.moves_arms
    assert step.state.status is RolloutStatus.ROLLED_BACK
    assert step.state.failures == 2 and not step.state.applied


def test_inconclusive_pauses_without_moving_arms() -> None:
    step = transition(state(), decision(Verdict.INCONCLUSIVE, reason="no data"), NOW)
    assert step.action == "rollout.pause" and not step.moves_arms
    assert step.state.status is RolloutStatus.PAUSED
    assert step.state.message == "inconclusive: no data"


def test_a_counted_failure_is_a_hold_that_is_audited() -> None:
    step = transition(state(), decision(Verdict.WAIT, failures=1), NOW)
    assert step.action == "rollout.hold" and not step.moves_arms
    assert step.state.failures == 1
    assert step.state.next_check_at == NOW + timedelta(minutes=1)
    assert step.state.decisions[-1]["verdict"] == "wait"


def test_a_plain_wait_only_moves_the_next_check() -> None:
    before = state()
    step = transition(before, decision(Verdict.WAIT, reason="too few requests"), NOW)
    assert step.action is None
    assert step.state.decisions == before.decisions
    assert step.state.next_check_at == NOW + timedelta(minutes=1)
    assert step.state.message == "too few requests"
    assert step.state.step_started_at == START


def test_the_announcement_names_the_deployment_step_and_numbers() -> None:
    made = decision(Verdict.ADVANCE)
    after = transition(state(), made, NOW).state
    payload = announcement(after, made, owner="host:1:abc", time=NOW)
    assert payload["event"] == "rollout.step_decided"
    assert (payload["deployment"], payload["version"], payload["weight"]) == ("churn", 4, 25.0)
    assert payload["decision"]["verdict"] == "advance"
    assert payload["decision"]["canary"]["requests"] == 200
    assert payload["champion"] == {"model": "churn", "version": 3}
    assert payload["controller"] == "host:1:abc"
