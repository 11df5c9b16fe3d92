"""Serving a registry deployment over HTTP (in process): the name answers with its arms,
says which arm and version answered, follows the registry's changes, logs and counts
per arm, and copies requests to shadows off the caller's path."""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from prometheus_client.parser import text_string_to_metric_families
from starlette.testclient import TestClient

from modelport.bootstrap import build_registry, build_server_app, resolve_sources
from modelport.config import PredictionLogSettings, Settings
from modelport.monitoring.prediction_log import query
from modelport.package.options import PackageOptions
from modelport.serving.sources import parse_source
from testing_models import EchoModel

pytestmark = pytest.mark.timeout(180)

ROW = {"inputs": [{"name": "input", "shape": [1, 3], "datatype": "FP64", "data": [1, 2, 3]}]}
OFFSETS = {1: 100.0, 2: 200.0, 3: 300.0}


@pytest.fixture(scope="module")
def settings(tmp_path_factory: pytest.TempPathFactory) -> Settings:
    home = tmp_path_factory.mktemp("deployment-serving")
    settings = Settings(home=home, user="tester")
    x = np.random.default_rng(0).normal(size=(20, 3))
    with build_registry(settings) as registry:
        for offset in OFFSETS.values():
            options = PackageOptions(sample_input=x, flavor_options={"config": {"offset": offset}})
            registry.register(EchoModel(), "churn", options)
        for config in ({"fail_on": 1}, {"delay": 0.3}):  # 4: fails on ROW, 5: slow
            options = PackageOptions(sample_input=x, flavor_options={"config": config})
            registry.register(EchoModel(), "churn", options)
    return settings


@contextmanager
def serving(settings: Settings, name: str, log: Path) -> Iterator[TestClient]:
    settings = settings.model_copy(
        update={
            "serve": settings.serve.model_copy(update={"poll_interval_s": 0.05}),
            "prediction_log": PredictionLogSettings(uri=str(log)),
        }
    )
    sources = resolve_sources(settings, [parse_source(name)])
    assert sources[0].deployment == name
    app = build_server_app(
        settings, sources, worker_index=0, workers=1, on_ready=lambda: None, on_failed=print
    )
    with TestClient(app.asgi) as client:
        yield client


def change(settings: Settings, act: Callable[[Any], object]) -> None:
    with build_registry(settings) as registry:
        act(registry)


def arm_of(client: TestClient, name: str, **headers: str) -> tuple[str, str]:
    response = client.post(f"/v2/models/{name}/infer", json=ROW, headers=headers)
    assert response.status_code == 200, response.text
    body = response.json()
    version = response.headers["x-modelport-version"]
    assert body["model_name"] == name
    assert body["model_version"] == version
    assert body["outputs"][0]["data"] == [OFFSETS[int(version)] + 6]  # the version's answer
    return response.headers["x-modelport-arm"], version


def wait_until(check: Callable[[], bool], seconds: float = 20) -> None:
    deadline = time.monotonic() + seconds
    while not check():
        assert time.monotonic() < deadline, "the server never followed the change"
        time.sleep(0.05)


def metric(client: TestClient, name: str, **labels: str) -> float:
    text = client.get("/metrics").text
    return sum(
        sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
        if sample.name == name and labels.items() <= sample.labels.items()
    )


def test_a_bare_name_serves_the_deployment_and_follows_it(
    settings: Settings, tmp_path: Path
) -> None:
    change(settings, lambda r: r.create_deployment("web", 1, model="churn"))
    with serving(settings, "web", tmp_path) as client:
        assert arm_of(client, "web") == ("champion", "1")
        mlflow = client.post("/invocations", json={"inputs": [[1, 2, 3]]})
        assert mlflow.status_code == 200, mlflow.text
        assert mlflow.headers["x-modelport-arm"] == "champion"
        assert mlflow.headers["x-modelport-version"] == "1"

        change(settings, lambda r: r.deploy_canary("web", 2, 25, model="churn"))
        wait_until(lambda: arm_of(client, "web") == ("canary", "2"))
        seen = Counter(arm_of(client, "web") for _ in range(100))
        assert seen == {("champion", "1"): 75, ("canary", "2"): 25}
        # A client that names a version gets that arm.
        answer = client.post("/v2/models/web/versions/2/infer", json=ROW)
        assert answer.headers["x-modelport-arm"] == "canary"

        change(settings, lambda r: r.promote_deployment("web", skip_gates="test"))
        wait_until(lambda: arm_of(client, "web") == ("champion", "2"))
        assert {arm_of(client, "web") for _ in range(20)} == {("champion", "2")}

        change(settings, lambda r: r.rollback_deployment("web"))
        wait_until(lambda: arm_of(client, "web") == ("champion", "1"))

        assert metric(client, "modelport_arm_requests_total", deployment="web", arm="canary") > 0
        state = client.get("/api/models").json()["models"][0]
        assert state["name"] == "web" and state["stale"] is None
        assert state["source"] == "deployment web"
        deployment = state["deployment"]
        assert (deployment["name"], deployment["revision"]) == ("web", 4)
        assert [(a["name"], a["version"]) for a in deployment["arms"]] == [("champion", 1)]
        metadata = client.get("/v2/models/web").json()
        assert metadata["name"] == "web" and metadata["versions"] == ["1"]


def test_sticky_callers_keep_their_arm(settings: Settings, tmp_path: Path) -> None:
    change(settings, lambda r: r.create_deployment("sticky", 1, model="churn"))
    change(
        settings,
        lambda r: r.deploy_ab(
            "sticky", [(1, 50), (2, 50)], sticky="header:X-User-ID", model="churn"
        ),
    )
    with serving(settings, "sticky", tmp_path) as client:
        for user in ("alice", "bob", "carol", "dave"):
            arms = {arm_of(client, "sticky", **{"X-User-ID": user}) for _ in range(10)}
            assert len(arms) == 1
        users = {arm_of(client, "sticky", **{"X-User-ID": f"u{i}"})[0] for i in range(40)}
        assert users == {"champion", "challenger"}


def test_shadow_answers_are_logged_under_the_callers_request_id(
    settings: Settings, tmp_path: Path
) -> None:
    change(settings, lambda r: r.create_deployment("mirror", 1, model="churn"))
    change(settings, lambda r: r.deploy_shadow("mirror", 3, 1.0, model="churn"))
    with serving(settings, "mirror", tmp_path) as client:
        for i in range(5):
            headers = {"x-request-id": f"req-{i}"}
            response = client.post("/v2/models/mirror/infer", json=ROW, headers=headers)
            assert response.headers["x-modelport-arm"] == "champion"
            assert response.json()["outputs"][0]["data"] == [106.0]  # never the shadow's
        wait_until(
            lambda: metric(client, "modelport_arm_requests_total", arm="shadow", outcome="ok") == 5
        )
    rows = query(str(tmp_path), "churn").to_pylist()
    logged = {(r["request_id"], r["arm"], r["version"], r["deployment"]) for r in rows}
    for i in range(5):
        assert (f"req-{i}", "champion", "1", "mirror") in logged
        assert (f"req-{i}", "shadow", "3", "mirror") in logged


def test_failing_and_slow_shadows_never_reach_the_caller(
    settings: Settings, tmp_path: Path
) -> None:
    change(settings, lambda r: r.create_deployment("isolated", 1, model="churn"))
    change(settings, lambda r: r.deploy_shadow("isolated", 4, 1.0, model="churn"))
    change(settings, lambda r: r.deploy_shadow("isolated", 5, 1.0, model="churn"))
    with serving(settings, "isolated", tmp_path) as client:
        for _ in range(5):
            assert arm_of(client, "isolated") == ("champion", "1")
        wait_until(
            lambda: (
                metric(client, "modelport_arm_requests_total", arm="shadow-4", outcome="error") == 5
            )
        )
        wait_until(
            lambda: (
                metric(client, "modelport_arm_requests_total", arm="shadow-5", outcome="ok") == 5
            )
        )
        assert metric(client, "modelport_arm_requests_total", arm="champion", outcome="error") == 0
        assert metric(client, "modelport_shadow_dropped_total") == 0
    rows = query(str(tmp_path), "churn", "4").to_pylist()
    assert {(r["arm"], r["status"]) for r in rows} == {("shadow-4", 500)}
