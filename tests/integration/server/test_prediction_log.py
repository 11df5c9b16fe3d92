"""The serving server logs what it answers: rows, ids, failures, drops (in process).

Each test starts its own app with its own log directory; leaving the ``with`` block
runs the app's shutdown, which writes everything queued.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pytest
from starlette.testclient import TestClient

from modelport.bootstrap import build_server_app
from modelport.config import PredictionLogSettings
from modelport.monitoring.prediction_log import query
from modelport.serving.sources import parse_source
from testing_server import Catalog

pytestmark = pytest.mark.timeout(120)


@contextmanager
def logging_server(
    catalog: Catalog, root: Path, models: list[str], **log: Any
) -> Iterator[TestClient]:
    settings = catalog.settings.model_copy(
        update={"prediction_log": PredictionLogSettings(uri=str(root), **log)}
    )
    app = build_server_app(
        settings,
        [parse_source(m) for m in models],
        worker_index=0,
        workers=1,
        on_ready=lambda: None,
        on_failed=print,
    )
    with TestClient(app.asgi) as client:
        yield client


def matrix_request(rows: np.ndarray) -> dict[str, Any]:
    return {
        "inputs": [
            {
                "name": "input",
                "shape": list(rows.shape),
                "datatype": "FP64",
                "data": rows.ravel().tolist(),
            }
        ]
    }


def test_v2_rows_are_logged_with_their_prediction_ids(catalog: Catalog, tmp_path: Path) -> None:
    x = catalog.data["forest"].to_numpy()[:3]
    with logging_server(catalog, tmp_path, ["forest@production"]) as client:
        response = client.post(
            "/v2/models/forest/infer", json=matrix_request(x), headers={"x-request-id": "req-a"}
        )
        assert response.status_code == 200
        ids = "req-a-0,req-a-1,req-a-2"
        assert response.headers["x-modelport-prediction-ids"] == ids
        assert response.json()["parameters"] == {"prediction_ids": ids}
        outputs = {o["name"]: o["data"] for o in response.json()["outputs"]}
    table = query(str(tmp_path), "forest")
    assert table.column("prediction_id").to_pylist() == ids.split(",")
    assert set(table.column("request_id").to_pylist()) == {"req-a"}
    assert table.column("protocol").to_pylist() == ["v2"] * 3
    assert table.column("status").to_pylist() == [200] * 3
    assert table.column("version").to_pylist() == ["1"] * 3
    for j in range(20):  # the matrix is split into one column per feature
        np.testing.assert_array_equal(table.column(f"in_f{j}").to_numpy(), x[:, j])
    assert table.column("out_predictions").to_pylist() == outputs["predictions"]
    probabilities = table.column("out_probabilities").to_pylist()
    np.testing.assert_allclose(np.ravel(probabilities), outputs["probabilities"])
    assert all(latency > 0 for latency in table.column("latency_s").to_pylist())


def test_mlflow_columns_are_logged_and_ids_come_in_a_header_only(
    catalog: Catalog, tmp_path: Path
) -> None:
    frame = catalog.data["churn"].head(2)
    body = {"dataframe_split": frame.to_dict(orient="split")}
    with logging_server(catalog, tmp_path, ["churn@production"]) as client:
        response = client.post("/invocations", json=body, headers={"x-request-id": "m1"})
        assert response.status_code == 200
        assert response.headers["x-modelport-prediction-ids"] == "m1-0,m1-1"
        assert set(response.json()) == {"predictions"}
    table = query(str(tmp_path), "churn")
    assert table.column("in_contract").to_pylist() == frame["contract"].tolist()
    assert table.column("in_tenure").to_pylist() == frame["tenure"].tolist()
    assert table.column("protocol").to_pylist() == ["mlflow", "mlflow"]
    assert table.column("out_predictions").to_pylist() == response.json()["predictions"]


def test_many_rows_get_the_compact_form(catalog: Catalog, tmp_path: Path) -> None:
    x = catalog.data["forest"].to_numpy()[:40]
    with logging_server(catalog, tmp_path, ["forest@production"]) as client:
        response = client.post(
            "/v2/models/forest/infer", json=matrix_request(x), headers={"x-request-id": "big"}
        )
        assert response.headers["x-modelport-prediction-ids"] == "big-0..big-39"
    ids = query(str(tmp_path), "forest").column("prediction_id").to_pylist()
    assert sorted(ids) == sorted(f"big-{i}" for i in range(40))


def test_failed_requests_are_logged_with_their_status(catalog: Catalog, tmp_path: Path) -> None:
    bad = {"inputs": [{"name": "input", "shape": [1, 2], "datatype": "FP64", "data": [1, 2]}]}
    with logging_server(catalog, tmp_path, ["forest@production"]) as client:
        response = client.post("/v2/models/forest/infer", json=bad, headers={"x-request-id": "e"})
        assert response.status_code == 400
        assert "x-modelport-prediction-ids" not in response.headers
    table = query(str(tmp_path), "forest")
    assert table.column("prediction_id").to_pylist() == ["e-0"]
    assert table.column("status").to_pylist() == [400]
    assert not [name for name in table.column_names if name.startswith(("in_", "out_"))]


def test_columns_subset_and_disabled_log(catalog: Catalog, tmp_path: Path) -> None:
    x = catalog.data["forest"].to_numpy()[:2]
    with logging_server(catalog, tmp_path / "some", ["forest"], columns=["f3"]) as client:
        assert client.post("/v2/models/forest/infer", json=matrix_request(x)).status_code == 200
    names = query(str(tmp_path / "some"), "forest").column_names
    assert [name for name in names if name.startswith("in_")] == ["in_f3"]
    with logging_server(catalog, tmp_path / "off", ["forest"], enabled=False) as client:
        response = client.post("/v2/models/forest/infer", json=matrix_request(x))
        assert response.status_code == 200
        assert "x-modelport-prediction-ids" not in response.headers
        assert "parameters" not in response.json()
    assert not (tmp_path / "off").exists()


@pytest.mark.parametrize(
    ("full", "dropped"),
    [
        # the writer thread's queue: 10 rows fit, so the third 4-row request finds it full
        ({"spool": False, "max_queue_rows": 10}, 4),
        # a spool of no bytes: the first request fits (nothing was pending), no other
        ({"spool_max_mb": 1e-9}, 8),
    ],
    ids=["thread", "spool"],
)
def test_a_full_queue_drops_and_counts_in_prometheus(
    catalog: Catalog,
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
    full: dict[str, Any],
    dropped: int,
) -> None:
    x = catalog.data["forest"].to_numpy()[:4]
    # The interval is long: nothing is written until the server stops.
    with logging_server(catalog, tmp_path, ["forest"], flush_interval_s=60, **full) as client:
        for _ in range(3):
            assert client.post("/v2/models/forest/infer", json=matrix_request(x)).status_code == 200
        metrics = client.get("/metrics").text
    assert f'modelport_prediction_log_dropped_total{{model="forest"}} {dropped}.0' in metrics
    assert "modelport_prediction_log_queue_rows" in metrics
    assert f"Prediction log dropped {dropped} rows" in caplog.text
    assert query(str(tmp_path), "forest").num_rows == 12 - dropped


def test_logged_probabilities_read_back_as_lists(catalog: Catalog, tmp_path: Path) -> None:
    x = catalog.data["forest"].to_numpy()[:1]
    with logging_server(catalog, tmp_path, ["forest"]) as client:
        client.post("/v2/models/forest/infer", json=matrix_request(x))
    column = query(str(tmp_path), "forest").column("out_probabilities")
    assert pa.types.is_list(column.type) or pa.types.is_fixed_size_list(column.type)


@pytest.fixture(scope="module")
def id_model(catalog: Catalog) -> str:
    """A regression on columns a, b, c whose rows are identified by ``customer_id``."""
    import pandas as pd
    from sklearn.linear_model import LinearRegression

    from modelport.bootstrap import build_registry
    from modelport.package.options import PackageOptions

    rng = np.random.default_rng(3)
    frame = pd.DataFrame(rng.normal(size=(40, 3)), columns=["a", "b", "c"])
    model = LinearRegression().fit(frame, frame @ [1.0, 2.0, 3.0])
    options = PackageOptions(sample_input=frame, accelerate=False, id_columns=["customer_id"])
    with build_registry(catalog.settings) as registry:
        registry.register(model, "scored", options)
    return "scored"


def test_id_columns_are_logged_returned_and_never_reach_the_model(
    catalog: Catalog, tmp_path: Path, id_model: str
) -> None:
    tensors = [
        {"name": "a", "shape": [2], "datatype": "FP64", "data": [1.0, 0.0]},
        {"name": "b", "shape": [2], "datatype": "FP64", "data": [0.0, 1.0]},
        {"name": "c", "shape": [2], "datatype": "FP64", "data": [0.0, 0.0]},
        {"name": "customer_id", "shape": [2], "datatype": "BYTES", "data": ["c-17", "c-42"]},
    ]
    with logging_server(catalog, tmp_path, [id_model]) as client:
        metadata = client.get(f"/v2/models/{id_model}").json()
        assert {"name": "customer_id", "datatype": "BYTES", "shape": [-1]} in metadata["inputs"]
        response = client.post(f"/v2/models/{id_model}/infer", json={"inputs": tensors})
        assert response.status_code == 200, response.text
        outputs = {o["name"]: o for o in response.json()["outputs"]}
        assert outputs["customer_id"]["data"] == ["c-17", "c-42"]
        np.testing.assert_allclose(outputs["predictions"]["data"], [1.0, 2.0])
        only = {"inputs": tensors, "outputs": [{"name": "predictions"}]}
        restricted = client.post(f"/v2/models/{id_model}/infer", json=only).json()
        assert [o["name"] for o in restricted["outputs"]] == ["predictions"]
        body = {
            "dataframe_split": {
                "columns": ["customer_id", "a", "b", "c"],
                "data": [["c-99", 0.0, 0.0, 1.0]],
            }
        }
        mlflow = client.post(f"/invocations?model={id_model}", json=body)
        assert mlflow.status_code == 200, mlflow.text
        np.testing.assert_allclose(mlflow.json()["predictions"], [3.0])
        short = [*tensors[:3], {**tensors[3], "shape": [1], "data": ["c-1"]}]
        refused = client.post(f"/v2/models/{id_model}/infer", json={"inputs": short})
        assert refused.status_code == 400
        assert "id column 'customer_id' has 1 values for 2 rows" in refused.json()["error"]
    table = query(str(tmp_path), id_model)
    ok = table.filter(pc.equal(table.column("status"), 200))
    assert ok.column("id_customer_id").to_pylist() == ["c-17", "c-42"] * 2 + ["c-99"]
    assert "in_customer_id" not in table.column_names


def test_worker_0_compacts_and_expires_the_log(catalog: Catalog, tmp_path: Path) -> None:
    import time
    from datetime import UTC, datetime, timedelta

    from modelport.monitoring.prediction_log import PredictionLogWriter, PredictionRecord

    yesterday = datetime.now(UTC) - timedelta(days=1)
    expired = datetime.now(UTC) - timedelta(days=40)
    for i, when in enumerate([yesterday, yesterday, yesterday, expired]):
        writer = PredictionLogWriter(str(tmp_path), flush_interval_s=60)
        writer.put(PredictionRecord(f"p{i}", f"r{i}", when, "forest", "1", "v2", 0.1, 200))
        writer.close()
    day = tmp_path / "forest" / "1" / yesterday.date().isoformat()
    old = tmp_path / "forest" / "1" / expired.date().isoformat()
    with logging_server(
        catalog, tmp_path, ["forest"], maintenance_interval_s=0.2, retention_days=30
    ):
        deadline = time.monotonic() + 20
        while (old.exists() or len(list(day.glob("*.parquet"))) > 1) and (
            time.monotonic() < deadline
        ):
            time.sleep(0.05)
    assert not old.exists()
    assert len(list(day.glob("*.parquet"))) == 1
    assert sorted(query(str(tmp_path), "forest").column("prediction_id").to_pylist()) == [
        "p0", "p1", "p2",
    ]  # fmt: skip
