"""Each arm's numbers over a step, read from a real prediction log and its labels."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from modelport.artifacts.local import LocalArtifactStore
from modelport.domain.deployments import Arm, ArmRole
from modelport.flavors.catalog import default_catalog
from modelport.metadata.memory import MemoryMetadataStore
from modelport.monitoring.feedback.store import Label, write_labels
from modelport.monitoring.prediction_log import PredictionLogWriter, PredictionRecord
from modelport.registry.service import RegistryService
from modelport.rollout.numbers import VersionLogNumbers

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
