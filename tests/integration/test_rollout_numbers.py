"""Each arm's numbers over a step, read from a real prediction log and its labels."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from modelport.artifacts.local import LocalArtifactStore
from modelport.bootstrap import build_registry
from modelport.config import Settings
from modelport.domain.deployments import Arm, ArmRole
from modelport.domain.rollout_plan import RolloutThresholds
from modelport.flavors.catalog import default_catalog
from modelport.metadata.memory import MemoryMetadataStore
from modelport.monitoring.feedback.store import Label, write_labels
from modelport.monitoring.prediction_log import PredictionLogWriter, PredictionRecord
from modelport.package.options import PackageOptions
from modelport.registry.service import RegistryService
from modelport.rollout.decision import Outcome, compare
from modelport.rollout.numbers import VersionLogNumbers
from testing_models import EchoModel

from .test_deployments import add_versions

pytestmark = pytest.mark.timeout(120)
T0 = datetime(2026, 12, 6, 15, 0, tzinfo=UTC)
CHAMPION = Arm("champion", "churn", 3, ArmRole.CHAMPION, 90.0)
CANARY = Arm("canary", "churn", 4, ArmRole.CANARY, 10.0)


def log_version(
    root: Path, version: int, *, requests: int, errors: int, latency_s: float, wrong: int
) -> None:
    """``requests`` one-row requests of ``version`` in the first minute (the first
    ``errors`` answered 503), labelled: the first ``wrong`` labels disagree."""
    writer = PredictionLogWriter(str(root), flush_interval_s=60)
    labels = []
    for i in range(requests):
        request = f"v{version}-{i}"
        status = 503 if i < errors else 200
        assert writer.put(
            PredictionRecord(
                f"{request}-0", request, T0 + timedelta(seconds=i * 0.5), "churn",
                str(version), "v2", latency_s, status, {"x": i},
                {"predictions": 1} if status == 200 else {},
            )
        )  # fmt: skip
        if status == 200:
            labels.append(Label.of("prediction_id", f"{request}-0", 0 if i < wrong else 1))
    writer.close()
    write_labels(str(root), "churn", labels, actor="test", source="api", now=T0)


@pytest.fixture
def registry(tmp_path: Path) -> RegistryService:
    service = RegistryService(
        MemoryMetadataStore(),
        LocalArtifactStore(tmp_path / "artifacts"),
        default_catalog(),
        actor="alice",
    )
    add_versions(service, "churn", 4)
    return service


def test_each_arm_gets_its_own_versions_numbers(tmp_path: Path, registry: RegistryService) -> None:
    root = tmp_path / "predictions"
    log_version(root, 3, requests=200, errors=2, latency_s=0.010, wrong=0)
    log_version(root, 4, requests=100, errors=5, latency_s=0.020, wrong=19)
    source = VersionLogNumbers(str(root), registry)
    numbers = source("churn", [CHAMPION, CANARY], since=T0, until=T0 + timedelta(minutes=5))
    champion, canary = numbers["champion"], numbers["canary"]
    assert (champion.version, champion.requests, champion.errors) == (3, 200, 2)
    assert (canary.version, canary.requests, canary.errors) == (4, 100, 5)
    assert champion.latency_p99_ms == pytest.approx(10.0)
    assert canary.latency_p99_ms == pytest.approx(20.0)
    assert (champion.labelled, champion.accuracy) == (198, pytest.approx(1.0))
    assert canary.labelled == 95
    assert canary.accuracy == pytest.approx((95 - 14) / 95)  # 19 wrong labels, 5 on errors
    # versions without reference statistics have no drift share: unknown, not a failure
    assert canary.drift_share is None and champion.drift_share is None


def test_an_arm_without_traffic_has_zero_requests(
    tmp_path: Path, registry: RegistryService
) -> None:
    source = VersionLogNumbers(str(tmp_path / "empty"), registry)
    numbers = source("churn", [CANARY], since=T0, until=T0 + timedelta(minutes=1))
    assert numbers["canary"].requests == 0 and numbers["canary"].accuracy is None


def test_drift_share_is_measured_against_each_versions_reference(tmp_path: Path) -> None:
    rng = np.random.default_rng(7)
    sample = pd.DataFrame({"age": rng.normal(40, 5, 2000), "income": rng.normal(50, 10, 2000)})
    with build_registry(Settings(home=tmp_path / "home", user="tester")) as registry:
        for _ in range(2):
            registry.register(EchoModel(), "churn", PackageOptions(sample_input=sample))
        root = tmp_path / "predictions"
        same = pd.DataFrame({"age": rng.normal(40, 5, 500), "income": rng.normal(50, 10, 500)})
        older = pd.DataFrame({"age": rng.normal(60, 5, 500), "income": rng.normal(50, 10, 500)})
        writer = PredictionLogWriter(str(root), flush_interval_s=60)
        for version, frame in ((1, same), (2, older)):
            for i, row in enumerate(frame.to_dict("records")):
                request = f"v{version}-{i}"
                assert writer.put(
                    PredictionRecord(
                        f"{request}-0", request, T0 + timedelta(seconds=i * 0.1), "churn",
                        str(version), "v2", 0.001, 200, row, {"predictions": 0},
                    )
                )  # fmt: skip
        writer.close()
        champion = Arm("champion", "churn", 1, ArmRole.CHAMPION, 90.0)
        canary = Arm("canary", "churn", 2, ArmRole.CANARY, 10.0)
        numbers = VersionLogNumbers(str(root), registry)(
            "churn", [champion, canary], since=T0, until=T0 + timedelta(minutes=5)
        )
    champion_share, canary_share = (numbers[a].drift_share for a in ("champion", "canary"))
    assert champion_share is not None and canary_share is not None
    # the canary's inputs moved on age only: one more of the three columns (age, income,
    # the logged prediction) drifted than the champion's
    assert canary_share == pytest.approx(champion_share + 1 / 3)
    checks = compare(RolloutThresholds(), numbers["canary"], numbers["champion"])
    drift = next(check for check in checks if check.name == "drift_share")
    assert drift.outcome is Outcome.FAILED
