"""Inference parameters (MLflow's ``params``) through the server: declared ones converted
and type-checked, defaults filled in, undeclared ones ignored with a warning, and
requests with different params never sharing a model call."""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest

from modelport import ParamSpec, save
from modelport.errors import ParamsIgnoredWarning
from testing_models import ScaledModel
from testing_server import Served, ServeFn

X = np.random.default_rng(5).normal(size=(20, 3))
ROWS = [[1.0, 2.0, 3.0], [0.5, 0.5, 0.0]]  # sums 6 and 1
WARNING = "x-modelport-warning"


@pytest.fixture(scope="module")
def packages(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """A custom model that reads its params, and a scikit-learn one that cannot."""
    from sklearn.linear_model import LinearRegression

    root = tmp_path_factory.mktemp("params-packages")
    params = [ParamSpec("scale", "double", 1.0), ParamSpec("shift", "long", 0)]
    save(ScaledModel(), root / "scaled", sample_input=X, inference_params=params)
    slow = {"delay": 0.05}
    save(ScaledModel(), root / "slow", sample_input=X, inference_params=params, model_config=slow)
    linear = LinearRegression().fit(X, X @ [1.0, 2.0, 3.0])
    with pytest.warns(ParamsIgnoredWarning, match="takes no params"):
        save(linear, root / "linear", sample_input=X, inference_params={"threshold": 0.5})
    return {"scaled": root / "scaled", "slow": root / "slow", "linear": root / "linear"}


@pytest.fixture
def served(serve: ServeFn, packages: dict[str, Path]) -> Served:
    names = [f"{name}={path}" for name, path in packages.items()]
    return serve([*names, "echo@production"])


def invoke(served: Served, model: str, body: dict[str, Any]) -> httpx.Response:
    return served.client.post(f"/invocations?model={model}", json=body)


def test_declared_params_reach_the_model_and_defaults_fill_the_rest(served: Served) -> None:
    cases = [
        ({}, [6.0, 1.0]),
        ({"scale": 2.5}, [15.0, 2.5]),
        ({"scale": 2, "shift": 10}, [22.0, 12.0]),  # an int for a double converts
        ({"shift": -1}, [5.0, 0.0]),
    ]
    for params, expected in cases:
        response = invoke(served, "scaled", {"inputs": ROWS, "params": params})
        assert response.status_code == 200, response.text
        assert response.json() == {"predictions": expected}
        assert WARNING not in response.headers
    without = invoke(served, "scaled", {"instances": ROWS})
    assert without.json() == {"predictions": [6.0, 1.0]}


@pytest.mark.parametrize(
    ("params", "message"),
    [
        (
            {"scale": "big"},
            "Invalid parameters found: 'scale' expects double (default: 1.0), got string 'big'",
        ),
        (
            {"shift": 1.5},
            "Invalid parameters found: 'shift' expects long (default: 0), got number 1.5",
        ),
        (
            {"shift": True, "scale": [1]},
            "Invalid parameters found: 'scale' expects double (default: 1.0), got list [1]; "
            "'shift' expects long (default: 0), got boolean True",
        ),
    ],
)
def test_a_param_of_the_wrong_type_is_refused_naming_it(
    served: Served, params: dict[str, Any], message: str
) -> None:
    response = invoke(served, "scaled", {"inputs": ROWS, "params": params})
    assert response.status_code == 400
    assert response.json() == {"error_code": "INVALID_PARAMETER_VALUE", "message": message}


def test_params_that_are_not_an_object_are_refused(served: Served) -> None:
    response = invoke(served, "scaled", {"inputs": ROWS, "params": [1, 2]})
    assert response.status_code == 400
    assert response.json() == {
        "error_code": "INVALID_PARAMETER_VALUE",
        "message": "Parameters must be a dictionary. Got type 'list'.",
    }


def test_undeclared_params_are_ignored_with_a_warning_logged_once_per_name(
    served: Served, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="modelport.serving.params")
    body = {"inputs": ROWS, "params": {"scale": 2.0, "temperature": 0.1}}
    for _ in range(3):
        response = invoke(served, "scaled", body)
        assert response.status_code == 200
        assert response.json() == {"predictions": [12.0, 2.0]}
        assert response.headers[WARNING] == (
            "Unrecognized params ['temperature'] are ignored for inference. "
            "Supported params are: ['scale', 'shift']."
        )
    logged = [r.getMessage() for r in caplog.records if "temperature" in r.getMessage()]
    assert logged == [
        "model scaled: Unrecognized params ['temperature'] are ignored for inference. "
        "Supported params are: ['scale', 'shift']."
    ]


def test_a_model_without_declared_params_ignores_them_with_mlflows_warning(
    served: Served,
) -> None:
    response = invoke(served, "echo", {"inputs": ROWS, "params": {"k": 1, "caf\u00e9": 2}})
    assert response.status_code == 200
    assert response.json() == {"predictions": [6.0, 1.0]}
    assert response.headers[WARNING] == (
        "`params` can only be specified at inference time if the model signature defines a "
        "params schema. This model does not define a params schema. Ignoring provided "
        "params: ['k', 'caf\\xe9']"
    )


def test_a_model_that_cannot_take_params_checks_them_then_predicts_as_without(
    served: Served,
) -> None:
    expected = invoke(served, "linear", {"inputs": ROWS}).json()
    assert invoke(served, "linear", {"inputs": ROWS, "params": {"threshold": 2}}).json() == (
        expected
    )
    refused = invoke(served, "linear", {"inputs": ROWS, "params": {"threshold": "high"}})
    assert refused.status_code == 400
    assert refused.json()["error_code"] == "INVALID_PARAMETER_VALUE"
    assert "'threshold' expects double" in refused.json()["message"]


def test_v2_parameters_are_params_except_the_protocols_own(served: Served) -> None:
    row = {"name": "input", "shape": [2, 3], "datatype": "FP64", "data": ROWS}
    body = {
        "inputs": [row],
        "parameters": {"scale": 3, "binary_data_output": False, "timeout": 5_000_000},
    }
    response = served.client.post("/v2/models/scaled/infer", json=body)
    assert response.status_code == 200, response.text
    assert response.json()["outputs"][0]["data"] == [18.0, 3.0]
    assert WARNING not in response.headers  # the protocol's parameters are not the model's
    body["parameters"] = {"scale": "x"}
    refused = served.client.post("/v2/models/scaled/infer", json=body)
    assert refused.status_code == 400
    assert "'scale' expects double" in refused.json()["error"]
    plain = served.client.post(
        "/v2/models/echo/infer", json={"inputs": [row], "parameters": {"binary_data_output": False}}
    )
    assert plain.status_code == 200 and WARNING not in plain.headers


def test_v2_metadata_and_the_rest_api_show_the_declared_params(served: Served) -> None:
    metadata = served.client.get("/v2/models/scaled").json()
    assert metadata["parameters"] == {
        "scale": {"type": "double", "default": 1.0, "shape": None},
        "shift": {"type": "long", "default": 0, "shape": None},
    }
    assert "parameters" not in served.client.get("/v2/models/echo").json()
    detail = served.client.get("/api/models/scaled").json()
    assert detail["signature"]["params"] == [
        {"name": "scale", "type": "double", "default": 1.0, "shape": None},
        {"name": "shift", "type": "long", "default": 0, "shape": None},
    ]


def test_concurrent_requests_with_different_params_each_get_their_own(served: Served) -> None:
    # ``slow`` sleeps 50 ms per call, so these requests queue and batch together.
    async def burst() -> list[tuple[float, list[float]]]:
        transport = httpx.ASGITransport(app=served.app.asgi)
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:

            async def one(scale: float) -> tuple[float, list[float]]:
                body = {"inputs": ROWS, "params": {"scale": scale}}
                response = await client.post("/invocations?model=slow", json=body)
                assert response.status_code == 200, response.text
                return scale, response.json()["predictions"]

            return await asyncio.gather(*(one(float(i % 3)) for i in range(12)))

    for scale, predictions in served.client.portal.call(burst):
        assert predictions == [6.0 * scale, 1.0 * scale]
