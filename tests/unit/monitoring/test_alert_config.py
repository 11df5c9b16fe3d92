"""Alert rules in the config file: what is accepted, and clear errors for the rest."""

from __future__ import annotations

import json
import re
import tempfile
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from pydantic import ValidationError

from modelport.config import (
    CommandAction,
    RetrainAction,
    Settings,
    WebhookAction,
    format_duration,
    parse_duration,
)

FULL = """
[outgoing]
allow_private_networks = true

[monitor]
interval = "15s"
metrics_urls = ["http://10.0.0.5:8080/metrics"]

[monitor.alerts.churn_accuracy]
model = "churn@production"
signal = "accuracy"
comparison = "<"
threshold = 0.8
window = "1d"
min_samples = 200
for = "30m"
cooldown = "6h"
labels = { severity = "page" }

[[monitor.alerts.churn_accuracy.actions]]
type = "webhook"
url = "https://hooks.example.com/modelport"
secret_env = "CHURN_HOOK_SECRET"

[[monitor.alerts.churn_accuracy.actions]]
type = "command"
run = ["notify", "--channel", "ml"]
timeout = "30s"

[[monitor.alerts.churn_accuracy.actions]]
type = "retrain"
run = ["python", "retrain.py"]

[monitor.alerts.age_drift]
model = "churn"
signal = "feature_drift"
feature = "age"
comparison = ">="
threshold = 0.1
"""


def settings_from(tmp_path: Path, text: str) -> Settings:
    path = tmp_path / "modelport.toml"
    path.write_text(text)
    return Settings(config=path)


def settings_from_text(text: str) -> Settings:
    with tempfile.TemporaryDirectory() as directory:
        return settings_from(Path(directory), text)


def error_of(tmp_path: Path, text: str) -> str:
    with pytest.raises(ValidationError) as raised:
        settings_from(tmp_path, text)
    first = raised.value.errors()[0]
    return ".".join(str(p) for p in first["loc"]) + ": " + first["msg"]


def test_a_full_rule_reads_back(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monitor = settings_from(tmp_path, FULL).monitor
    assert monitor.interval == timedelta(seconds=15)
    rule = monitor.alerts["churn_accuracy"]
    assert (rule.signal, rule.comparison, rule.threshold) == ("accuracy", "<", 0.8)
    assert (rule.window, rule.for_, rule.cooldown) == (
        timedelta(days=1),
        timedelta(minutes=30),
        timedelta(hours=6),
    )
    webhook, command, retrain = rule.actions
    assert isinstance(webhook, WebhookAction) and webhook.send_resolved
    assert isinstance(command, CommandAction) and command.timeout == timedelta(seconds=30)
    assert isinstance(retrain, RetrainAction) and retrain.run == ["python", "retrain.py"]
    assert webhook.secret_value() is None
    monkeypatch.setenv("CHURN_HOOK_SECRET", "s3cret")
    assert webhook.secret_value() == "s3cret"
    drift = monitor.alerts["age_drift"]
    assert drift.feature == "age" and drift.window == timedelta(hours=1)


def test_a_literal_secret_is_refused_without_being_echoed(tmp_path: Path) -> None:
    text = FULL.replace('secret_env = "CHURN_HOOK_SECRET"', 'secret = "hunter2"')
    with pytest.raises(ValidationError) as raised:
        settings_from(tmp_path, text)
    assert "secret_env" in str(raised.value)
    assert "hunter2" not in str(raised.value)


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        (('signal = "accuracy"', 'signal = "acuracy"'), "signal: Input should be"),
        (('window = "1d"', 'window = "a day"'), "is not a duration"),
        (('comparison = "<"', 'comparison = "=="'), "comparison: Input should be"),
        (("min_samples = 200", "min_samples = 200\nthreshhold = 1"), "threshhold: Extra"),
        (('feature = "age"', ""), "feature_drift needs feature"),
        (("[monitor.alerts.age_drift]", '[monitor.alerts."age drift"]'), "alert rule name"),
        (('url = "https://hooks', 'url = "ftp://hooks'), "is not an http:// or https:// URL"),
        (('type = "retrain"', 'type = "retrain"\nurl = "http://x"'), "exactly one of run"),
        (('type = "command"', 'type = "email"'), "does not match any of the expected tags"),
    ],
)
def test_mistakes_are_named(tmp_path: Path, change: tuple[str, str], expected: str) -> None:
    assert expected in error_of(tmp_path, FULL.replace(*change))


def test_durations() -> None:
    assert parse_duration("90s") == timedelta(seconds=90)
    assert parse_duration("1.5h") == timedelta(minutes=90)
    assert parse_duration(30) == timedelta(seconds=30)
    assert [format_duration(parse_duration(t)) for t in ("1h", "90s", "7d", "0s", "250ms")] == [
        "1h",
        "90s",
        "1w",
        "0s",
        "250ms",
    ]
    with pytest.raises(ValueError, match="not a duration"):
        parse_duration("-5m")


def test_settings_survive_a_json_round_trip(tmp_path: Path) -> None:
    # Server workers receive the settings as JSON.
    settings = settings_from(tmp_path, FULL)
    again = Settings.model_validate(settings.model_dump(mode="json"))
    assert again.monitor == settings.monitor
    assert settings.model_dump(mode="json")["monitor"]["alerts"]["churn_accuracy"]["for"] == "30m"


DOCS = Path(__file__).resolve().parents[3] / "docs" / "monitoring.md"


def doc_blocks(language: str) -> list[str]:
    section = DOCS.read_text().split("## Alerts and the retraining trigger", 1)[1]
    return re.findall(rf"```{language}\n(.*?)```", section, flags=re.DOTALL)


def test_the_documented_config_is_valid(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CHURN_HOOK_SECRET", "x")
    monitor = settings_from(tmp_path, doc_blocks("toml")[0]).monitor
    assert set(monitor.alerts) == {"churn_accuracy", "age_drift", "errors"}
    assert [a.type for a in monitor.alerts["churn_accuracy"].actions] == [
        "webhook",
        "command",
        "retrain",
    ]


def test_the_documented_notice_has_every_field() -> None:
    from modelport.domain.alerts import AlertEvent, AlertStatus
    from modelport.monitoring.alerts.notice import Notice
    from modelport.monitoring.alerts.readings import SignalRequest

    documented = json.loads(doc_blocks("json")[0])
    rule = settings_from_text(doc_blocks("toml")[0]).monitor.alerts["churn_accuracy"]
    now = datetime(2026, 12, 6, 10, tzinfo=UTC)
    event = AlertEvent("churn_accuracy", rule.model, now, AlertStatus.PENDING,
                       AlertStatus.FIRING, 0.74, 1830, "m", id=42)  # fmt: skip
    request = SignalRequest("churn_accuracy", rule, "churn", "3", 3, now - rule.window, now)
    assert list(Notice("churn_accuracy", rule, event, request).document()) == list(documented)
