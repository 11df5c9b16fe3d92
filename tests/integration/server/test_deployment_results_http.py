"""``GET /api/deployments/{name}/status|results|compare`` on a real server app: the
deployment read from the registry, the arms' rows from the prediction log."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from starlette.testclient import TestClient

from arm_logs import write_arm, write_truth
from modelport.bootstrap import build_registry, build_server_app
from modelport.config import Settings
from modelport.domain.entities import NewVersion

pytestmark = pytest.mark.timeout(120)


@pytest.fixture
def client(tmp_path: Path) -> Iterator[TestClient]:
    """A server over a registry where churn has champion 3, canary 4 and shadow 5."""
    settings = Settings(home=tmp_path / "home", user="tester")
    now = datetime.now(UTC)
    with build_registry(settings) as registry:
        with registry.metadata.transaction() as tx:
            tx.ensure_model("churn", description="", tags={}, now=now)
            for _ in range(5):
                number = tx.allocate_version("churn", now=now)
                tx.create_version(
                    number,
                    NewVersion("churn", "sklearn", f"churn/{number}", "sha256:" + "0" * 64,
                               "tester", now),
                )  # fmt: skip
        registry.create_deployment("churn", 3)
        registry.deploy_canary("churn", 4, 10)
        registry.deploy_shadow("churn", 5, 1.0)
    uri = settings.resolved_prediction_log_uri
    start = now - timedelta(minutes=5)
    requests = [f"q{i}" for i in range(100)]
    ids = write_arm(uri, model="churn", version=3, request_ids=requests[:90],
                    predictions=[1] * 90, start=start)  # fmt: skip
    ids += write_arm(uri, model="churn", version=4, arm="canary", request_ids=requests[90:],
                     predictions=[0] * 10, start=start)  # fmt: skip
    write_arm(uri, model="churn", version=5, arm="shadow", request_ids=requests[:90],
              predictions=[1] * 80 + [0] * 10, start=start)  # fmt: skip
    write_truth(uri, "churn", dict.fromkeys(ids, 1))
    app = build_server_app(
        settings, [], worker_index=0, workers=1, on_ready=lambda: None, on_failed=lambda _: None
    )
    with TestClient(app.asgi) as test_client:
        yield test_client


def test_status_results_and_compare(client: TestClient) -> None:
    status = client.get("/api/deployments/churn/status")
    assert status.status_code == 200, status.text
    arms = {a["name"]: a for a in status.json()["arms"]}
    assert (arms["champion"]["requests"], arms["canary"]["requests"]) == (90, 10)
    assert (arms["champion"]["accuracy"], arms["canary"]["accuracy"]) == (1.0, 0.0)

    results = client.get("/api/deployments/churn/results", params={"since": "1h"}).json()
    assert "4 is worse than 3 on accuracy, -100.0 points" in " ".join(results["verdicts"])

    compare = client.get("/api/deployments/churn/compare", params={"top": "1"}).json()
    (shadow,) = compare["shadows"]
    assert (shadow["rows"], shadow["agreement_rate"]) == (90, pytest.approx(80 / 90))


def test_errors_are_json_with_the_right_status(client: TestClient) -> None:
    missing = client.get("/api/deployments/ghost/status")
    assert missing.status_code == 404 and "ghost" in missing.json()["error"]
    bad = client.get("/api/deployments/churn/results", params={"since": "soon"})
    assert bad.status_code == 400 and "since" in bad.json()["error"]
    twice = client.get("/api/deployments/churn/compare?top=1&top=2")
    assert twice.status_code == 400
