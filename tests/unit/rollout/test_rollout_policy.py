"""The plan of a rollout: command-line options over ``[rollout]`` over the defaults."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest

from modelport.config import RolloutSettings, Settings
from modelport.errors import InvalidArgumentError
from modelport.rollout.policy import PlanOptions, plan_from_settings


def test_the_defaults_make_a_sensible_plan() -> None:
    plan = plan_from_settings(RolloutSettings())
    assert plan.steps == (5, 25, 50, 100)
    assert plan.interval == timedelta(seconds=60)
    assert plan.bake == plan.interval  # a step runs at least one interval
    assert (plan.min_requests, plan.max_failures) == (100, 2)
    assert plan.thresholds.max_error_rate_increase == 0.01


def test_the_config_file_sets_the_policy(tmp_path: Path) -> None:
    config = tmp_path / "modelport.toml"
    config.write_text(
        "[rollout]\n"
        "steps = [10, 50, 100]\n"
        'interval = "2m"\n'
        'bake = "10m"\n'
        "min_requests = 1000\n"
        "max_failures = 3\n"
        'max_wait = "2h"\n'
        "max_latency_increase = 0.5\n"
        "require_accuracy = true\n"
        "[[rollout.webhooks]]\n"
        'url = "https://hooks.example/rollouts"\n'
        'secret_env = "ROLLOUT_SECRET"\n',
        encoding="utf-8",
    )
    settings = Settings(config=config)
    plan = plan_from_settings(settings.rollout)
    assert plan.steps == (10, 50, 100)
    assert (plan.interval, plan.bake, plan.max_wait) == (
        timedelta(minutes=2), timedelta(minutes=10), timedelta(hours=2),
    )  # fmt: skip
    assert (plan.min_requests, plan.max_failures) == (1000, 3)
    assert plan.thresholds.max_latency_increase == 0.5
    assert plan.thresholds.require_accuracy
    assert settings.rollout.webhooks[0].url == "https://hooks.example/rollouts"


def test_options_win_over_the_config() -> None:
    settings = RolloutSettings(steps=[10, 100], interval=timedelta(minutes=5), max_failures=4)
    options = PlanOptions(
        steps="5,25,50,100", interval="60s", bake="0s", min_requests=10, max_failures=1
    )
    plan = plan_from_settings(settings, options)
    assert plan.steps == (5, 25, 50, 100)
    assert plan.interval == timedelta(seconds=60)
    assert plan.bake == timedelta(0)  # zero is a value, not "unset"
    assert (plan.min_requests, plan.max_failures) == (10, 1)


def test_the_bake_time_follows_an_interval_given_on_the_command_line() -> None:
    plan = plan_from_settings(RolloutSettings(), PlanOptions(interval="15s"))
    assert plan.bake == timedelta(seconds=15)


@pytest.mark.parametrize(
    ("options", "words"),
    [
        (PlanOptions(interval="soon"), "--interval: 'soon' is not a duration"),
        (PlanOptions(interval="0s"), "--interval must be longer than 0"),
        (PlanOptions(max_wait="1x"), "--max-wait"),
        (PlanOptions(steps="50,10"), "must increase"),
    ],
)
def test_bad_options_name_the_option(options: PlanOptions, words: str) -> None:
    with pytest.raises(InvalidArgumentError, match=words):
        plan_from_settings(RolloutSettings(), options)


def test_bad_steps_in_the_config_are_refused() -> None:
    with pytest.raises(InvalidArgumentError, match="must increase"):
        plan_from_settings(RolloutSettings(steps=[50, 10, 100]))


def test_a_literal_webhook_secret_is_refused() -> None:
    with pytest.raises(ValueError, match="secret_env"):
        RolloutSettings.model_validate({"webhooks": [{"url": "https://x.example", "secret": "s"}]})
