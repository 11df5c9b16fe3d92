"""``/api/deployments``: the verbs of ``modelport deploy`` over HTTP, on a server with its
own registry (the deployments written here must not leak into other server tests)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from starlette.testclient import TestClient

from modelport.bootstrap import build_registry, build_server_app
from modelport.config import Settings
from modelport.domain.entities import ModelVersion
from modelport.domain.gates import GateOutcome, GateReport, GateResult
from modelport.package.options import PackageOptions
from modelport.server.http.app import ServerApp
from modelport.serving.sources import parse_source
from testing_deployments import add_versions
from testing_models import EchoModel


@pytest.fixture(scope="module")
def echo_package(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A package directory for the server to serve (deployments need something running)."""
    settings = Settings(home=tmp_path_factory.mktemp("echo-home"))
    with build_registry(settings) as registry:
        version = registry.register(
            EchoModel(), "echo", PackageOptions(sample_input=np.zeros((3, 2)))
        )
        return registry.artifacts.local_path(version.artifact_key)


@pytest.fixture
def served(echo_package: Path, tmp_path: Path) -> Iterator[tuple[TestClient, ServerApp]]:
    """A server whose own registry holds churn/1..5 and no deployment."""
    # Version rows without packages: no promotion gate guards production here.
    settings = Settings(home=tmp_path / "home", user="ops-bot", gates={"targets": []})
    with build_registry(settings) as registry:
        add_versions(registry, "churn", 5)
    app = build_server_app(
        settings,
        [parse_source(f"echo={echo_package}")],
        worker_index=0,
        workers=1,
        on_ready=lambda: None,
        on_failed=lambda message: None,
    )
    with TestClient(app.asgi) as test_client:
        yield test_client, app


@pytest.fixture
def client(served: tuple[TestClient, ServerApp]) -> TestClient:
    return served[0]


def weights(document: dict[str, Any]) -> list[tuple[str, int, float]]:
    return [(a["name"], a["version"], a["weight"]) for a in document["arms"]]


def test_the_verbs_over_http(client: TestClient) -> None:
    assert client.get("/api/deployments").json() == {"deployments": []}
    created = client.put("/api/deployments/churn", json={"version": 3, "reason": "v3"})
    assert created.status_code == 201
    assert weights(created.json()) == [("champion", 3, 100.0)]
    assert created.json()["updated_by"] == "ops-bot"
    canary = client.post("/api/deployments/churn/canary", json={"version": 4, "weight": 10})
    assert canary.status_code == 200
    assert weights(canary.json()) == [("champion", 3, 90.0), ("canary", 4, 10.0)]
    wider = client.post("/api/deployments/churn/weights", json={"arm": "canary", "weight": 20})
    assert weights(wider.json()) == [("champion", 3, 80.0), ("canary", 4, 20.0)]
    shadow = client.post("/api/deployments/churn/shadow", json={"version": 5, "sample": 0.25})
    assert shadow.json()["arms"][-1]["sample"] == 0.25
    removed = client.delete("/api/deployments/churn/arms/shadow", params={"reason": "noisy"})
    assert [a["name"] for a in removed.json()["arms"]] == ["champion", "canary"]
    promoted = client.post("/api/deployments/churn/promote", json={"reason": "good"})
    assert weights(promoted.json()) == [("champion", 4, 100.0)]
    back = client.post("/api/deployments/churn/rollback")
    assert weights(back.json()) == [("champion", 3, 100.0)]
    split = client.post(
        "/api/deployments/churn/ab",
        json={"arms": [{"version": 3, "weight": 50}, {"version": 4, "weight": 50}],
              "sticky": "header:X-User-ID"},
    )  # fmt: skip
    assert split.json()["sticky"] == "header:X-User-ID"
    again = client.post("/api/deployments/churn/ab", json={"arms": "3:30,4:70"})
    assert weights(again.json()) == [("champion", 3, 30.0), ("challenger", 4, 70.0)]
    assert client.head("/api/deployments/churn").status_code == 200
    shown = client.get("/api/deployments/churn").json()
    assert shown == again.json() and shown["revision"] == 9
    history = client.get("/api/deployments/churn/history", params={"limit": 3}).json()
    assert [e["revision"] for e in history["events"]] == [9, 8, 7]
    full = client.get("/api/deployments/churn/history").json()["events"]
    assert full[-1]["reason"] == "v3" and full[-1]["actor"] == "ops-bot"
    assert [d["name"] for d in client.get("/api/deployments").json()["deployments"]] == ["churn"]
    deleted = client.delete("/api/deployments/churn", params={"reason": "done"})
    assert deleted.json() == {"deleted": {"deployment": "churn"}}
    assert client.get("/api/deployments/churn").status_code == 404
    assert client.get("/api/deployments/churn/history").json()["events"][0]["reason"] == "done"


@pytest.mark.parametrize(
    ("method", "path", "body", "status", "code", "message"),
    [
        ("GET", "/api/deployments/nope", None, 404, "DEPLOYMENT_NOT_FOUND", "does not exist"),
        ("PUT", "/api/deployments/churn", {"version": 3}, 409, "STALE_DEPLOYMENT", "already"),
        ("PUT", "/api/deployments/api", {"version": 9, "model": "churn"}, 404,
         "VERSION_NOT_FOUND", "no version 9"),
        ("PUT", "/api/deployments/api", {"version": "3"}, 400, "INVALID_REQUEST", "'version'"),
        ("PUT", "/api/deployments/api", {}, 400, "INVALID_REQUEST", "missing field(s) version"),
        ("POST", "/api/deployments/churn/canary", {"version": 4, "weight": 10, "color": 1}, 400,
         "INVALID_REQUEST", "unknown field(s) color"),
        ("POST", "/api/deployments/churn/canary", {"version": 4, "weight": 101}, 400,
         "INVALID_ARGUMENT", "between 0 and 100"),
        ("POST", "/api/deployments/churn/ab", {"arms": "3:50,4:40"}, 400, "INVALID_ARGUMENT",
         "add up to 90"),
        ("POST", "/api/deployments/churn/ab", {"arms": [3, 4]}, 400, "INVALID_REQUEST",
         "'arms'"),
        ("POST", "/api/deployments/churn/promote", {}, 400, "INVALID_ARGUMENT", "no candidate"),
        ("POST", "/api/deployments/ghost/rollback", {}, 404, "DEPLOYMENT_NOT_FOUND", "ghost"),
        ("GET", "/api/deployments/churn/history?limit=0", None, 400, "INVALID_REQUEST",
         "limit"),
        ("DELETE", "/api/deployments/churn/arms/canary", None, 400, "INVALID_ARGUMENT",
         "no arm 'canary'"),
    ],
)  # fmt: skip
def test_errors_are_json_with_the_right_status(
    client: TestClient,
    method: str,
    path: str,
    body: Any,
    status: int,
    code: str,
    message: str,
) -> None:
    assert client.put("/api/deployments/churn", json={"version": 3}).status_code == 201
    response = client.request(method, path, json=body)
    assert response.status_code == status, response.text
    error = response.json()
    assert error["code"] == code and message in error["error"]


def test_a_stale_write_and_bad_bodies_are_explained(client: TestClient) -> None:
    client.put("/api/deployments/churn", json={"version": 3})
    conflict = client.put("/api/deployments/churn", json={"version": 4})
    assert conflict.json()["deployment"] == "churn" and conflict.json()["revision"] == 1
    not_json = client.post(
        "/api/deployments/churn/canary",
        content=b"version=4",
        headers={"content-type": "text/plain"},
    )
    assert not_json.status_code == 415
    bad_json = client.post("/api/deployments/churn/canary", content=b"{", headers={})
    assert bad_json.status_code == 400 and "not valid JSON" in bad_json.json()["error"]


def test_gates_refuse_a_promotion_over_http(served: tuple[TestClient, ServerApp]) -> None:
    client, app = served
    assert app.context.registry is not None
    app.context.registry().context.gates = RefusingGates()
    client.put("/api/deployments/churn", json={"version": 3})
    client.post("/api/deployments/churn/canary", json={"version": 4, "weight": 10})
    refused = client.post("/api/deployments/churn/promote", json={})
    assert refused.status_code == 409
    assert refused.json()["code"] == "GATE_FAILED"
    assert refused.json()["report"]["results"][0]["gate"] == "signature"
    assert client.get("/api/deployments/churn").json()["revision"] == 2
    skipped = client.post("/api/deployments/churn/promote", json={"skip_gates": "incident 42"})
    assert skipped.status_code == 200 and skipped.json()["arms"][0]["version"] == 4
    event = client.get("/api/deployments/churn/history").json()["events"][0]
    assert event["details"]["gates_skipped"] == "incident 42"


class RefusingGates:
    """Gates that refuse every candidate for every target."""

    def guards(self, target: str) -> bool:
        return True

    def check(self, candidate: ModelVersion, target: str) -> GateReport:
        result = GateResult("signature", GateOutcome.FAILED, "input columns differ")
        return GateReport(candidate.name, candidate.version, target, (result,))
