"""``modelport.ray_serve`` on a real local Ray Serve: two replicas of the server answer
V2 and MLflow requests with the models' predictions (an alias and a deployment), follow
an alias that moves, and run the app's shutdown (the prediction log, held back by a long
flush interval, is written when the replicas stop).

The test starts its own local Ray (its own temporary directory, 2 CPUs, no dashboard)
and stops it by its handle (``serve.shutdown``, ``ray.shutdown``), never ``ray stop``.
"""

from __future__ import annotations

import shutil
import socket
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pandas as pd
import pytest

import modelport
from modelport.config import Settings
from modelport.errors import InvalidArgumentError, ModelportError, UnavailableError
from modelport.monitoring.prediction_log.reader import query
from modelport.ray_serve import RayServeOptions, start
from testing_cluster_scoring import FEATURES, ID, rows

ray = pytest.importorskip("ray")
serve = pytest.importorskip("ray.serve")

pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("ray")]

POLL_S = 0.5


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


@pytest.fixture(scope="module")
def registry(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, list[Any]]:
    """``churn`` versions 1 and 2 (opposite targets, so their answers differ), the alias
    ``champion`` on version 1; the home and the two fitted models."""
    from sklearn.linear_model import LogisticRegression

    home = tmp_path_factory.mktemp("ray-serve-registry")
    settings = Settings(home=home)
    train = rows(300, seed=1)
    features = train[list(FEATURES)]
    short = (train["tenure"] < 24).astype(np.int64)
    models = [
        LogisticRegression().fit(features, short),
        LogisticRegression().fit(features, 1 - short),
    ]
    for model in models:
        modelport.register(
            model,
            "churn",
            sample_input=features,
            id_columns=[ID],
            accelerate=False,
            settings=settings,
        )
    modelport.set_alias("churn", "champion", 1, settings=settings)
    with modelport.connect(settings) as registry:
        registry.create_deployment("churn", 2)  # served by a bare "churn" (here as "live")
    return home, models


@pytest.fixture(scope="module")
def local_ray() -> Iterator[Any]:
    assert not ray.is_initialized()
    temp_dir = tempfile.mkdtemp(prefix="mp-rs-")  # short: Ray's socket paths must fit
    ray.init(
        num_cpus=2,
        include_dashboard=False,
        object_store_memory=128 * 1024 * 1024,
        configure_logging=False,
        log_to_driver=False,
        _temp_dir=temp_dir,
    )
    try:
        yield ray
    finally:
        serve.shutdown()
        ray.shutdown()
        shutil.rmtree(temp_dir, ignore_errors=True)


def v2_request(frame: pd.DataFrame) -> dict[str, Any]:
    return {
        "inputs": [
            {"name": name, "shape": [len(frame)], "datatype": "FP64", "data": frame[name].tolist()}
            for name in FEATURES
        ]
    }


def invocations(client: httpx.Client, frame: pd.DataFrame) -> list[int]:
    body = {"dataframe_split": frame.to_dict(orient="split")}
    answer = client.post("/invocations", params={"model": "churn"}, json=body)
    assert answer.status_code == 200, answer.text
    predictions: list[int] = answer.json()["predictions"]
    return predictions


def test_a_reachable_proxy_without_api_keys_is_refused_before_ray_starts(
    registry: tuple[Path, list[Any]],
) -> None:
    home, _ = registry
    settings = Settings(home=home, serve={"host": "0.0.0.0", "port": free_port()})

    with pytest.raises(InvalidArgumentError, match="requires API keys"):
        start(settings, ["churn@champion"], RayServeOptions(replicas=2))

    assert not ray.is_initialized()


def test_port_zero_and_unknown_models_are_refused_naming_the_fix(
    registry: tuple[Path, list[Any]],
) -> None:
    home, _ = registry
    with pytest.raises(InvalidArgumentError, match="fixed port"):
        start(Settings(home=home, serve={"port": 0}), ["churn@champion"], RayServeOptions())
    with pytest.raises(ModelportError, match="nope"):
        start(
            Settings(home=home, serve={"port": free_port()}), ["nope@champion"], RayServeOptions()
        )
    assert not ray.is_initialized()


def test_two_replicas_answer_v2_and_mlflow_follow_an_alias_and_shut_down_cleanly(
    local_ray: Any, registry: tuple[Path, list[Any]]
) -> None:
    home, (first, second) = registry
    settings = Settings(
        home=home,
        serve={"port": free_port(), "poll_interval_s": POLL_S},
        prediction_log={"flush_interval_s": 60},  # written only by the app's shutdown
    )
    frame = rows(20, seed=7)[list(FEATURES)]
    expected_first = first.predict(frame).tolist()
    expected_second = second.predict(frame).tolist()
    assert expected_first != expected_second

    run = start(settings, ["churn@champion", "live=churn"], RayServeOptions(replicas=2))
    try:
        assert not run.started_ray and run.models == ["churn", "live"]
        deployment = serve.status().applications["modelport"].deployments["ModelportServer"]
        assert deployment.replica_states == {"RUNNING": 2}
        with httpx.Client(base_url=run.url, timeout=30) as client:
            assert client.get("/v2/health/ready").status_code == 200
            assert client.get("/ping").status_code == 200
            answer = client.post("/v2/models/churn/infer", json=v2_request(frame))
            assert answer.status_code == 200, answer.text
            body = answer.json()
            assert body["model_version"] == "1"
            outputs = {output["name"]: output for output in body["outputs"]}
            assert outputs["predictions"]["data"] == expected_first
            np.testing.assert_allclose(
                np.reshape(outputs["probabilities"]["data"], (20, 2)), first.predict_proba(frame)
            )
            assert invocations(client, frame) == expected_first
            assert "modelport_" in client.get("/metrics").text
            # The deployment "churn" (version 2), served under the name "live".
            answer = client.post("/v2/models/live/infer", json=v2_request(frame))
            assert answer.status_code == 200, answer.text
            assert answer.json()["model_version"] == "2"
            assert answer.json()["outputs"][0]["data"] == expected_second

            modelport.set_alias("churn", "champion", 2, settings=Settings(home=home))
            moved = time.monotonic()
            # Every replica must have moved: 20 answers in a row from version 2.
            streak = 0
            while streak < 20:
                assert time.monotonic() - moved < 10 * POLL_S + 10, (
                    "the alias move was not followed"
                )
                streak = streak + 1 if invocations(client, frame) == expected_second else 0
            assert invocations(client, frame) == expected_second
    finally:
        run.stop()

    assert ray.is_initialized()  # a Ray it did not start keeps running
    assert "modelport" not in serve.status().applications
    logged = query(str(home / "predictions"), "churn").to_pandas()
    assert set(logged["version"]) == {"1", "2"}
    assert len(logged) >= 20 * 22  # every answered row, written at the replicas' shutdown


def test_replicas_that_cannot_load_their_model_fail_the_start_naming_where_to_look(
    local_ray: Any, registry: tuple[Path, list[Any]], tmp_path: Path
) -> None:
    home, _ = registry
    broken = tmp_path / "broken"
    broken.mkdir()
    (broken / "modelport.yaml").write_text("format: [\n")  # found as a package, unreadable
    settings = Settings(home=home, serve={"port": free_port()})

    with pytest.raises(UnavailableError, match="replica N cannot start"):
        start(settings, [f"churn={broken}"], RayServeOptions(replicas=1))

    assert local_ray.is_initialized()
    assert "modelport" not in serve.status().applications
