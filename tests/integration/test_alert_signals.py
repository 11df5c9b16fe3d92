"""Alert rules on drift and live performance, for real: a registered model's reference
statistics, a real prediction log and real labels; values equal to what
``drift_over_log`` and ``live_performance`` say on the same window."""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pytest

from modelport.bootstrap import build_registry
from modelport.config import AlertRule, Settings
from modelport.domain.alerts import AlertStatus
from modelport.monitoring.alerts.actions import ActionRunner
from modelport.monitoring.alerts.engine import AlertEngine
from modelport.monitoring.alerts.readings import SignalReader
from modelport.monitoring.drift_window import drift_over_log
from modelport.monitoring.feedback.store import Label, write_labels
from modelport.monitoring.performance import live_performance
from modelport.monitoring.prediction_log import PredictionLogWriter, PredictionRecord
from modelport.package.options import PackageOptions
from modelport.registry.service import RegistryService
from testing_models import EchoModel

pytestmark = pytest.mark.timeout(120)

T0 = datetime(2026, 12, 6, 12, 0, tzinfo=UTC)
RECORDER = (
    "import json, os, sys; data = json.loads(sys.stdin.read()); "
    "env = {k: v for k, v in os.environ.items() if k.startswith('MODELPORT_RETRAIN_')}; "
    "open(sys.argv[1], 'w').write(json.dumps({'env': env, 'stdin': data}))"
)


@pytest.fixture
def registry(tmp_path: Path) -> Iterator[RegistryService]:
    with build_registry(Settings(home=tmp_path / "home", user="tester")) as service:
        yield service


def rule(**fields: Any) -> AlertRule:
    return AlertRule.model_validate({"window": "1h", **fields})


def engine_for(
    registry: RegistryService, rules: dict[str, AlertRule], log: Path, retrain: Path
) -> AlertEngine:
    reader = SignalReader(str(log), registry=registry)
    actions = ActionRunner(registry.metadata, log_uri=str(log), retrain_dir=str(retrain))
    return AlertEngine(rules, registry.metadata, reader, actions)


def log_rows(log: Path, model: str, inputs: pd.DataFrame, predictions: list[int]) -> list[str]:
    writer = PredictionLogWriter(str(log), flush_interval_s=60)
    start = T0 - timedelta(minutes=50)
    ids = []
    for i, row in enumerate(inputs.to_dict("records")):
        ids.append(f"r{i}-0")
        assert writer.put(
            PredictionRecord(
                ids[-1], f"r{i}", start + timedelta(seconds=5 * i), model, "1", "v2", 0.001,
                200, row, {"predictions": predictions[i]},
            )
        )  # fmt: skip
    writer.close()
    return ids


def test_accuracy_and_coverage_rules_and_the_labeled_retraining_export(
    tmp_path: Path, registry: RegistryService
) -> None:
    log, out = tmp_path / "log", tmp_path / "retrain.json"
    predictions = [i % 2 for i in range(200)]
    ids = log_rows(log, "churn", pd.DataFrame({"age": np.arange(200.0)}), predictions)
    # 150 of 200 labeled; 100 of them right, 50 wrong.
    labels = [
        Label.of("prediction_id", ids[i], predictions[i] if i < 100 else 1 - predictions[i])
        for i in range(150)
    ]
    write_labels(str(log), "churn", labels, actor="test", source="api", now=T0)
    rules = {
        "accuracy": rule(
            model="churn", signal="accuracy", comparison="<", threshold=0.8, min_samples=100,
            actions=[{"type": "retrain", "run": [sys.executable, "-c", RECORDER, str(out)]}],
        ),
        "coverage": rule(model="churn", signal="label_coverage", comparison="<", threshold=0.9),
        "strict": rule(
            model="churn", signal="accuracy", comparison="<", threshold=0.8, min_samples=151
        ),
    }  # fmt: skip
    outcomes = {o.rule: o for o in engine_for(registry, rules, log, tmp_path).evaluate(T0)}
    expected = live_performance(str(log), "churn", since=T0 - timedelta(hours=1), until=T0)
    accuracy = outcomes["accuracy"].state
    assert accuracy is not None and accuracy.status is AlertStatus.FIRING
    assert accuracy.value == pytest.approx(expected.metrics["accuracy"]) == pytest.approx(2 / 3)
    assert accuracy.samples == expected.labeled == 150
    coverage = outcomes["coverage"].state
    assert coverage is not None and coverage.value == pytest.approx(0.75)
    assert coverage.status is AlertStatus.FIRING and coverage.samples == 200
    strict = outcomes["strict"].state  # 150 labeled rows < min_samples: no decision
    assert strict is not None and strict.status is AlertStatus.INACTIVE

    handed = json.loads(out.read_text())
    exported = pq.read_table(handed["env"]["MODELPORT_RETRAIN_PATH"]).to_pandas()
    assert handed["stdin"]["retrain"]["rows"] == len(exported) == 200
    assert handed["stdin"]["retrain"]["labeled"] == 150
    assert handed["env"]["MODELPORT_RETRAIN_LABELED"] == "150"
    assert list(exported["prediction_id"][:3]) == ids[:3]
    right = exported.iloc[:100]
    assert (right["label_value"] == right["out_predictions"]).all()
    wrong = exported.iloc[100:150]
    assert (wrong["label_value"] != wrong["out_predictions"]).all()
    assert exported.iloc[150:]["label"].isna().all()


def test_drift_rules_against_the_registered_reference(
    tmp_path: Path, registry: RegistryService
) -> None:
    rng = np.random.default_rng(7)
    sample = pd.DataFrame({"age": rng.normal(40, 5, 2000), "income": rng.normal(50, 10, 2000)})
    registry.register(EchoModel(), "churn", PackageOptions(sample_input=sample))
    registry.set_alias("churn", "production", 1)
    log = tmp_path / "log"
    live = pd.DataFrame({"age": rng.normal(60, 5, 500), "income": rng.normal(50, 10, 500)})
    log_rows(log, "churn", live, [0] * 500)
    rules = {
        "share": rule(model="churn@production", signal="dataset_drift_share",
                      comparison=">=", threshold=0.5, min_samples=100),
        "age": rule(model="churn@production", signal="feature_drift", feature="age",
                    comparison=">=", threshold=0.1),
        "income": rule(model="churn", signal="feature_drift", feature="income",
                       comparison=">=", threshold=0.1),
        "ghost": rule(model="churn", signal="feature_drift", feature="ghost",
                      comparison=">=", threshold=0.1),
    }  # fmt: skip
    outcomes = {o.rule: o for o in engine_for(registry, rules, log, tmp_path).evaluate(T0)}
    stats, _ = registry.reference_stats("churn/1")
    window = drift_over_log(
        str(log), "churn", stats, version="1", since=T0 - timedelta(hours=1), until=T0
    )
    scores = {c.column: c.score for c in window.report.columns}
    share, age, income = (outcomes[n].state for n in ("share", "age", "income"))
    assert share is not None and share.value == pytest.approx(window.report.share_drifted)
    assert share.samples == window.rows == 500
    assert age is not None and age.status is AlertStatus.FIRING
    assert age.value == pytest.approx(scores["age"])
    assert income is not None and income.status is AlertStatus.INACTIVE
    assert income.value == pytest.approx(scores["income"])
    assert outcomes["ghost"].error is not None and "ghost" in outcomes["ghost"].error
