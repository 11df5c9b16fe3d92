"""Each promotion gate on small scikit-learn models registered in a throwaway registry."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from sklearn.dummy import DummyClassifier, DummyRegressor
from sklearn.linear_model import LinearRegression, LogisticRegression

from drift_logs import log_table, write_log
from modelport.artifacts.local import LocalArtifactStore
from modelport.config import Settings
from modelport.domain.entities import ModelVersion
from modelport.domain.gates import GateOutcome, GateResult
from modelport.flavors.catalog import default_catalog
from modelport.metadata.memory import MemoryMetadataStore
from modelport.package.options import PackageOptions
from modelport.registry.service import RegistryService
from modelport.rollout.gates import GateContext, Gates
from modelport.rollout.gates_default import build_gates, configured_gates
from modelport.rollout.gates_holdout import HoldoutMetricGate
from modelport.rollout.gates_latency import LatencyGate, logged_requests
from modelport.rollout.gates_package import ArtifactGate, SignatureGate


@pytest.fixture
def registry(tmp_path: Path) -> Iterator[RegistryService]:
    service = RegistryService(
        MemoryMetadataStore(),
        LocalArtifactStore(tmp_path / "artifacts"),
        default_catalog(),
        actor="alice",
    )
    yield service
    service.close()


@pytest.fixture
def data() -> tuple[pd.DataFrame, np.ndarray]:
    """Two numeric features; the class is whether their sum is positive."""
    rng = np.random.default_rng(3)
    frame = pd.DataFrame({"a": rng.normal(size=400), "b": rng.normal(size=400)})
    return frame, (frame["a"] + frame["b"] > 0).to_numpy().astype(int)


def register(registry: RegistryService, model: Any, sample: pd.DataFrame) -> ModelVersion:
    options = PackageOptions(sample_input=sample, accelerate=False)
    return registry.register(model, "churn", options)


def context(registry: RegistryService, holdout: Path | None = None) -> GateContext:
    return GateContext(registry, Settings(), holdout=holdout, label="y" if holdout else None)


def holdout_file(tmp_path: Path, frame: pd.DataFrame, labels: Any, suffix: str) -> Path:
    path = tmp_path / f"holdout{suffix}"
    table = frame.assign(y=labels)
    if suffix == ".csv":
        table.to_csv(path, index=False)
    else:
        table.to_parquet(path)
    return path


def test_artifacts_pass_on_a_registered_version_and_fail_on_a_changed_file(
    registry: RegistryService, data: tuple[pd.DataFrame, np.ndarray]
) -> None:
    frame, y = data
    version = register(registry, LogisticRegression().fit(frame, y), frame)
    passed = ArtifactGate().evaluate(version, None, context(registry))
    assert passed.outcome is GateOutcome.PASSED
    assert passed.details["files_verified"] >= 2 and passed.details["trusted"] == []
    assert passed.details["signing"] == "unsigned"

    model_files = registry.artifacts.local_path(version.artifact_key) / "model"
    target = next(p for p in sorted(model_files.rglob("*")) if p.is_file())
    target.write_bytes(target.read_bytes() + b"tampered")
    failed = ArtifactGate().evaluate(version, None, context(registry))
    assert failed.outcome is GateOutcome.FAILED
    assert failed.details["check"] == "integrity" and failed.message.startswith("integrity: ")


def test_signature_is_skipped_without_baseline_and_fails_on_a_removed_column(
    registry: RegistryService, data: tuple[pd.DataFrame, np.ndarray]
) -> None:
    frame, y = data
    first = register(registry, LogisticRegression().fit(frame, y), frame)
    same = register(registry, DummyClassifier().fit(frame, y), frame)
    narrower = register(registry, LogisticRegression().fit(frame[["a"]], y), frame[["a"]])
    gate = SignatureGate()

    assert gate.evaluate(first, None, context(registry)).outcome is GateOutcome.SKIPPED
    result = gate.evaluate(same, first, context(registry))
    assert result.outcome is GateOutcome.PASSED and result.details["breaking"] == []
    result = gate.evaluate(narrower, first, context(registry))
    assert result.outcome is GateOutcome.FAILED
    assert result.details["breaking"]
    assert "breaks clients of version 1" in result.message


def test_signature_fails_when_a_classifier_gains_a_class(
    registry: RegistryService, data: tuple[pd.DataFrame, np.ndarray]
) -> None:
    frame, y = data
    binary = register(registry, LogisticRegression().fit(frame, y), frame)
    three = np.where(frame["a"] > 1, 2, y)
    multi = register(registry, LogisticRegression().fit(frame, three), frame)
    result = SignatureGate().evaluate(multi, binary, context(registry))
    assert result.outcome is GateOutcome.FAILED
    assert result.details["breaking"] == [
        "output 'probabilities' changes shape from [-1, 2] to [-1, 3]"
    ]


@pytest.mark.parametrize("suffix", [".csv", ".parquet"])
def test_holdout_refuses_a_worse_classifier_and_takes_a_better_one(
    registry: RegistryService, data: tuple[pd.DataFrame, np.ndarray], tmp_path: Path, suffix: str
) -> None:
    frame, y = data
    good = register(registry, LogisticRegression().fit(frame, y), frame)
    dummy = register(registry, DummyClassifier(strategy="most_frequent").fit(frame, y), frame)
    holdout = holdout_file(tmp_path, frame, y, suffix)
    gate = HoldoutMetricGate()

    worse = gate.evaluate(dummy, good, context(registry, holdout))
    assert worse.outcome is GateOutcome.FAILED
    details = worse.details
    assert details["metric"] == "accuracy" and details["rows"] == 400
    assert details["baseline"] > 0.95 and details["candidate"] == pytest.approx(
        max(np.mean(y), 1 - np.mean(y))
    )
    assert details["loss"] == pytest.approx(details["baseline"] - details["candidate"])
    assert "accuracy" in worse.message and "version 1" in worse.message

    better = gate.evaluate(good, dummy, context(registry, holdout))
    assert better.outcome is GateOutcome.PASSED
    lenient = HoldoutMetricGate(max_loss=0.6).evaluate(dummy, good, context(registry, holdout))
    assert lenient.outcome is GateOutcome.PASSED


def test_holdout_uses_rmse_for_regressors_or_the_configured_metric(
    registry: RegistryService, data: tuple[pd.DataFrame, np.ndarray], tmp_path: Path
) -> None:
    frame, _ = data
    target = 2 * frame["a"] - frame["b"]
    linear = register(registry, LinearRegression().fit(frame, target), frame)
    mean = register(registry, DummyRegressor().fit(frame, target), frame)
    holdout = holdout_file(tmp_path, frame, target, ".parquet")

    result = HoldoutMetricGate().evaluate(mean, linear, context(registry, holdout))
    assert result.outcome is GateOutcome.FAILED
    assert result.details["metric"] == "rmse"
    assert result.details["baseline"] == pytest.approx(0.0, abs=1e-9)
    assert result.details["candidate"] == pytest.approx(np.std(target), rel=1e-6)
    r2 = HoldoutMetricGate("r2").evaluate(linear, mean, context(registry, holdout))
    assert r2.outcome is GateOutcome.PASSED and r2.details["candidate"] == pytest.approx(1.0)


def test_holdout_is_skipped_without_a_file_or_a_baseline(
    registry: RegistryService, data: tuple[pd.DataFrame, np.ndarray], tmp_path: Path
) -> None:
    frame, y = data
    version = register(registry, LogisticRegression().fit(frame, y), frame)
    gate = HoldoutMetricGate()
    assert gate.evaluate(version, None, context(registry)).outcome is GateOutcome.SKIPPED
    alone = gate.evaluate(
        version, None, context(registry, holdout_file(tmp_path, frame, y, ".csv"))
    )
    assert alone.outcome is GateOutcome.SKIPPED and alone.details["candidate"] > 0.95


def test_latency_budget(registry: RegistryService, data: tuple[pd.DataFrame, np.ndarray]) -> None:
    frame, y = data
    version = register(registry, LogisticRegression().fit(frame, y), frame)
    skipped = LatencyGate(None).evaluate(version, None, context(registry))
    assert skipped.outcome is GateOutcome.SKIPPED and "latency_budget_ms" in skipped.message

    roomy = LatencyGate(60_000.0, repeats=20).evaluate(version, None, context(registry))
    assert roomy.outcome is GateOutcome.PASSED
    assert roomy.details["calls"] == 20 and roomy.details["source"] == "the input example"
    assert 0 < roomy.details["p50_ms"] <= roomy.details["p99_ms"]
    # No model call takes less than a picosecond: the budget cannot be met.
    tight = LatencyGate(1e-9, repeats=20).evaluate(version, None, context(registry))
    assert tight.outcome is GateOutcome.FAILED and tight.details["budget_ms"] == 1e-9


class Raising:
    name = "raising"

    def evaluate(self, candidate: Any, baseline: Any, context: Any) -> GateResult:
        raise RuntimeError("boom")


def test_gates_find_the_baseline_and_report_a_raising_gate_as_an_error(
    registry: RegistryService, data: tuple[pd.DataFrame, np.ndarray]
) -> None:
    frame, y = data
    first = register(registry, LogisticRegression().fit(frame, y), frame)
    second = register(registry, LogisticRegression(C=0.5).fit(frame, y), frame)
    registry.promote("churn", first.version, "production")
    gates = Gates([SignatureGate(), Raising()], registry=registry, settings=Settings())

    report = gates.evaluate(second, "production")
    assert report.baseline == 1 and report.exit_code == 2
    assert [r.outcome for r in report.results] == [GateOutcome.PASSED, GateOutcome.ERROR]
    assert report.results[1].message == "RuntimeError: boom"
    assert gates.evaluate(first, "production").baseline is None  # already there
    assert gates.guards("production") and not gates.guards("staging")


def test_the_configured_gates_and_targets(registry: RegistryService) -> None:
    settings = Settings(gates={"checks": ["latency", "signature"], "targets": ["champion"]})
    assert [gate.name for gate in configured_gates(settings.gates)] == ["latency", "signature"]
    gates = build_gates(settings, registry)
    assert gates.guards("champion") and not gates.guards("production")
    defaults = build_gates(Settings(), registry)
    assert [gate.name for gate in defaults.gates] == [
        "artifacts",
        "signature",
        "holdout",
        "latency",
        "shadow",
    ]


def test_latency_replays_the_requests_logged_for_the_baseline(
    registry: RegistryService, data: tuple[pd.DataFrame, np.ndarray], tmp_path: Path
) -> None:
    frame, y = data
    first = register(registry, LogisticRegression().fit(frame, y), frame)
    second = register(registry, LogisticRegression(C=0.1).fit(frame, y), frame)
    log = tmp_path / "predictions"
    start = datetime.now(UTC) - timedelta(minutes=5)
    for index, rows in enumerate((1, 3, 8)):
        part = frame.iloc[index * 10 : index * 10 + rows]
        table = log_table(part, model="churn", version="1", start=start + timedelta(seconds=index))
        write_log(log, table, model="churn", version="1")
    gates = GateContext(registry, Settings(), log_uri=str(log))

    replayed = LatencyGate(60_000.0, repeats=12, replay="log").evaluate(second, first, gates)
    assert replayed.outcome is GateOutcome.PASSED
    assert replayed.details["source"] == "3 requests logged for version 1"
    assert replayed.details["requests"] == 3 and replayed.details["calls"] == 12
    sizes = sorted(len(r) for r in logged_requests(str(log), first, gates.load(second)))
    assert sizes == [1, 3, 8]

    # Nothing logged for version 2: the example is replayed instead.
    fallback = LatencyGate(60_000.0, repeats=12, replay="log").evaluate(first, second, gates)
    assert fallback.details["source"] == "the input example"
