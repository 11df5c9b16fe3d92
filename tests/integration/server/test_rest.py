"""modelport's REST routes, the OpenAPI document as route inventory, and /metrics."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from prometheus_client.parser import text_string_to_metric_families
from starlette.testclient import TestClient

from modelport.bootstrap import build_registry, build_server_app
from modelport.config import Settings
from modelport.package.options import PackageOptions
from modelport.server.http.app import ROUTES
from modelport.server.http.rest_schemas import ModelsResponse
from modelport.serving.sources import parse_source
from testing_server import Served


def test_models_and_their_state(server: Served) -> None:
    answer = server.client.get("/api/models").json()
    models = {m["name"]: m for m in answer["models"]}
    assert set(models) == {"churn", "echo", "forest", "regressor"}
    forest = models["forest"]
    acceleration = forest.pop("acceleration")
    assert forest == {
        "name": "forest",
        "source": "models:/forest@production",
        "version": 1,
        "wanted_version": 1,
        "stale": None,
        "state": "ready",
        "runtime": "onnxruntime",
        "error": None,
        "deployment": None,
    }
    assert acceleration["status"] == "verified" and acceleration["reason"] is None
    assert acceleration["rows_checked"] == 400
    assert 0 <= acceleration["max_abs_diff"] <= acceleration["tolerance"]
    assert models["churn"]["acceleration"] is None  # registered without acceleration
    assert answer["registry"] == {
        "followed": True,
        "reachable": True,
        "unreachable_since": None,
        "error": None,
    }
    assert models["churn"]["runtime"] == "sklearn"  # registered without acceleration
    assert models["echo"]["runtime"] == "python"


def test_why_a_model_is_not_accelerated_shows_in_api_models(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from sklearn.linear_model import LogisticRegression

    settings = Settings(home=tmp_path, user="tester")
    frame = pd.DataFrame(np.random.default_rng(0).normal(size=(60, 3)), columns=["a", "b", "c"])
    monkeypatch.setitem(sys.modules, "skl2onnx", None)  # the converter cannot be imported
    with build_registry(settings) as registry:
        model = LogisticRegression().fit(frame, frame["a"] > 0)
        registry.register(model, "plain", PackageOptions(sample_input=frame))
    monkeypatch.undo()
    app = build_server_app(
        settings,
        [parse_source("plain")],
        worker_index=0,
        workers=1,
        on_ready=lambda: None,
        on_failed=lambda message: None,
    )
    with TestClient(app.asgi) as client:
        answer = client.get("/api/models").json()
    ModelsResponse.model_validate(answer)  # as the OpenAPI document describes it
    (plain,) = answer["models"]
    assert plain["runtime"] == "sklearn"
    assert plain["acceleration"]["status"] == "unavailable"
    assert plain["acceleration"]["reason"].startswith("skl2onnx is not installed")


def test_one_model_with_its_signature_and_no_internal_fields(server: Served) -> None:
    detail = server.client.get("/api/models/churn").json()
    assert detail["flavor"] == "sklearn"
    assert [c["name"] for c in detail["signature"]["inputs"]["columns"]] == [
        "tenure", "charges", "contract", "region"
    ]  # fmt: skip
    text = str(detail)
    assert "artifact" not in text and "/tmp" not in text and "manifest_digest" not in text
    missing = server.client.get("/api/models/ghost")
    assert missing.status_code == 404
    assert "ghost" in missing.json()["error"]


def test_openapi_lists_exactly_the_routes_the_app_has(server: Served) -> None:
    from openapi_spec_validator import validate

    document = server.client.get("/api/openapi.json").json()
    validate(document)
    documented = {
        (path, method.upper()) for path, item in document["paths"].items() for method in item
    }
    routed = {(path, method) for path, methods, _ in ROUTES for method in methods}
    assert documented == routed


def test_metrics_count_requests_batches_and_models(server: Served) -> None:
    x = server.data["forest"].head(2)
    server.client.post("/invocations?model=forest", json={"inputs": x.to_numpy().tolist()})
    server.client.post("/v2/models/ghost/infer", json={"inputs": []})
    response = server.client.get("/metrics")
    assert response.headers["content-type"].startswith("text/plain")
    samples = [
        sample
        for family in text_string_to_metric_families(response.text)
        for sample in family.samples
    ]

    def value(name: str, **labels: str) -> float:
        return sum(
            s.value for s in samples if s.name == name and labels.items() <= s.labels.items()
        )

    assert value("modelport_requests_total", model="forest", protocol="mlflow", code="200") == 1
    assert value("modelport_requests_total", model="_unknown", protocol="v2", code="404") == 1
    assert value("modelport_predictions_total", model="forest", version="1") == 2
    assert value("modelport_batch_size_count", model="forest") >= 1
    assert value("modelport_model_ready", model="forest", runtime="onnxruntime") == 1
    assert value("modelport_model_loads_total", model="echo", kind="start", result="ok") == 1
    assert value("modelport_request_duration_seconds_count", model="forest") == 1
