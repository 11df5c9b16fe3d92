"""MLflow's scoring protocol, with the assertions of MLflow's own scoring-server tests."""

from __future__ import annotations

import pytest

from testing_server import Served, ServeFn


def test_every_json_format_and_csv_give_the_native_predictions(server: Served) -> None:
    forest = server.models["forest"]
    x = server.data["forest"].head(4)
    expected = forest.predict(x).tolist()
    split = {"columns": list(x.columns), "data": x.to_numpy().tolist()}
    bodies = [
        {"dataframe_split": split},
        {"dataframe_records": x.to_dict(orient="records")},
        {"instances": x.to_dict(orient="records")},
        {"instances": x.to_numpy().tolist()},
        {"inputs": x.to_numpy().tolist()},
        {"inputs": {c: x[c].tolist() for c in x.columns}},
        {"dataframe_split": split, "params": {"ignored": 1}},
    ]
    for body in bodies:
        response = server.client.post("/invocations?model=forest", json=body)
        assert response.status_code == 200, (body.keys(), response.text)
        assert response.json() == {"predictions": expected}
    csv = server.client.post(
        "/invocations?model=forest",
        content=x.to_csv(index=False).encode(),
        headers={"Content-Type": "text/csv"},
    )
    assert csv.json() == {"predictions": expected}


def test_a_table_of_mixed_columns(server: Served) -> None:
    x = server.data["churn"].head(3)
    body = {"dataframe_split": {"columns": list(x.columns), "data": x.to_numpy().tolist()}}
    response = server.client.post("/models/churn/invocations", json=body)
    assert response.json() == {"predictions": server.models["churn"].predict(x).tolist()}


def test_a_single_model_server_needs_no_model_name(serve: ServeFn) -> None:
    served = serve(["forest@production"])
    x = served.data["forest"].head(1)
    response = served.client.post("/invocations", json={"inputs": x.to_numpy().tolist()})
    assert response.status_code == 200


def test_several_models_need_a_name(server: Served) -> None:
    response = server.client.post("/invocations", json={"inputs": [[1.0]]})
    assert response.status_code == 400
    assert "serves several models" in response.json()["message"]


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (b"{not json", "Invalid input. Ensure that input is a valid JSON formatted string."),
        (b"1", "exactly one of the input fields"),
        (b'"1"', "exactly one of the input fields"),
        (b"[1]", "exactly one of the input fields"),
        (b'{"dataframe_records": [], "dataframe_split": {}}', "exactly one of the input fields"),
        (b'{"dataframe_split": [[1, 2]]}', "Dataframe split format must be a dictionary"),
    ],
)
def test_mlflow_bad_request_cases(server: Served, body: bytes, message: str) -> None:
    response = server.client.post(
        "/invocations?model=forest", content=body, headers={"Content-Type": "application/json"}
    )
    assert response.status_code == 400
    error = response.json()
    assert error["error_code"] == "BAD_REQUEST"
    assert message in error["message"]
    assert "stack_trace" not in error


def test_empty_csv_is_a_bad_request(server: Served) -> None:
    response = server.client.post(
        "/invocations?model=forest", content=b"", headers={"Content-Type": "text/csv"}
    )
    assert response.status_code == 400
    assert response.json()["error_code"] == "BAD_REQUEST"


@pytest.mark.parametrize(
    ("content_type", "status"),
    [
        ("not_a_supported_content_type", 415),
        ("application/json; something=something", 415),
        ("application/json; charset=latin-1", 415),
        ("application/json; charset=UTF-8", 200),
        ("text/plain", 415),
    ],
)
def test_content_types(server: Served, content_type: str, status: int) -> None:
    body = {"inputs": server.data["forest"].head(1).to_numpy().tolist()}
    import json

    response = server.client.post(
        "/invocations?model=forest",
        content=json.dumps(body).encode(),
        headers={"Content-Type": content_type},
    )
    assert response.status_code == status


def test_missing_columns_are_named(server: Served) -> None:
    x = server.data["churn"].head(2).drop(columns="region")
    body = {"dataframe_split": {"columns": list(x.columns), "data": x.to_numpy().tolist()}}
    response = server.client.post("/models/churn/invocations", json=body)
    assert response.status_code == 400
    error = response.json()
    # MLflow 3 answers a schema enforcement failure with INVALID_PARAMETER_VALUE and these words.
    assert error["error_code"] == "INVALID_PARAMETER_VALUE"
    assert error["message"].startswith("Failed to enforce schema of data. Error: ")
    assert "missing input 'region'" in error["message"]


def test_model_failures_and_timeouts_read_as_mlflows(serve: ServeFn) -> None:
    served = serve(["failing", "slow"], request_timeout_s=0.1)
    failed = served.client.post("/models/failing/invocations", json={"inputs": [[13.0, 0, 0]]})
    assert failed.status_code == 500  # MLflow says 400: a fault in the model's code is ours
    assert failed.json()["error_code"] == "INTERNAL_ERROR"
    assert failed.json()["message"].startswith(
        "Encountered an unexpected error while evaluating the model. Verify that the "
        "serialized input Dataframe is compatible with the model for inference. Error: "
    )
    late = served.client.post("/models/slow/invocations", json={"inputs": [[1.0, 0, 0]]})
    assert late.status_code == 504
    assert late.json()["error_code"] == "DEADLINE_EXCEEDED"
    assert late.json()["message"].startswith("Request processing time exceeded limit. ")


def test_ping_health_version(server: Served) -> None:
    assert server.client.get("/ping").status_code == 200
    assert server.client.get("/health").status_code == 200
    version = server.client.get("/version")
    assert version.status_code == 200
    assert version.text.count(".") == 2
