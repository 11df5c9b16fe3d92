"""The documents of ``/api/deployments/{name}/status|results|compare`` for a deployment
over a real prediction log, and their OpenAPI description."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import numpy as np
import orjson
import pytest
from openapi_spec_validator import validate

from arm_logs import T0, write_arm, write_truth
from modelport.domain.deployments import (
    Deployment,
    new_deployment,
    with_canary,
    with_shadow,
)
from modelport.errors import InvalidArgumentError
from modelport.server.http.app import ROUTES
from modelport.server.http.deployment_results import (
    compare_document,
    results_document,
    status_document,
)
from modelport.server.http.openapi import openapi_document

pytestmark = pytest.mark.timeout(60)

SINCE = {"since": (T0 - timedelta(hours=1)).isoformat()}


@pytest.fixture
def deployment(tmp_path: Path) -> Deployment:
    """churn: champion 3 on 80%, canary 4 on 20%, shadow 5; 4 is right more often."""
    rng = np.random.default_rng(3)
    truth = rng.integers(0, 2, 1000)
    right3 = np.where(rng.uniform(size=800) < 0.80, truth[:800], 1 - truth[:800])
    right4 = np.where(rng.uniform(size=200) < 0.95, truth[800:], 1 - truth[800:])
    requests = [f"r{i}" for i in range(1000)]
    ids3 = write_arm(tmp_path, model="churn", version=3, request_ids=requests[:800],
                     predictions=right3)  # fmt: skip
    ids4 = write_arm(tmp_path, model="churn", version=4, arm="canary",
                     request_ids=requests[800:], predictions=right4)  # fmt: skip
    write_arm(tmp_path, model="churn", version=5, arm="shadow", request_ids=requests[:400],
              predictions=right3[:400], inputs={"x": list(range(400))})  # fmt: skip
    write_truth(tmp_path, "churn", dict(zip(ids3 + ids4, truth.tolist(), strict=True)))
    canary = with_canary(new_deployment("churn", "churn", 3), "churn", 4, 20)
    return with_shadow(canary, "churn", 5, 0.5)


def test_status_has_every_arm_with_its_traffic(tmp_path: Path, deployment: Deployment) -> None:
    document = orjson.loads(orjson.dumps(status_document(str(tmp_path), deployment, SINCE)))
    arms = {a["name"]: a for a in document["arms"]}
    assert set(arms) == {"champion", "canary", "shadow"}
    assert (arms["champion"]["requests"], arms["canary"]["requests"]) == (800, 200)
    assert arms["champion"]["traffic_share"] == pytest.approx(0.8)
    assert arms["shadow"]["traffic_share"] is None
    assert arms["shadow"]["requests"] == 400
    assert arms["canary"]["weight"] == 20.0
    assert document["comparisons"] == []


def test_results_say_the_canary_is_better(tmp_path: Path, deployment: Deployment) -> None:
    document = results_document(str(tmp_path), deployment, {**SINCE, "confidence": "0.99"})
    document = orjson.loads(orjson.dumps(document))
    accuracy = next(
        c for c in document["comparisons"] if c["metric"] == "accuracy" and c["candidate"] == "4"
    )
    assert accuracy["significant"]
    assert accuracy["verdict"].startswith("4 is better than 3 on accuracy, +")
    assert "99% CI" in accuracy["verdict"]
    assert accuracy["verdict"] in document["verdicts"]
    with pytest.raises(InvalidArgumentError, match="confidence"):
        results_document(str(tmp_path), deployment, {"confidence": "2"})
    with pytest.raises(InvalidArgumentError, match="not a number"):
        results_document(str(tmp_path), deployment, {"power": "high"})


def test_compare_reports_each_shadow(tmp_path: Path, deployment: Deployment) -> None:
    document = compare_document(str(tmp_path), deployment, {**SINCE, "top": "2"})
    (shadow,) = orjson.loads(orjson.dumps(document))["shadows"]
    assert (shadow["rows"], shadow["agreement_rate"]) == (400, 1.0)
    assert len(shadow["worst"]) == 2
    for top in ("1e400", "nan", "-1", "1001"):
        with pytest.raises(InvalidArgumentError, match="whole number between 0 and 1000"):
            compare_document(str(tmp_path), deployment, {"top": top})
    with pytest.raises(InvalidArgumentError, match="not a shadow"):
        compare_document(str(tmp_path), deployment, {"shadow": "canary"})
    plain = new_deployment("churn", "churn", 3)
    with pytest.raises(InvalidArgumentError, match="no shadow arm"):
        compare_document(str(tmp_path), plain, {})


def test_the_routes_are_documented() -> None:
    document = openapi_document(ROUTES)
    validate(document)
    for route in ("status", "results", "compare"):
        operation = document["paths"][f"/api/deployments/{{name}}/{route}"]["get"]
        assert {"200", "400", "404", "501"} <= set(operation["responses"])
