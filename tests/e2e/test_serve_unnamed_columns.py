"""``modelport serve`` as a real process, with what MLflow users register most often: a
model fitted on a numpy array, and one fitted on ``pd.DataFrame(X)``. Every MLflow
payload gives the model's own predictions; a table of the wrong width gets a 400 that
names the width."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pandas as pd

import modelport
from modelport.package.options import PackageOptions
from testing_process import serving

X = np.random.default_rng(5).normal(size=(30, 4))
Y = X @ [1.0, -2.0, 0.5, 3.0]


def payloads(x: np.ndarray, names: list[Any]) -> list[tuple[str, Any]]:
    """(content type, body) for every form MLflow's scoring server reads."""
    records = [dict(zip(map(str, names), row, strict=True)) for row in x.tolist()]
    json_bodies = [
        {"dataframe_split": {"data": x.tolist()}},
        {"dataframe_split": pd.DataFrame(x, columns=names).to_dict(orient="split")},
        {"dataframe_records": records},
        {"instances": records},
        {"instances": x.tolist()},
        {"inputs": x.tolist()},
    ]
    csv = pd.DataFrame(x, columns=names).to_csv(index=False)
    return [("application/json", body) for body in json_bodies] + [("text/csv", csv)]


def post(client: httpx.Client, model: str, content_type: str, body: Any) -> httpx.Response:
    content = body if isinstance(body, str) else httpx.Request("POST", "/", json=body).content
    return client.post(
        f"/invocations?model={model}", content=content, headers={"Content-Type": content_type}
    )


def test_numpy_and_integer_labelled_models_answer_every_mlflow_payload(
    isolated_home: Path,
) -> None:
    from sklearn.linear_model import LinearRegression

    numpy_model = LinearRegression().fit(X, Y)
    frame_model = LinearRegression().fit(pd.DataFrame(X), Y)
    with modelport.connect() as registry:
        registry.register(numpy_model, "fromnumpy", PackageOptions(sample_input=X))
        options = PackageOptions(sample_input=pd.DataFrame(X), accelerate=False)
        registry.register(frame_model, "fromframe", options)
    x = X[:3]
    with (
        serving(isolated_home, ["fromnumpy", "fromframe"]) as server,
        httpx.Client(base_url=server.url, timeout=10) as client,
    ):
        cases = [("fromnumpy", numpy_model, [0, 1, 2, 3]), ("fromnumpy", numpy_model, list("abcd"))]
        cases.append(("fromframe", frame_model, [0, 1, 2, 3]))
        for model_name, model, names in cases:
            expected = model.predict(pd.DataFrame(x) if model is frame_model else x)
            for content_type, body in payloads(x, names):
                response = post(client, model_name, content_type, body)
                assert response.status_code == 200, (model_name, body, response.text)
                np.testing.assert_allclose(response.json()["predictions"], expected, rtol=1e-6)
        for content_type, body in payloads(x[:, :3], ["a", "b", "c"]):
            response = post(client, "fromnumpy", content_type, body)
            assert response.status_code == 400, (body, response.text)
            message = response.json()["message"]
            # Tables: "one tensor 'input' of shape [-1, 4], 4 values per row: ...";
            # lists of rows: "input 'input' expects shape [-1, 4] ..., got [3, 3]".
            assert "'input'" in message and "shape [-1, 4]" in message, message
            # Inputs that do not fit the signature: MLflow 3's schema-enforcement code.
            assert response.json()["error_code"] == "INVALID_PARAMETER_VALUE"
