"""A rollout's plan from the ``[rollout]`` settings and the options of ``deploy rollout``.

Options win over the config; what neither sets takes the defaults of
``RolloutSettings``. The bake time defaults to the interval (a step runs at least one
interval before it is judged), and the longest wait for data to the bake time and ten
intervals (at least 30 minutes).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from typing import TypeVar

from modelport.config import RolloutSettings, parse_duration
from modelport.domain.rollout_plan import RolloutPlan, RolloutThresholds, check_steps, parse_steps
from modelport.errors import InvalidArgumentError

_T = TypeVar("_T")
MIN_DEFAULT_WAIT = timedelta(minutes=30)
DEFAULT_WAIT_INTERVALS = 10  # checks a step may wait for data after its bake time


@dataclass(frozen=True)
class PlanOptions:
    """What the command line may override (None: take the config's value); durations
    and steps as typed (``60s``, ``5,25,50,100``)."""

    steps: str | None = None
    interval: str | None = None
    bake: str | None = None
    min_requests: int | None = None
    max_failures: int | None = None
    max_wait: str | None = None


def plan_from_settings(
    settings: RolloutSettings, options: PlanOptions | None = None
) -> RolloutPlan:
    """The plan for one rollout: ``options`` over ``settings``."""
    given = options or PlanOptions()
    steps = parse_steps(given.steps) if given.steps is not None else check_steps(settings.steps)
    interval = _first(_duration(given.interval, "interval"), settings.interval)
    bake = _first(_duration(given.bake, "bake"), settings.bake, interval)
    return RolloutPlan(
        steps=steps,
        interval=interval,
        bake=bake,
        min_requests=_first(given.min_requests, settings.min_requests),
        max_failures=_first(given.max_failures, settings.max_failures),
        max_wait=_first(
            _duration(given.max_wait, "max_wait"),
            settings.max_wait,
            max(MIN_DEFAULT_WAIT, bake + DEFAULT_WAIT_INTERVALS * interval),
        ),
        thresholds=thresholds_from_settings(settings),
    )


def _first(*values: _T | None) -> _T:
    """The first value that is set (0 and 0s count as set)."""
    return next(value for value in values if value is not None)


def thresholds_from_settings(settings: RolloutSettings) -> RolloutThresholds:
    """The comparison thresholds of ``[rollout]``."""
    return RolloutThresholds(
        max_error_rate_increase=settings.max_error_rate_increase,
        max_latency_increase=settings.max_latency_increase,
        latency_slack_ms=settings.latency_slack_ms,
        max_accuracy_drop=settings.max_accuracy_drop,
        min_labels=settings.min_labels,
        max_drift_share_increase=settings.max_drift_share_increase,
        require_accuracy=settings.require_accuracy,
    )


def _duration(text: str | None, field: str) -> timedelta | None:
    if text is None:
        return None
    try:
        value = parse_duration(text)
    except ValueError as exc:
        raise InvalidArgumentError(f"--{field.replace('_', '-')}: {exc}", field=field) from None
    if field == "interval" and value <= timedelta(0):
        raise InvalidArgumentError("--interval must be longer than 0", field=field)
    return value
