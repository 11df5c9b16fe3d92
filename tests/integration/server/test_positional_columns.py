"""Models registered from a numpy array and from ``pd.DataFrame(X)``, served to MLflow and
V2 clients: every payload MLflow's scoring server reads gives the native predictions,
and a table of the wrong width gets a 400 naming the expected one."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
import pytest

from testing_server import Served, ServeFn


def mlflow_bodies(x: np.ndarray, names: list[Any]) -> list[dict[str, Any]]:
    """Every JSON form of the rows ``x`` MLflow's clients send, with columns ``names``."""
    records = [dict(zip(map(str, names), row, strict=True)) for row in x.tolist()]
    return [
        {"dataframe_split": {"data": x.tolist()}},
        {"dataframe_split": {"columns": names, "data": x.tolist()}},
        {"dataframe_split": pd.DataFrame(x, columns=names).to_dict(orient="split")},
        {"dataframe_records": records},
        {"instances": records},
        {"instances": x.tolist()},
        {"inputs": x.tolist()},
        {"inputs": {str(name): x[:, j].tolist() for j, name in enumerate(names)}},
    ]


def post_csv(served: Served, model: str, frame: pd.DataFrame) -> Any:
    return served.client.post(
        f"/invocations?model={model}",
        content=frame.to_csv(index=False).encode(),
        headers={"Content-Type": "text/csv"},
    )


@pytest.fixture
def both(serve: ServeFn) -> Served:
    served: Served = serve(["regressor@production", "unnamed@production"])
    return served


@pytest.mark.parametrize("names", [[0, 1, 2], ["a", "b", "c"], ["x2", "x0", "x1"]])
def test_a_numpy_model_takes_every_mlflow_table_by_position(both: Served, names: list[Any]) -> None:
    x = both.data["tensor"][:4]
    expected = both.models["regressor"].predict(x)
    for body in mlflow_bodies(x, names):
        response = both.client.post("/invocations?model=regressor", json=body)
        assert response.status_code == 200, (body, response.text)
        np.testing.assert_allclose(response.json()["predictions"], expected, rtol=1e-6)
    csv = post_csv(both, "regressor", pd.DataFrame(x, columns=names))
    assert csv.status_code == 200, csv.text
    np.testing.assert_allclose(csv.json()["predictions"], expected, rtol=1e-6)


def test_a_frame_with_integer_labels_is_served_under_its_own_column_names(both: Served) -> None:
    x = both.data["tensor"][:4]
    expected = both.models["unnamed"].predict(pd.DataFrame(x))
    for body in mlflow_bodies(x, [0, 1, 2]):
        response = both.client.post("/invocations?model=unnamed", json=body)
        assert response.status_code == 200, (body, response.text)
        np.testing.assert_allclose(response.json()["predictions"], expected, rtol=1e-12)
    csv = post_csv(both, "unnamed", pd.DataFrame(x))
    np.testing.assert_allclose(csv.json()["predictions"], expected, rtol=1e-12)
    # Its columns have names ("0", "1", "2"): others are unknown, as for any named table.
    wrong = both.client.post(
        "/invocations?model=unnamed",
        json={"dataframe_split": {"columns": ["a", "b", "c"], "data": x.tolist()}},
    )
    assert wrong.status_code == 400
    assert "unknown input 'a'" in wrong.json()["message"]


@pytest.mark.parametrize(
    "body",
    [
        {"dataframe_split": {"columns": ["a", "b"], "data": [[1.0, 2.0]]}},
        {"dataframe_split": {"data": [[1.0, 2.0, 3.0, 4.0]]}},
        {"dataframe_records": [{"a": 1.0, "b": 2.0}]},
        {"instances": [{"a": 1.0, "b": 2.0, "c": 3.0, "d": 4.0}]},
        {"inputs": {"a": [1.0], "b": [2.0]}},
    ],
)
def test_a_numpy_model_refuses_another_width_naming_the_expected_one(
    both: Served, body: dict[str, Any]
) -> None:
    response = both.client.post("/invocations?model=regressor", json=body)
    assert response.status_code == 400
    message = response.json()["message"]
    assert "one tensor 'input' of shape [-1, 3], 3 values per row" in message
    csv = post_csv(both, "regressor", pd.DataFrame([[1.0, 2.0]], columns=["a", "b"]))
    assert csv.status_code == 400
    assert "3 values per row" in csv.json()["message"]
    assert csv.json()["message"].endswith("got a table of 2 columns")


def test_v2_takes_the_tensor_or_one_column_per_feature_in_order(both: Served) -> None:
    x = both.data["tensor"][:3]
    expected = both.models["regressor"].predict(x)
    matrix = {"name": "input", "datatype": "FP64", "shape": [3, 3], "data": x.ravel().tolist()}
    whole = {"inputs": [matrix]}
    columns = {
        "inputs": [
            {"name": name, "datatype": "FP64", "shape": [3], "data": x[:, j].tolist()}
            for j, name in enumerate(["f_b", "f_a", "f_c"])  # order sent, not by name
        ]
    }
    for body in (whole, columns):
        response = both.client.post("/v2/models/regressor/infer", json=body)
        assert response.status_code == 200, response.text
        np.testing.assert_allclose(response.json()["outputs"][0]["data"], expected, rtol=1e-6)
    columns["inputs"] = columns["inputs"][:2]
    short = both.client.post("/v2/models/regressor/infer", json=columns)
    assert short.status_code == 400
    assert "3 one-column inputs" in short.json()["error"]
    assert short.json()["error"].endswith("got 2 inputs ('f_b', 'f_a')")
