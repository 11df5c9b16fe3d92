"""A progressive rollout's plan and the controller's state, as plain values.

A *plan* says how a candidate version reaches all the traffic of a deployment: the
canary's weight at each step (``5,25,50,100``), how often the canary is compared with
the champion (``interval``), how long a step runs at least (``bake``), how many requests
the canary needs before it is judged (``min_requests``), how many failed checks roll it
back (``max_failures``), how long a step may wait for enough data before the controller
stops and asks a person (``max_wait``), and the thresholds of each comparison.

The *state* is what the controller keeps in the registry (``RolloutRecord.state``, as
``RolloutState.to_dict()``): the step it is on, when that step started, when it checks
next, the failures so far, and the last decisions with their numbers. A restarted
controller reads it and carries on where the last one stopped.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from enum import StrEnum
from itertools import pairwise
from typing import Any

from modelport.config import format_duration, parse_duration
from modelport.errors import InvalidArgumentError

FULL_WEIGHT = 100.0
KEPT_DECISIONS = 20  # the newest decisions kept in the state (all are in the audit trail)


@dataclass(frozen=True)
class RolloutThresholds:
    """How much worse than the champion the canary may be before a check fails.

    Error rates and accuracies are shares (0.01 is one percentage point); the latency
    limit is relative to the champion's p99 (0.2: 20% slower), ignoring differences
    below ``latency_slack_ms``; drift shares are the share of input columns that
    drifted. Accuracy is judged once both arms have ``min_labels`` labelled rows.
    """

    max_error_rate_increase: float = 0.01
    max_latency_increase: float = 0.2
    latency_slack_ms: float = 5.0
    max_accuracy_drop: float = 0.02
    min_labels: int = 50
    max_drift_share_increase: float = 0.2
    require_accuracy: bool = False

    def __post_init__(self) -> None:
        for name in (
            "max_error_rate_increase",
            "max_latency_increase",
            "latency_slack_ms",
            "max_accuracy_drop",
            "max_drift_share_increase",
        ):
            value = getattr(self, name)
            if not (isinstance(value, int | float) and math.isfinite(value) and value >= 0):
                raise InvalidArgumentError(
                    f"rollout threshold {name} must be a number of 0 or more, not {value!r}",
                    field=name,
                )
        if self.min_labels < 1:
            raise InvalidArgumentError(
                f"rollout threshold min_labels must be 1 or more, not {self.min_labels}",
                field="min_labels",
            )

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form."""
        return dict(vars(self))

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> RolloutThresholds:
        """Inverse of ``to_dict`` (missing keys take their defaults)."""
        known = {k: data[k] for k in cls.__dataclass_fields__ if k in data}
        return cls(**known)


@dataclass(frozen=True)
class RolloutPlan:
    """The steps of a rollout and when each may advance; see the module docstring."""

    steps: tuple[float, ...] = (5.0, 25.0, 50.0, 100.0)
    interval: timedelta = timedelta(seconds=60)
    bake: timedelta = timedelta(seconds=60)
    min_requests: int = 100
    max_failures: int = 2
    max_wait: timedelta = timedelta(minutes=30)
    thresholds: RolloutThresholds = field(default_factory=RolloutThresholds)

    def __post_init__(self) -> None:
        check_steps(self.steps)
        if self.interval <= timedelta(0):
            raise InvalidArgumentError(
                "the rollout interval must be longer than 0", field="interval"
            )
        if self.bake < timedelta(0) or self.max_wait < timedelta(0):
            raise InvalidArgumentError("bake and max_wait cannot be negative", field="bake")
        if self.max_wait < self.bake:
            raise InvalidArgumentError(
                f"max_wait ({format_duration(self.max_wait)}) must be at least the bake time "
                f"({format_duration(self.bake)}): a step cannot be judged before it has baked",
                field="max_wait",
            )
        if self.min_requests < 1:
            raise InvalidArgumentError("min_requests must be 1 or more", field="min_requests")
        if self.max_failures < 1:
            raise InvalidArgumentError("max_failures must be 1 or more", field="max_failures")

    @property
    def trial_steps(self) -> tuple[float, ...]:
        """The steps where the canary is judged (every one below 100: reaching 100 is the
        promotion)."""
        return tuple(step for step in self.steps if step < FULL_WEIGHT)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form, durations written the way the config writes them."""
        return {
            "steps": list(self.steps),
            "interval": format_duration(self.interval),
            "bake": format_duration(self.bake),
            "min_requests": self.min_requests,
            "max_failures": self.max_failures,
            "max_wait": format_duration(self.max_wait),
            "thresholds": self.thresholds.to_dict(),
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> RolloutPlan:
        """Inverse of ``to_dict``."""
        return cls(
            steps=tuple(float(step) for step in data["steps"]),
            interval=parse_duration(data["interval"]),
            bake=parse_duration(data["bake"]),
            min_requests=int(data["min_requests"]),
            max_failures=int(data["max_failures"]),
            max_wait=parse_duration(data["max_wait"]),
            thresholds=RolloutThresholds.from_dict(data.get("thresholds", {})),
        )


def parse_steps(text: str) -> tuple[float, ...]:
    """``5,25,50,100`` as canary weights; raises ``InvalidArgumentError`` naming the fix."""
    parts = [part.strip() for part in text.split(",")]
    try:
        steps = tuple(float(part) for part in parts)
    except ValueError:
        raise InvalidArgumentError(
            f"steps {text!r} are not comma-separated percentages such as 5,25,50,100",
            field="steps",
        ) from None
    return check_steps(steps)


def check_steps(steps: Sequence[float]) -> tuple[float, ...]:
    """The steps, unless they are not increasing percentages in (0, 100] with at least
    one step below 100 (raises ``InvalidArgumentError``)."""
    shown = ",".join(f"{step:g}" for step in steps)
    if not steps or any(not (0.0 < step <= FULL_WEIGHT) for step in steps):
        raise InvalidArgumentError(
            f"rollout steps [{shown}] must be percentages above 0 and at most 100",
            field="steps",
        )
    if any(later <= earlier for earlier, later in pairwise(steps)):
        raise InvalidArgumentError(
            f"rollout steps [{shown}] must increase (e.g. 5,25,50,100)", field="steps"
        )
    if steps[0] >= FULL_WEIGHT:
        raise InvalidArgumentError(
            "a rollout needs a step below 100 where the canary is compared with the "
            "champion (e.g. 10,100); to switch at once use `deploy promote`",
            field="steps",
        )
    return tuple(float(step) for step in steps)


class RolloutStatus(StrEnum):
    """Where a rollout is."""

    RUNNING = "running"  # the controller checks the canary every interval
    PAUSED = "paused"  # inconclusive: waits for `deploy resume` or `deploy abort`
    PROMOTED = "promoted"  # the candidate became the champion
    ROLLED_BACK = "rolled_back"  # the canary did worse and was removed
    ABORTED = "aborted"  # a person stopped it; the canary was removed

    @property
    def active(self) -> bool:
        """Whether the rollout still owns the deployment's canary."""
        return self in (RolloutStatus.RUNNING, RolloutStatus.PAUSED)


@dataclass(frozen=True)
class RolloutState:
    """One deployment's rollout as the controller keeps it (see the module docstring).

    ``step`` indexes ``plan.trial_steps``; ``champion`` is the (model, version) that
    answered before the rollout, where a rollback returns. ``applied`` is False between
    storing a decision that moves the arms and the deployment following it, so that a
    controller that stops in between is finished by the next one.
    """

    deployment: str
    model: str
    version: int
    plan: RolloutPlan
    status: RolloutStatus
    step: int
    step_started_at: datetime
    next_check_at: datetime
    started_at: datetime
    champion: tuple[str, int]
    failures: int = 0
    message: str = ""
    decisions: tuple[Mapping[str, Any], ...] = ()
    applied: bool = True  # False from a decision until the deployment follows it

    @property
    def weight(self) -> float:
        """The canary's weight at the current step."""
        return self.plan.trial_steps[self.step]

    @property
    def last_step(self) -> bool:
        """Whether passing this step promotes the candidate."""
        return self.step >= len(self.plan.trial_steps) - 1

    def with_decision(self, decision: Mapping[str, Any], **changes: Any) -> RolloutState:
        """This state with ``changes`` and ``decision`` added to the newest decisions."""
        kept = (*self.decisions, dict(decision))[-KEPT_DECISIONS:]
        return replace(self, decisions=kept, **changes)

    def to_dict(self) -> dict[str, Any]:
        """The stored JSON form (and what ``--json`` shows)."""
        return {
            "deployment": self.deployment,
            "model": self.model,
            "version": self.version,
            "plan": self.plan.to_dict(),
            "status": self.status.value,
            "step": self.step,
            "weight": self.weight,
            "step_started_at": self.step_started_at.isoformat(),
            "next_check_at": self.next_check_at.isoformat(),
            "started_at": self.started_at.isoformat(),
            "champion": {"model": self.champion[0], "version": self.champion[1]},
            "failures": self.failures,
            "message": self.message,
            "decisions": [dict(d) for d in self.decisions],
            "applied": self.applied,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> RolloutState:
        """Inverse of ``to_dict``."""
        champion = data["champion"]
        return cls(
            deployment=str(data["deployment"]),
            model=str(data["model"]),
            version=int(data["version"]),
            plan=RolloutPlan.from_dict(data["plan"]),
            status=RolloutStatus(data["status"]),
            step=int(data["step"]),
            step_started_at=datetime.fromisoformat(data["step_started_at"]),
            next_check_at=datetime.fromisoformat(data["next_check_at"]),
            started_at=datetime.fromisoformat(data["started_at"]),
            champion=(str(champion["model"]), int(champion["version"])),
            failures=int(data.get("failures", 0)),
            message=str(data.get("message", "")),
            decisions=tuple(dict(d) for d in data.get("decisions", ())),
            applied=bool(data.get("applied", True)),
        )
