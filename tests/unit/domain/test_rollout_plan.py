"""The rollout plan: steps users type, the checks on them, the stored state's JSON."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from modelport.domain.rollout_plan import (
    RolloutPlan,
    RolloutState,
    RolloutStatus,
    RolloutThresholds,
    parse_steps,
)
from modelport.errors import InvalidArgumentError


def test_steps_are_read_as_percentages() -> None:
    assert parse_steps("5,25,50,100") == (5.0, 25.0, 50.0, 100.0)
    assert parse_steps(" 1.5 , 10 ") == (1.5, 10.0)


@pytest.mark.parametrize(
    ("text", "words"),
    [
        ("5,x,100", "comma-separated percentages"),
        ("", "comma-separated percentages"),
        ("0,50,100", "above 0 and at most 100"),
        ("5,150", "above 0 and at most 100"),
        ("50,25,100", "must increase"),
        ("5,5,100", "must increase"),
        ("100", "a step below 100"),
    ],
)
def test_bad_steps_say_what_is_accepted(text: str, words: str) -> None:
    with pytest.raises(InvalidArgumentError, match=words) as caught:
        parse_steps(text)
    assert caught.value.field == "steps"


def test_trial_steps_leave_out_the_promotion() -> None:
    assert RolloutPlan(steps=(5, 25, 50, 100)).trial_steps == (5, 25, 50)
    # a plan that stops short of 100 still promotes after its last step passes
    assert RolloutPlan(steps=(10, 40)).trial_steps == (10, 40)


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"interval": timedelta(0)}, "interval"),
        ({"min_requests": 0}, "min_requests"),
        ({"max_failures": 0}, "max_failures"),
        ({"bake": timedelta(minutes=10), "max_wait": timedelta(minutes=5)}, "max_wait"),
    ],
)
def test_plans_that_cannot_work_are_refused(changes: dict[str, object], field: str) -> None:
    with pytest.raises(InvalidArgumentError) as caught:
        RolloutPlan(**changes)  # type: ignore[arg-type]
    assert caught.value.field == field


def test_negative_thresholds_are_refused() -> None:
    with pytest.raises(InvalidArgumentError, match="max_accuracy_drop"):
        RolloutThresholds(max_accuracy_drop=-0.1)
    with pytest.raises(InvalidArgumentError, match="min_labels"):
        RolloutThresholds(min_labels=0)


def test_a_plan_survives_its_json_form() -> None:
    plan = RolloutPlan(
        steps=(10, 50, 100),
        interval=timedelta(seconds=90),
        bake=timedelta(minutes=5),
        min_requests=500,
        max_failures=3,
        max_wait=timedelta(hours=2),
        thresholds=RolloutThresholds(max_latency_increase=0.5, require_accuracy=True),
    )
    data = plan.to_dict()
    assert data["interval"] == "90s" and data["bake"] == "5m" and data["max_wait"] == "2h"
    assert RolloutPlan.from_dict(data) == plan


def test_the_state_survives_its_json_form() -> None:
    now = datetime(2026, 12, 6, 15, 0, tzinfo=UTC)
    state = RolloutState(
        deployment="churn",
        model="churn",
        version=4,
        plan=RolloutPlan(),
        status=RolloutStatus.PAUSED,
        step=1,
        step_started_at=now,
        next_check_at=now + timedelta(minutes=1),
        started_at=now - timedelta(hours=1),
        champion=("churn", 3),
        failures=1,
        message="inconclusive",
        decisions=({"verdict": "advance", "weight": 5.0},),
        applied=False,
    )
    data = state.to_dict()
    assert data["weight"] == 25.0
    assert RolloutState.from_dict(data) == state


def test_only_the_newest_decisions_are_kept_in_the_state() -> None:
    now = datetime(2026, 12, 6, tzinfo=UTC)
    state = RolloutState(
        "churn", "churn", 4, RolloutPlan(), RolloutStatus.RUNNING, 0, now, now, now, ("churn", 3)
    )
    for number in range(30):
        state = state.with_decision({"n": number})
    assert [d["n"] for d in state.decisions] == list(range(10, 30))


def test_running_and_paused_rollouts_own_the_canary() -> None:
    assert RolloutStatus.RUNNING.active and RolloutStatus.PAUSED.active
    assert not any(
        s.active for s in (RolloutStatus.PROMOTED, RolloutStatus.ROLLED_BACK, RolloutStatus.ABORTED)
    )
