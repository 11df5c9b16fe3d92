"""``modelport monitor run|rules|alerts`` through the real CLI entry point."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import yaml

from modelport.cli.main import main
from modelport.monitoring.prediction_log import PredictionLogWriter, PredictionRecord

RULES = """
[monitor.alerts.errors]
model = "churn/3"
signal = "error_rate"
comparison = ">"
threshold = 0.05
min_samples = 20
for = "5m"
labels = { severity = "page", team = "ml" }
description = "Too many failed predictions"

[monitor.alerts.slow]
model = "churn"
signal = "p99_latency"
comparison = ">"
threshold = 0.25

[monitor.alerts.accuracy]
model = "churn@production"
signal = "accuracy"
comparison = "<"
threshold = 0.8
window = "1d"
min_samples = 200

[monitor.alerts.age-drift]
model = "churn"
signal = "feature_drift"
feature = "age"
comparison = ">="
threshold = 0.1

[monitor.alerts.drops]
model = "churn"
signal = "prediction_log_drops"
comparison = ">"
threshold = 0
cooldown = "6h"

[monitor.alerts.coverage]
model = "churn"
signal = "label_coverage"
comparison = "<"
threshold = 0.5
window = "7d"
"""
# Prometheus's rule file format: names, durations, and the keys a rule may have.
ALERT_NAME = re.compile(r"^[a-zA-Z_:][a-zA-Z0-9_:]*$")
LABEL_NAME = re.compile(r"^[a-zA-Z_][a-zA-Z0-9_]*$")
DURATION = re.compile(r"^((\d+)y)?((\d+)w)?((\d+)d)?((\d+)h)?((\d+)m)?((\d+)s)?((\d+)ms)?$")
RULE_KEYS = {"alert", "expr", "for", "keep_firing_for", "labels", "annotations"}


def run(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    with pytest.raises(SystemExit) as info:
        main(list(args))
    out, err = capsys.readouterr()
    return int(info.value.code or 0), out, err


@pytest.fixture
def config(tmp_path: Path) -> Path:
    path = tmp_path / "modelport.toml"
    path.write_text(RULES)
    return path


def check_rule_file(document: dict[str, Any]) -> None:
    """The checks ``promtool check rules`` makes on the file's shape."""
    assert set(document) == {"groups"}
    for group in document["groups"]:
        assert set(group) <= {"name", "interval", "rules"} and group["name"]
        for rule in group["rules"]:
            assert set(rule) <= RULE_KEYS and {"alert", "expr"} <= set(rule)
            assert ALERT_NAME.match(rule["alert"]), rule["alert"]
            assert isinstance(rule["expr"], str) and rule["expr"].count("(") == rule["expr"].count(
                ")"
            )
            assert "for" not in rule or DURATION.match(rule["for"])
            for mapping in (rule.get("labels", {}), rule.get("annotations", {})):
                assert all(LABEL_NAME.match(k) and isinstance(v, str) for k, v in mapping.items())


def test_prometheus_rules_file(
    capsys: pytest.CaptureFixture[str], config: Path, tmp_path: Path
) -> None:
    out_file = tmp_path / "rules.yml"
    code, out, err = run(
        capsys, "monitor", "rules", "--prometheus", "--config", str(config), "--out", str(out_file)
    )
    assert code == 0, err
    assert out == "" and "wrote 6 Prometheus alerting rules" in err
    document = yaml.safe_load(out_file.read_text())
    check_rule_file(document)
    rules = {rule["alert"]: rule for rule in document["groups"][0]["rules"]}
    assert set(rules) == {"errors", "slow", "accuracy", "age_drift", "drops", "coverage"}
    errors = rules["errors"]
    assert errors["for"] == "5m"
    assert errors["labels"] == {
        "severity": "page",
        "team": "ml",
        "model": "churn",
        "signal": "error_rate",
        "modelport_rule": "errors",
    }
    assert errors["expr"] == (
        '((sum(increase(modelport_requests_total{model="churn",version="3",code=~"5.."}[1h])) '
        '/ sum(increase(modelport_requests_total{model="churn",version="3"}[1h]))) > 0.05) '
        'and on() (sum(increase(modelport_requests_total{model="churn",version="3"}[1h])) >= 20)'
    )
    assert errors["annotations"]["description"] == "Too many failed predictions"
    assert rules["accuracy"]["expr"] == (
        'max(modelport_live_metric{model="churn",metric="accuracy",window=~"1d|24h|1440m|86400s"}) '
        "< 0.8"
    )
    assert "Prometheus has no aliases" in rules["accuracy"]["annotations"]["differences"]
    assert rules["age_drift"]["labels"]["modelport_rule"] == "age-drift"
    assert rules["drops"]["expr"] == (
        'sum(increase(modelport_prediction_log_dropped_total{model="churn"}[1h])) > 0'
    )
    assert "for" not in rules["slow"]


@pytest.mark.skipif(shutil.which("promtool") is None, reason="promtool is not installed")
def test_promtool_accepts_the_rules(
    capsys: pytest.CaptureFixture[str], config: Path, tmp_path: Path
) -> None:
    out_file = tmp_path / "rules.yml"
    run(capsys, "monitor", "rules", "--prometheus", "--config", str(config), "--out", str(out_file))
    checked = subprocess.run(
        ["promtool", "check", "rules", str(out_file)], capture_output=True, text=True, check=False
    )
    assert checked.returncode == 0, checked.stdout + checked.stderr


def test_rules_to_stdout_and_as_json(capsys: pytest.CaptureFixture[str], config: Path) -> None:
    code, out, _ = run(capsys, "monitor", "rules", "--prometheus", "--config", str(config))
    assert code == 0
    check_rule_file(yaml.safe_load(out))
    args = ("monitor", "rules", "--prometheus", "--config", str(config), "--json")
    code, out, _ = run(capsys, *args)
    result = json.loads(out)
    assert result["rules"] == 6 and result["skipped"] == []
    check_rule_file(result["document"])


def test_no_rules_is_a_clear_error(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    empty = tmp_path / "empty.toml"
    empty.write_text("[serve]\nport = 9000\n")
    for command in (["run", "--once"], ["rules", "--prometheus"]):
        code, out, err = run(capsys, "monitor", *command, "--config", str(empty), "--json")
        assert code == 1 and out == ""
        error = json.loads(err)
        assert error["code"] == "INVALID_ARGUMENT" and "[monitor.alerts.NAME]" in error["error"]


def test_a_bad_rule_names_its_place(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    bad = tmp_path / "bad.toml"
    bad.write_text(RULES.replace('window = "7d"', 'window = "a week"'))
    code, _, err = run(capsys, "monitor", "run", "--once", "--config", str(bad), "--json")
    error = json.loads(err)
    assert code == 1 and "monitor.alerts.coverage.window" in error["error"]
    assert "is not a duration" in error["error"]


def test_run_once_then_list_alerts(
    capsys: pytest.CaptureFixture[str], config: Path, isolated_home: Path
) -> None:
    now = datetime.now(UTC)
    writer = PredictionLogWriter(str(isolated_home / "predictions"), flush_interval_s=60)
    for i in range(40):
        writer.put(
            PredictionRecord(
                f"r{i}-0", f"r{i}", now - timedelta(minutes=30 - i // 2), "churn", "3", "v2",
                0.5 if i % 4 == 0 else 0.01, 500 if i % 4 == 0 else 200,
            )
        )  # fmt: skip
    writer.close()
    code, out, err = run(capsys, "monitor", "run", "--once", "--config", str(config), "--json")
    assert code == 0, err
    outcomes = {o["rule"]: o for o in json.loads(out)["outcomes"]}
    assert outcomes["errors"]["state"]["status"] == "pending"  # for = 5m
    assert outcomes["errors"]["state"]["value"] == pytest.approx(0.25)
    assert outcomes["slow"]["state"]["status"] == "firing"
    assert outcomes["accuracy"]["error"].startswith("ModelNotFoundError")  # an alias
    assert outcomes["age-drift"]["error"].startswith("ModelNotFoundError")  # no statistics
    coverage = outcomes["coverage"]["state"]  # no label yet for the 30 answered predictions
    assert (coverage["value"], coverage["samples"]) == (0, 30)
    code, out, _ = run(capsys, "monitor", "alerts", "churn", "--config", str(config), "--json")
    history = json.loads(out)
    states = {r["name"]: (r["state"] or {}).get("status") for r in history["rules"]}
    assert states["errors"] == "pending" and states["slow"] == "firing"
    assert {(e["rule"], e["to"]) for e in history["events"]} == {
        ("errors", "pending"),
        ("slow", "firing"),
        ("coverage", "firing"),  # no label arrived for the 30 answered predictions
    }
    code, out, _ = run(capsys, "monitor", "alerts", "--config", str(config))
    assert code == 0 and "errors" in out and "pending" in out and "inactive -> firing" in out
