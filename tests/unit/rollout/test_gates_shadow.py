"""The shadow agreement gate over a real prediction log."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from arm_logs import T0, write_arm
from modelport.artifacts.local import LocalArtifactStore
from modelport.config import Settings
from modelport.domain.deployments import Deployment, new_deployment, with_shadow
from modelport.domain.entities import ModelVersion, NewVersion, VersionStatus
from modelport.domain.gates import GateOutcome
from modelport.errors import InvalidArgumentError
from modelport.flavors.catalog import default_catalog
from modelport.metadata.memory import MemoryMetadataStore
from modelport.registry.service import RegistryService
from modelport.rollout.gates_default import build_gates
from modelport.rollout.gates_shadow import ShadowAgreementGate

pytestmark = pytest.mark.timeout(60)


@dataclass
class Deployments:
    """The registry's deployments, as the gate reads them."""

    deployments: list[Deployment] = field(default_factory=list)

    def list_deployments(self) -> list[Deployment]:
        return list(self.deployments)


@dataclass
class Context:
    registry: Deployments
    log_uri: str | None


def version(number: int) -> ModelVersion:
    return ModelVersion("churn", number, "sklearn", VersionStatus.ACTIVE, "k", "d", "me", T0)


def gate(min_agreement: float = 0.95, min_rows: int = 100) -> ShadowAgreementGate:
    return ShadowAgreementGate(
        min_agreement, min_rows=min_rows, clock=lambda: T0 + timedelta(hours=1)
    )


def shadowed(root: Path, agreeing: int, rows: int = 200) -> Context:
    requests = [f"r{i}" for i in range(rows)]
    write_arm(root, model="churn", version=3, request_ids=requests, predictions=[1] * rows)
    answers = [1] * agreeing + [0] * (rows - agreeing)
    write_arm(
        root, model="churn", version=4, arm="shadow", request_ids=requests, predictions=answers
    )
    deployment = with_shadow(new_deployment("churn", "churn", 3), "churn", 4, 0.5)
    return Context(Deployments([deployment]), str(root))


def test_enough_agreement_passes_with_its_numbers(tmp_path: Path) -> None:
    result = gate(min_agreement=0.95).evaluate(version(4), version(3), shadowed(tmp_path, 196))
    assert result.outcome is GateOutcome.PASSED
    assert result.details["agreement_rate"] == pytest.approx(0.98)
    assert result.details["rows"] == 200
    assert "98.0% of 200 rows" in result.message


def test_too_little_agreement_fails(tmp_path: Path) -> None:
    result = gate(min_agreement=0.95).evaluate(version(4), version(3), shadowed(tmp_path, 180))
    assert result.outcome is GateOutcome.FAILED
    assert "90.0% of 200 rows, below the 95.0% required" in result.message


def test_skipped_without_a_shadow_run_or_with_too_few_rows(tmp_path: Path) -> None:
    context = shadowed(tmp_path, 20, rows=20)
    assert gate().evaluate(version(5), version(3), context).outcome is GateOutcome.SKIPPED
    few = gate(min_rows=100).evaluate(version(4), version(3), context)
    assert few.outcome is GateOutcome.SKIPPED
    assert "fewer than the 100 needed" in few.message
    # Rows older than the window do not count.
    old = ShadowAgreementGate(clock=lambda: T0 + timedelta(days=30), min_rows=1)
    assert old.evaluate(version(4), version(3), context).outcome is GateOutcome.SKIPPED
    no_log = Context(context.registry, None)
    assert gate().evaluate(version(4), None, no_log).outcome is GateOutcome.SKIPPED
    with pytest.raises(InvalidArgumentError, match="min_agreement"):
        ShadowAgreementGate(1.5)


def test_the_configured_gates_run_it_on_a_registry_deployment(tmp_path: Path) -> None:
    settings = Settings(
        home=tmp_path / "home",
        gates={"checks": ["shadow"], "min_shadow_agreement": 0.9, "shadow_min_rows": 50},
    )
    registry = RegistryService(
        MemoryMetadataStore(), LocalArtifactStore(tmp_path / "a"), default_catalog(), actor="al"
    )
    now = datetime.now(UTC)
    with registry.metadata.transaction() as tx:
        tx.ensure_model("churn", description="", tags={}, now=now)
        for _ in range(4):
            number = tx.allocate_version("churn", now=now)
            tx.create_version(
                number,
                NewVersion("churn", "sklearn", f"k{number}", "sha256:" + "0" * 64, "al", now),
            )
    registry.create_deployment("churn", 3)
    registry.deploy_shadow("churn", 4, 1.0)
    uri = settings.resolved_prediction_log_uri
    requests = [f"r{i}" for i in range(60)]
    start = now - timedelta(minutes=5)
    write_arm(uri, model="churn", version=3, request_ids=requests, predictions=[1] * 60,
              start=start)  # fmt: skip
    write_arm(uri, model="churn", version=4, arm="shadow", request_ids=requests,
              predictions=[1] * 50 + [0] * 10, start=start)  # fmt: skip
    candidate = registry.get_version("churn", 4)
    report = build_gates(settings, registry).evaluate(candidate, "production")
    (result,) = report.results
    assert (result.gate, result.outcome) == ("shadow", GateOutcome.FAILED)
    assert result.details["agreement_rate"] == pytest.approx(50 / 60)
    assert report.exit_code == 1
    registry.close()
