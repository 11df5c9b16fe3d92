"""The rollout's judgement: when it waits, advances, rolls back or asks a person."""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta

import pytest

from modelport.domain.rollout_plan import RolloutPlan, RolloutThresholds
from modelport.rollout.decision import ArmNumbers, Outcome, Verdict, compare, decide

PLAN = RolloutPlan(
    steps=(5, 25, 50, 100),
    interval=timedelta(seconds=60),
    bake=timedelta(minutes=5),
    min_requests=100,
    max_failures=2,
    max_wait=timedelta(minutes=30),
)
BAKED = timedelta(minutes=6)
CHAMPION = ArmNumbers("champion", 3, requests=10_000, errors=10, latency_p99_ms=20.0,
                      labelled=2_000, accuracy=0.90, drift_share=0.1)  # fmt: skip
CANARY = ArmNumbers("canary", 4, requests=500, errors=1, latency_p99_ms=21.0,
                    labelled=100, accuracy=0.91, drift_share=0.1)  # fmt: skip


def test_a_canary_as_good_as_the_champion_advances() -> None:
    decision = decide(PLAN, CANARY, CHAMPION, in_step=BAKED)
    assert decision.verdict is Verdict.ADVANCE
    assert [c.outcome for c in decision.checks] == [Outcome.PASSED] * 4
    assert decision.failures == 0
    assert "not worse than the champion" in decision.reason


def test_it_waits_for_the_bake_time() -> None:
    decision = decide(PLAN, CANARY, CHAMPION, in_step=timedelta(minutes=2))
    assert decision.verdict is Verdict.WAIT
    assert "2m of its 5m bake time" in decision.reason


def test_it_waits_for_enough_canary_requests() -> None:
    few = replace(CANARY, requests=40, errors=30)  # terrible, but too few to judge
    decision = decide(PLAN, few, CHAMPION, in_step=BAKED)
    assert decision.verdict is Verdict.WAIT
    assert "canary has 40 of the 100 requests" in decision.reason
    assert decision.failures == 0


def test_it_waits_for_enough_champion_requests_too() -> None:
    decision = decide(PLAN, CANARY, replace(CHAMPION, requests=99), in_step=BAKED)
    assert decision.verdict is Verdict.WAIT
    assert "champion has 99" in decision.reason


def test_waiting_past_max_wait_stops_for_a_person() -> None:
    few = replace(CANARY, requests=12)
    decision = decide(PLAN, few, CHAMPION, in_step=timedelta(minutes=30))
    assert decision.verdict is Verdict.INCONCLUSIVE
    assert "after 30m" in decision.reason and "12 of the 100" in decision.reason
    assert "deploy resume or deploy abort" in decision.reason


def test_a_first_failed_check_holds_and_counts() -> None:
    worse = replace(CANARY, errors=30)  # 6% against 0.1%
    decision = decide(PLAN, worse, CHAMPION, in_step=BAKED, failures=0)
    assert decision.verdict is Verdict.WAIT
    assert decision.failures == 1
    assert [c.name for c in decision.failed_checks] == ["error_rate"]
    assert "failure 1 of 2" in decision.reason and "checking again after 1m" in decision.reason


def test_max_failures_rolls_back() -> None:
    worse = replace(CANARY, errors=30)
    decision = decide(PLAN, worse, CHAMPION, in_step=BAKED, failures=1)
    assert decision.verdict is Verdict.ROLLBACK
    assert decision.failures == 2
    assert "error rate 6.00% is above the champion's 0.10%" in decision.reason


def test_one_allowed_failure_rolls_back_at_once() -> None:
    plan = replace(PLAN, max_failures=1)
    decision = decide(plan, replace(CANARY, latency_p99_ms=200.0), CHAMPION, in_step=BAKED)
    assert decision.verdict is Verdict.ROLLBACK
    assert decision.failed_checks[0].name == "latency_p99"


@pytest.mark.parametrize(
    ("canary_ms", "champion_ms", "outcome"),
    [
        (24.0, 20.0, Outcome.PASSED),  # +20%: at the limit
        (24.5, 20.0, Outcome.PASSED),  # above +20% but within the 5 ms slack
        (25.5, 20.0, Outcome.FAILED),  # beyond both
        (1.9, 1.0, Outcome.PASSED),  # +90% of a millisecond: noise
        (130.0, 100.0, Outcome.FAILED),
    ],
)
def test_latency_is_judged_relative_with_a_slack(
    canary_ms: float, champion_ms: float, outcome: Outcome
) -> None:
    checks = compare(
        RolloutThresholds(),
        replace(CANARY, latency_p99_ms=canary_ms),
        replace(CHAMPION, latency_p99_ms=champion_ms),
    )
    assert checks[1].name == "latency_p99" and checks[1].outcome is outcome


def test_accuracy_fails_on_a_drop_beyond_the_threshold() -> None:
    decision = decide(PLAN, replace(CANARY, accuracy=0.85), CHAMPION, in_step=BAKED)
    failed = decision.failed_checks
    assert [c.name for c in failed] == ["accuracy"]
    assert failed[0].limit == pytest.approx(0.88)
    assert "accuracy 85.00% is below the champion's 90.00% by more than 2 points" in (
        failed[0].message
    )


def test_accuracy_without_enough_labels_is_unknown_and_does_not_block() -> None:
    unlabelled = replace(CANARY, labelled=10, accuracy=0.2)
    decision = decide(PLAN, unlabelled, CHAMPION, in_step=BAKED)
    assert decision.verdict is Verdict.ADVANCE
    accuracy = decision.checks[2]
    assert accuracy.outcome is Outcome.UNKNOWN
    assert "50 labelled rows per arm (canary 10, champion 2000)" in accuracy.message


def test_required_accuracy_waits_for_labels_then_stops() -> None:
    plan = replace(PLAN, thresholds=RolloutThresholds(require_accuracy=True))
    unlabelled = replace(CANARY, labelled=0, accuracy=None)
    assert decide(plan, unlabelled, CHAMPION, in_step=BAKED).verdict is Verdict.WAIT
    late = decide(plan, unlabelled, CHAMPION, in_step=timedelta(hours=1))
    assert late.verdict is Verdict.INCONCLUSIVE
    assert "labelled rows" in late.reason


def test_drift_share_increase_fails() -> None:
    decision = decide(PLAN, replace(CANARY, drift_share=0.5), CHAMPION, in_step=BAKED)
    assert [c.name for c in decision.failed_checks] == ["drift_share"]


def test_missing_numbers_are_unknown_never_failures() -> None:
    bare = ArmNumbers("canary", 4, requests=500)
    decision = decide(PLAN, bare, replace(CHAMPION, latency_p99_ms=None), in_step=BAKED)
    outcomes = {c.name: c.outcome for c in decision.checks}
    assert outcomes == {
        "error_rate": Outcome.PASSED,
        "latency_p99": Outcome.UNKNOWN,
        "accuracy": Outcome.UNKNOWN,
        "drift_share": Outcome.UNKNOWN,
    }
    assert decision.verdict is Verdict.ADVANCE


def test_error_rate_increase_at_the_threshold_passes() -> None:
    champion = replace(CHAMPION, requests=1000, errors=10)  # 1%
    canary = replace(CANARY, requests=1000, errors=20)  # 2%: exactly one point more
    assert compare(RolloutThresholds(), canary, champion)[0].outcome is Outcome.PASSED
    assert compare(RolloutThresholds(), replace(canary, errors=21), champion)[0].outcome is (
        Outcome.FAILED
    )


def test_the_decision_carries_its_numbers() -> None:
    data = decide(PLAN, CANARY, CHAMPION, in_step=BAKED).to_dict()
    assert data["verdict"] == "advance"
    assert data["canary"]["error_rate"] == pytest.approx(0.002)
    assert data["champion"]["requests"] == 10_000
    assert {c["name"] for c in data["checks"]} == {
        "error_rate", "latency_p99", "accuracy", "drift_share",
    }  # fmt: skip
