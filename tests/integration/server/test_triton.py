"""Triton's extensions as its clients read them: model configuration, statistics, the
repository index, and load/unload refused with the reason."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from starlette.testclient import TestClient

from modelport.bootstrap import build_registry, build_server_app
from modelport.config import Settings
from modelport.domain.signature import ColumnSchema, ColumnSpec, Signature
from modelport.package.options import PackageOptions
from modelport.serving.sources import parse_source
from testing_models import EchoModel
from testing_server import Catalog, Served, ServeFn

ECHO_ROW = {"inputs": [{"name": "input", "shape": [1, 3], "datatype": "FP64", "data": [1, 2, 3]}]}


def forest_rows(served: Served, rows: int) -> dict[str, Any]:
    x = served.data["forest"].head(rows).to_numpy()
    tensor = {
        "name": "input",
        "shape": list(x.shape),
        "datatype": "FP64",
        "data": x.ravel().tolist(),
    }
    return {"inputs": [tensor]}


def test_the_server_names_the_extensions_it_speaks(server: Served) -> None:
    extensions = server.client.get("/v2").json()["extensions"]
    assert {"model_configuration", "statistics", "model_repository"} <= set(extensions)


def test_config_of_a_batched_onnx_model_follows_the_batching_settings(serve: ServeFn) -> None:
    batching = {"max_batch_size": 32, "max_wait_ms": 1.5, "max_queue": 7}
    served = serve(["forest@production"], batching=batching, request_timeout_s=3)
    config = served.client.get("/v2/models/forest/config").json()
    assert config["name"] == "forest"
    assert (config["platform"], config["backend"]) == ("sklearn_onnxruntime", "onnxruntime")
    assert config["max_batch_size"] == 32
    # Triton leaves the batch dimension out of dims when max_batch_size > 0.
    assert config["input"] == [
        {"name": "input", "data_type": "TYPE_FP64", "dims": [20], "optional": False}
    ]
    assert config["output"] == [
        {"name": "predictions", "data_type": "TYPE_INT64", "dims": []},
        {"name": "probabilities", "data_type": "TYPE_FP64", "dims": [2]},
    ]
    assert config["dynamic_batching"] == {
        "preferred_batch_size": [],
        "max_queue_delay_microseconds": 1500,
        "preserve_ordering": False,
        "default_queue_policy": {
            "timeout_action": "REJECT",
            "default_timeout_microseconds": 3_000_000,
            "allow_timeout_override": True,
            "max_queue_size": 7,
        },
    }
    assert config["version_policy"] == {"specific": {"versions": [1]}}
    assert config["model_transaction_policy"] == {"decoupled": False}
    assert config["parameters"]["source"] == {"string_value": "models:/forest@production"}
    assert served.client.get("/v2/models/forest/versions/1/config").json() == config


def test_config_of_a_native_columns_model_with_an_optional_column(
    catalog: Catalog, churn_model: Any, tmp_path: Path
) -> None:
    frame = catalog.data["churn"]
    signature = Signature(
        ColumnSchema((
            ColumnSpec("tenure", "int64"), ColumnSpec("charges", "float64"),
            ColumnSpec("contract", "string"), ColumnSpec("region", "string", required=False),
        ))
    )  # fmt: skip
    settings = Settings(home=tmp_path / "home")
    with build_registry(settings) as registry:
        options = PackageOptions(sample_input=frame, signature=signature, accelerate=False)
        registry.register(churn_model, "churn", options)
    app = build_server_app(
        settings, [parse_source("churn")], worker_index=0, workers=1,
        on_ready=lambda: None, on_failed=lambda message: None,
    )  # fmt: skip
    with TestClient(app.asgi) as client:
        config = client.get("/v2/models/churn/config").json()
    assert (config["platform"], config["backend"]) == ("sklearn", "sklearn")
    assert config["input"] == [
        {"name": "tenure", "data_type": "TYPE_INT64", "dims": [], "optional": False},
        {"name": "charges", "data_type": "TYPE_FP64", "dims": [], "optional": False},
        {"name": "contract", "data_type": "TYPE_STRING", "dims": [], "optional": False},
        {"name": "region", "data_type": "TYPE_STRING", "dims": [], "optional": True},
    ]
    assert config["version_policy"] == {"latest": {"num_versions": 1}}  # a bare name follows it
    assert config["parameters"]["layout"] == {"string_value": "columns"}


def test_config_errors_are_json_404s(server: Served) -> None:
    for path in ("/v2/models/ghost/config", "/v2/models/forest/versions/9/config"):
        response = server.client.get(path)
        assert response.status_code == 404
        assert "not served" in response.json()["error"]


def test_statistics_count_what_the_version_did(serve: ServeFn) -> None:
    served = serve(["forest@production", "echo@production"])
    client = served.client
    before_ms = time.time() * 1000
    sizes = [1, 3, 2, 5]
    for rows in sizes:
        assert client.post("/v2/models/forest/infer", json=forest_rows(served, rows)).is_success
    bad = {"inputs": [{"name": "input", "shape": [1, 2], "datatype": "FP64", "data": [1, 2]}]}
    assert client.post("/v2/models/forest/infer", json=bad).status_code == 400
    after_ms = time.time() * 1000

    stats = client.get("/v2/models/forest/stats").json()["model_stats"]
    assert [(s["name"], s["version"]) for s in stats] == [("forest", "1")]
    stat = stats[0]
    inference = stat["inference_stats"]
    assert stat["inference_count"] == sum(sizes)
    assert inference["success"]["count"] == len(sizes)
    assert inference["fail"]["count"] == 1  # its inputs did not fit the version
    assert inference["queue"]["count"] == len(sizes)
    assert inference["compute_infer"]["count"] == len(sizes)
    assert 1 <= stat["execution_count"] <= len(sizes)
    assert before_ms <= stat["last_inference"] <= after_ms + 1
    # Every model call is in the batch statistics, and every row in exactly one call.
    batches = stat["batch_stats"]
    assert sum(b["compute_infer"]["count"] for b in batches) == stat["execution_count"]
    assert sum(b["batch_size"] * b["compute_infer"]["count"] for b in batches) == sum(sizes)
    assert all(b["compute_infer"]["ns"] > 0 for b in batches)
    assert inference["success"]["ns"] >= inference["compute_infer"]["ns"] > 0
    assert inference["cache_hit"] == inference["cache_miss"] == {"count": 0, "ns": 0}

    assert client.get("/v2/models/forest/versions/1/stats").json()["model_stats"] == stats
    everything = client.get("/v2/models/stats").json()["model_stats"]
    assert [(s["name"], s["version"]) for s in everything] == [("echo", "1"), ("forest", "1")]
    assert everything[0]["inference_count"] == 0  # served, never asked


def test_statistics_errors_are_json_404s(server: Served) -> None:
    assert server.client.get("/v2/models/ghost/stats").status_code == 404
    response = server.client.get("/v2/models/forest/versions/7/stats")
    assert response.status_code == 404
    assert "version 7" in response.json()["error"]


def test_repository_index_lists_every_served_model(server: Served) -> None:
    client = server.client
    expected = [
        {"name": name, "version": "1", "state": "READY", "reason": ""}
        for name in ("churn", "echo", "forest", "regressor")
    ]
    assert client.post("/v2/repository/index").json() == expected  # tritonclient's empty body
    assert client.post("/v2/repository/index", json={}).json() == expected
    assert client.post("/v2/repository/index", json={"ready": True}).json() == expected


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (b"[1]", "must be a JSON object"),
        (b"{not json", "must be a JSON object"),
        (b'{"ready": "yes"}', '"ready" must be true or false, got "yes"'),
    ],
)
def test_a_bad_index_request_is_a_400_saying_what_is_accepted(
    server: Served, body: bytes, message: str
) -> None:
    response = server.client.post("/v2/repository/index", content=body)
    assert response.status_code == 400
    assert message in response.json()["error"]


@pytest.mark.parametrize("action", ["load", "unload"])
def test_load_and_unload_are_refused_with_the_way_to_switch_versions(
    server: Served, action: str
) -> None:
    response = server.client.post(f"/v2/repository/models/forest/{action}", json={})
    assert response.status_code == 501
    error = response.json()["error"]
    assert error.startswith("explicit model load / unload is not allowed")
    assert "modelport alias set forest production VERSION" in error


def test_index_and_statistics_across_a_swap_and_a_failed_one(tmp_path: Path) -> None:
    # The server's own defences against a bad version are under test: no promotion
    # gate stops the bad version before it reaches the server.
    settings = Settings(
        home=tmp_path / "home", serve={"poll_interval_s": 0.1}, gates={"targets": []}
    )
    x = np.zeros((4, 3))
    with build_registry(settings) as registry:
        for offset in (0, 10, 20):
            options = PackageOptions(sample_input=x, flavor_options={"config": {"offset": offset}})
            registry.register(EchoModel(), "echo", options)
        registry.promote("echo", 1, "production")
    app = build_server_app(
        settings, [parse_source("echo@production")], worker_index=0, workers=1,
        on_ready=lambda: None, on_failed=lambda message: None,
    )  # fmt: skip
    with TestClient(app.asgi) as client:
        assert client.post("/v2/models/echo/infer", json=ECHO_ROW).is_success
        with build_registry(settings) as registry:
            registry.promote("echo", 2, "production")
        wait_until(lambda: client.get("/v2/models/echo").json()["versions"] == ["2"])
        assert client.post("/v2/models/echo/infer", json=ECHO_ROW).is_success
        with build_registry(settings) as registry:
            stored = registry.artifacts.local_path(registry.get_version("echo", 3).artifact_key)
            code = stored / "model" / "code" / "testing_models.py"
            code.write_text(code.read_text() + "\n# tampered\n")  # fails its digest now
            registry.promote("echo", 3, "production")
        # Version 3 shows as LOADING first, then UNAVAILABLE once its load has failed.
        wait_until(
            lambda: (
                [e["state"] for e in client.post("/v2/repository/index").json()]
                == ["READY", "UNAVAILABLE"]
            )
        )
        index = client.post("/v2/repository/index").json()
        stats = client.get("/v2/models/echo/stats").json()["model_stats"]
        ready_only = client.post("/v2/repository/index", json={"ready": True}).json()
    assert index[0] == {"name": "echo", "version": "2", "state": "READY", "reason": ""}
    assert (index[1]["version"], index[1]["state"]) == ("3", "UNAVAILABLE")
    assert "does not match its recorded sha256" in index[1]["reason"]
    assert ready_only == index[:1]
    # The version swapped out keeps the statistics of what it answered.
    assert [(s["version"], s["inference_count"]) for s in stats] == [("1", 1), ("2", 1)]


def wait_until(condition: Any, seconds: float = 10) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, "the server never got there"
        time.sleep(0.05)
