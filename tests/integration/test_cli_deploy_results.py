"""``modelport deploy status|results|compare``: a deployment from the registry, its arms'
rows from the prediction log, readable output and ``--json``."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

import numpy as np
import pytest
from click.testing import CliRunner

from arm_logs import write_arm, write_truth
from modelport.bootstrap import build_registry
from modelport.cli.deploy import deploy
from modelport.config import Settings
from modelport.domain.entities import NewVersion
from modelport.errors import DeploymentNotFoundError, InvalidArgumentError
from modelport.registry.service import RegistryService

pytestmark = pytest.mark.timeout(120)


def add_versions(registry: RegistryService, name: str, count: int) -> None:
    """Version rows to deploy (deployments check only that versions exist)."""
    now = datetime.now(UTC)
    with registry.metadata.transaction() as tx:
        tx.ensure_model(name, description="", tags={}, now=now)
        for _ in range(count):
            number = tx.allocate_version(name, now=now)
            tx.create_version(
                number,
                NewVersion(
                    name=name,
                    flavor="sklearn",
                    artifact_key=f"{name}/{number}",
                    manifest_digest="sha256:" + "0" * 64,
                    created_by="alice",
                    created_at=now,
                ),
            )


@pytest.fixture
def log() -> str:
    """churn: champion 3 (80% right), canary 4 on 20% (95% right), shadow 5, logged
    ten minutes ago, with labels."""
    settings = Settings()
    with build_registry(settings) as registry:
        add_versions(registry, "churn", 5)
        registry.create_deployment("churn", 3)
        registry.deploy_canary("churn", 4, 20)
        registry.deploy_shadow("churn", 5, 0.5)
    uri = settings.resolved_prediction_log_uri
    start = datetime.now(UTC) - timedelta(minutes=10)
    rng = np.random.default_rng(4)
    truth = rng.integers(0, 2, 1000)
    right3 = np.where(rng.uniform(size=800) < 0.80, truth[:800], 1 - truth[:800])
    right4 = np.where(rng.uniform(size=200) < 0.95, truth[800:], 1 - truth[800:])
    requests = [f"r{i}" for i in range(1000)]
    ids = write_arm(uri, model="churn", version=3, request_ids=requests[:800],
                    predictions=right3, start=start)  # fmt: skip
    ids += write_arm(uri, model="churn", version=4, arm="canary", request_ids=requests[800:],
                     predictions=right4, start=start, latencies_s=[0.004] * 200)  # fmt: skip
    shadow = right3[:400].copy()
    shadow[:10] = 1 - shadow[:10]
    write_arm(uri, model="churn", version=5, arm="shadow", request_ids=requests[:400],
              predictions=shadow, start=start, inputs={"x": list(range(400))})  # fmt: skip
    write_truth(uri, "churn", dict(zip(ids, truth.tolist(), strict=True)))
    return uri


def invoke(*args: str) -> str:
    result = CliRunner(env={"COLUMNS": "250"}).invoke(deploy, list(args), catch_exceptions=False)
    assert result.exit_code == 0, result.output
    return result.output


def as_json(*args: str) -> Any:
    return json.loads(invoke(*args, "--json"))


def test_status_shows_each_arm(log: str) -> None:
    document = as_json("status", "churn")
    arms = {a["name"]: a for a in document["arms"]}
    assert [(a["requests"], a["role"]) for a in arms.values()] == [
        (800, "champion"), (200, "canary"), (400, "shadow"),
    ]  # fmt: skip
    assert arms["canary"]["latency_p50_ms"] == pytest.approx(4.0)
    assert arms["canary"]["traffic_share"] == pytest.approx(0.2)
    text = invoke("status", "churn")
    assert "churn/4" in text and "canary" in text and "4.0 ms" in text
    assert "of 800" in text  # accuracy of the champion's 800 labelled rows


def test_results_give_a_verdict(log: str) -> None:
    document = as_json("results", "churn", "--since", "1h")
    assert any(v.startswith("4 is better than 3 on accuracy, +") for v in document["verdicts"])
    text = invoke("results", "churn")
    assert "two-proportion z" in text and "mann-whitney u" in text
    assert "- 4 is better than 3 on accuracy" in text


def test_compare_the_shadow(log: str) -> None:
    document = as_json("compare", "churn", "--top", "3")
    (shadow,) = document["shadows"]
    assert (shadow["rows"], shadow["agreeing"]) == (400, 390)
    assert [w["prediction_id"] for w in shadow["worst"]] == ["r0-0", "r1-0", "r2-0"]
    text = invoke("compare", "churn")
    assert "97.50% (390/400)" in text and "where they differ most" in text


def test_errors_name_what_is_wrong(log: str) -> None:
    with pytest.raises(DeploymentNotFoundError):
        invoke("status", "ghost")
    with pytest.raises(InvalidArgumentError, match="neither a duration nor a timestamp"):
        invoke("status", "churn", "--since", "yesterday")
    with pytest.raises(InvalidArgumentError, match="is not a shadow"):
        invoke("compare", "churn", "--shadow", "canary")


def test_a_lone_champion_has_nothing_to_compare() -> None:
    with build_registry(Settings()) as registry:
        add_versions(registry, "fraud", 1)
        registry.create_deployment("fraud", 1)
    assert "the deployment has only its champion" in invoke("results", "fraud")
    assert as_json("results", "fraud")["comparisons"] == []
