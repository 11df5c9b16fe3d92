"""The rollout's judgement: compare the canary with the champion and say what to do.

``decide`` is a pure function of the plan, both arms' numbers over the current step,
how long the step has run and the failures so far. It answers:

- ``WAIT``: not yet (the step has not baked, an arm has too few requests, labels that the
  plan requires have not arrived, or a check failed for the first times short of
  ``max_failures``);
- ``ADVANCE``: every check passed with enough data: the next step (or the promotion);
- ``ROLLBACK``: checks failed ``max_failures`` times: back to the last good champion;
- ``INCONCLUSIVE``: the step waited ``max_wait`` without the data to judge: stop and let
  a person look (``deploy resume`` or ``deploy abort``).

Each check compares one number: error rate (absolute increase), p99 latency (relative
increase beyond a slack in milliseconds), live accuracy (absolute drop, once both arms
have enough labelled rows) and drift share (absolute increase). A number that is
missing makes its check ``unknown``, which never fails a canary on its own.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from enum import StrEnum
from typing import Any

from modelport.config import format_duration
from modelport.domain.rollout_plan import RolloutPlan, RolloutThresholds


@dataclass(frozen=True)
class ArmNumbers:
    """What the prediction log says about one arm over the current step."""

    arm: str
    version: int
    requests: int
    errors: int = 0
    latency_p99_ms: float | None = None
    labelled: int = 0
    accuracy: float | None = None
    drift_share: float | None = None

    @property
    def error_rate(self) -> float | None:
        """Errors per request (None without requests)."""
        return self.errors / self.requests if self.requests else None

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form (audited with each decision)."""
        return {**vars(self), "error_rate": self.error_rate}


class Verdict(StrEnum):
    """What the controller does next."""

    ADVANCE = "advance"
    ROLLBACK = "rollback"
    WAIT = "wait"
    INCONCLUSIVE = "inconclusive"


class Outcome(StrEnum):
    """How one comparison came out."""

    PASSED = "passed"
    FAILED = "failed"
    UNKNOWN = "unknown"  # a number is missing: no judgement either way


@dataclass(frozen=True)
class Check:
    """One comparison: the canary's number, the champion's, and the canary's limit."""

    name: str
    outcome: Outcome
    canary: float | None
    champion: float | None
    limit: float | None
    message: str

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form."""
        return {**vars(self), "outcome": self.outcome.value}


@dataclass(frozen=True)
class Decision:
    """A verdict, why, the checks and numbers behind it, and the failures counted so far."""

    verdict: Verdict
    reason: str
    checks: tuple[Check, ...]
    failures: int
    canary: ArmNumbers
    champion: ArmNumbers

    @property
    def failed_checks(self) -> tuple[Check, ...]:
        """The checks that failed."""
        return tuple(check for check in self.checks if check.outcome is Outcome.FAILED)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form: what is audited and sent to the webhooks."""
        return {
            "verdict": self.verdict.value,
            "reason": self.reason,
            "failures": self.failures,
            "checks": [check.to_dict() for check in self.checks],
            "canary": self.canary.to_dict(),
            "champion": self.champion.to_dict(),
        }


def decide(
    plan: RolloutPlan,
    canary: ArmNumbers,
    champion: ArmNumbers,
    *,
    in_step: timedelta,
    failures: int = 0,
) -> Decision:
    """The verdict on the canary after ``in_step`` at the current step (see the module
    docstring); ``failures`` is the number of failed checks counted before this one."""
    checks = compare(plan.thresholds, canary, champion)

    def verdict(kind: Verdict, reason: str, counted: int = failures) -> Decision:
        return Decision(kind, reason, checks, counted, canary, champion)

    short = _not_ready(plan, canary, champion, in_step)
    if short is not None:
        return _wait_or_stop(plan, in_step, short, verdict)
    failed = [check for check in checks if check.outcome is Outcome.FAILED]
    if failed:
        counted = failures + 1
        what = "; ".join(check.message for check in failed)
        if counted >= plan.max_failures:
            return verdict(Verdict.ROLLBACK, f"{what} (failure {counted} of {plan.max_failures})",
                           counted)  # fmt: skip
        return verdict(
            Verdict.WAIT,
            f"{what} (failure {counted} of {plan.max_failures}: checking again after "
            f"{format_duration(plan.interval)})",
            counted,
        )
    accuracy = next(check for check in checks if check.name == "accuracy")
    if plan.thresholds.require_accuracy and accuracy.outcome is Outcome.UNKNOWN:
        return _wait_or_stop(plan, in_step, accuracy.message, verdict)
    passed = ", ".join(check.name for check in checks if check.outcome is Outcome.PASSED)
    return verdict(Verdict.ADVANCE, f"the canary is not worse than the champion on {passed}")


def _not_ready(
    plan: RolloutPlan, canary: ArmNumbers, champion: ArmNumbers, in_step: timedelta
) -> str | None:
    """Why the step cannot be judged yet, or None when it can."""
    if in_step < plan.bake:
        return (
            f"the step has run {format_duration(_whole(in_step))} of its "
            f"{format_duration(plan.bake)} bake time"
        )
    for role, numbers in (("canary", canary), ("champion", champion)):
        if numbers.requests < plan.min_requests:
            return (
                f"the {role} has {numbers.requests} of the {plan.min_requests} requests "
                "needed to judge it"
            )
    return None


def _wait_or_stop(
    plan: RolloutPlan, in_step: timedelta, why: str, verdict: Callable[[Verdict, str], Decision]
) -> Decision:
    if in_step >= plan.max_wait:
        return verdict(
            Verdict.INCONCLUSIVE,
            f"after {format_duration(_whole(in_step))} at this step {why}: stopped for a "
            "person to decide (deploy resume or deploy abort)",
        )
    return verdict(Verdict.WAIT, why)


def _whole(duration: timedelta) -> timedelta:
    return timedelta(seconds=int(duration.total_seconds()))


def compare(
    thresholds: RolloutThresholds, canary: ArmNumbers, champion: ArmNumbers
) -> tuple[Check, ...]:
    """Every check of the canary against the champion (error rate, p99 latency,
    accuracy, drift share)."""
    return (
        _error_rate(thresholds, canary, champion),
        _latency(thresholds, canary, champion),
        _accuracy(thresholds, canary, champion),
        _drift(thresholds, canary, champion),
    )


def _error_rate(t: RolloutThresholds, canary: ArmNumbers, champion: ArmNumbers) -> Check:
    ours, theirs = canary.error_rate, champion.error_rate
    if ours is None or theirs is None:
        return Check("error_rate", Outcome.UNKNOWN, ours, theirs, None, "no requests to compare")
    limit = theirs + t.max_error_rate_increase
    if ours > limit + 1e-12:
        message = (
            f"error rate {ours:.2%} is above the champion's {theirs:.2%} by more than "
            f"{t.max_error_rate_increase * 100:g} points"
        )
        return Check("error_rate", Outcome.FAILED, ours, theirs, limit, message)
    return Check("error_rate", Outcome.PASSED, ours, theirs, limit, f"error rate {ours:.2%}")


def _latency(t: RolloutThresholds, canary: ArmNumbers, champion: ArmNumbers) -> Check:
    ours, theirs = canary.latency_p99_ms, champion.latency_p99_ms
    if ours is None or theirs is None:
        return Check("latency_p99", Outcome.UNKNOWN, ours, theirs, None, "no latency to compare")
    limit = max(theirs * (1 + t.max_latency_increase), theirs + t.latency_slack_ms)
    if ours > limit:
        message = (
            f"p99 latency {ours:.1f} ms is above {limit:.1f} ms (the champion's {theirs:.1f} ms "
            f"+ {t.max_latency_increase:.0%}, at least {t.latency_slack_ms:g} ms)"
        )
        return Check("latency_p99", Outcome.FAILED, ours, theirs, limit, message)
    return Check("latency_p99", Outcome.PASSED, ours, theirs, limit, f"p99 latency {ours:.1f} ms")


def _accuracy(t: RolloutThresholds, canary: ArmNumbers, champion: ArmNumbers) -> Check:
    ours, theirs = canary.accuracy, champion.accuracy
    short = min(canary.labelled, champion.labelled)
    if ours is None or theirs is None or short < t.min_labels:
        message = (
            f"accuracy needs {t.min_labels} labelled rows per arm (canary "
            f"{canary.labelled}, champion {champion.labelled})"
        )
        return Check("accuracy", Outcome.UNKNOWN, ours, theirs, None, message)
    limit = theirs - t.max_accuracy_drop
    if ours < limit - 1e-12:
        message = (
            f"accuracy {ours:.2%} is below the champion's {theirs:.2%} by more than "
            f"{t.max_accuracy_drop * 100:g} points"
        )
        return Check("accuracy", Outcome.FAILED, ours, theirs, limit, message)
    return Check("accuracy", Outcome.PASSED, ours, theirs, limit, f"accuracy {ours:.2%}")


def _drift(t: RolloutThresholds, canary: ArmNumbers, champion: ArmNumbers) -> Check:
    ours, theirs = canary.drift_share, champion.drift_share
    if ours is None or theirs is None:
        return Check("drift_share", Outcome.UNKNOWN, ours, theirs, None, "no drift to compare")
    limit = theirs + t.max_drift_share_increase
    if ours > limit + 1e-12:
        message = (
            f"drift share {ours:.0%} is above the champion's {theirs:.0%} by more than "
            f"{t.max_drift_share_increase:.0%}"
        )
        return Check("drift_share", Outcome.FAILED, ours, theirs, limit, message)
    return Check("drift_share", Outcome.PASSED, ours, theirs, limit, f"drift share {ours:.0%}")
