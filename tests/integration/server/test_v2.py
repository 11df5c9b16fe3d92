"""The Open Inference Protocol (KServe V2) as V2 clients use it."""

from __future__ import annotations

import gzip

import numpy as np
import pytest

from testing_server import Served, ServeFn

FOREST_INPUT = {"name": "input", "datatype": "FP64", "shape": [-1, 20]}


def forest_request(served: Served, rows: int = 3, **extra: object) -> dict[str, object]:
    x = served.data["forest"].head(rows).to_numpy()
    tensor = {
        "name": "input",
        "shape": list(x.shape),
        "datatype": "FP64",
        "data": x.ravel().tolist(),
    }
    return {"inputs": [tensor], **extra}


def test_server_health_and_metadata(server: Served) -> None:
    client = server.client
    assert client.get("/v2/health/live").json() == {"live": True}
    assert client.get("/v2/health/ready").json() == {"ready": True}
    meta = client.get("/v2").json()
    assert meta["name"] == "modelport"
    assert "binary_tensor_data" in meta["extensions"]
    assert sorted(client.get("/v2/models").json()["models"]) == [
        "churn", "echo", "forest", "regressor"
    ]  # fmt: skip


def test_model_metadata_comes_from_the_signature(server: Served) -> None:
    meta = server.client.get("/v2/models/forest").json()
    assert meta["name"] == "forest"
    assert meta["versions"] == ["1"]
    assert meta["platform"] == "sklearn_onnxruntime"
    assert meta["inputs"] == [FOREST_INPUT]
    assert meta["outputs"] == [
        {"name": "predictions", "datatype": "INT64", "shape": [-1]},
        {"name": "probabilities", "datatype": "FP64", "shape": [-1, 2]},
    ]
    assert server.client.get("/v2/models/forest/versions/1").json() == meta
    assert server.client.get("/v2/models/forest/ready").json() == {"name": "forest", "ready": True}
    churn = server.client.get("/v2/models/churn").json()
    assert [(i["name"], i["datatype"]) for i in churn["inputs"]] == [
        ("tenure", "INT64"), ("charges", "FP64"), ("contract", "BYTES"), ("region", "BYTES")
    ]  # fmt: skip


def test_infer_json_matches_the_native_model(server: Served) -> None:
    forest = server.models["forest"]
    x = server.data["forest"].head(5)
    response = server.client.post(
        "/v2/models/forest/infer", json=forest_request(server, 5, id="abc")
    )
    assert response.status_code == 200
    body = response.json()
    assert body["id"] == "abc"
    assert body["model_name"] == "forest"
    assert body["model_version"] == "1"
    outputs = {o["name"]: o for o in body["outputs"]}
    assert outputs["predictions"]["data"] == forest.predict(x).tolist()
    assert outputs["predictions"]["shape"] == [5]
    probabilities = np.array(outputs["probabilities"]["data"]).reshape(5, 2)
    np.testing.assert_allclose(probabilities, forest.predict_proba(x), atol=1e-6)


def test_infer_one_requested_output_and_versioned_path(server: Served) -> None:
    request = forest_request(server, 2, outputs=[{"name": "predictions"}])
    response = server.client.post("/v2/models/forest/versions/1/infer", json=request)
    assert [o["name"] for o in response.json()["outputs"]] == ["predictions"]


def test_infer_columns_model_with_one_input_per_column(server: Served) -> None:
    churn = server.models["churn"]
    x = server.data["churn"].head(4)
    inputs = [
        {"name": "tenure", "datatype": "INT64", "shape": [4], "data": x["tenure"].tolist()},
        {"name": "charges", "datatype": "FP64", "shape": [4], "data": x["charges"].tolist()},
        {"name": "contract", "datatype": "BYTES", "shape": [4], "data": x["contract"].tolist()},
        {"name": "region", "datatype": "BYTES", "shape": [4, 1], "data": x["region"].tolist()},
    ]
    response = server.client.post("/v2/models/churn/infer", json={"inputs": inputs})
    assert response.status_code == 200, response.text
    outputs = {o["name"]: o["data"] for o in response.json()["outputs"]}
    assert outputs["predictions"] == churn.predict(x).tolist()


def test_binary_tensor_extension_with_tritonclients_own_encoding(server: Served) -> None:
    import tritonclient.http as httpclient
    from tritonclient.http._utils import _get_inference_request

    frame = server.data["forest"].head(4)
    x = frame.to_numpy()
    given = httpclient.InferInput("input", list(x.shape), "FP64")
    given.set_data_from_numpy(x, binary_data=True)
    outputs = [httpclient.InferRequestedOutput("probabilities", binary_data=True)]
    body, json_size = _get_inference_request(
        inputs=[given], request_id="7", outputs=outputs, sequence_id=0, sequence_start=False,
        sequence_end=False, priority=0, timeout=None, custom_parameters=None,
    )  # fmt: skip
    headers = {"Inference-Header-Content-Length": str(json_size)} if json_size else {}
    response = server.client.post("/v2/models/forest/infer", content=body, headers=headers)
    assert response.status_code == 200, response.text
    length = int(response.headers["inference-header-content-length"])
    result = httpclient.InferResult.from_response_body(response.content, header_length=length)
    np.testing.assert_allclose(
        result.as_numpy("probabilities"), server.models["forest"].predict_proba(frame), atol=1e-6
    )
    assert result.get_response()["id"] == "7"


def test_gzip_request_bodies_are_read(server: Served) -> None:
    import json

    body = gzip.compress(json.dumps(forest_request(server, 2)).encode())
    response = server.client.post(
        "/v2/models/forest/infer", content=body, headers={"Content-Encoding": "gzip"}
    )
    assert response.status_code == 200


def tensor(name: str, shape: list[int], datatype: str, data: list[float]) -> dict[str, object]:
    return {"name": name, "shape": shape, "datatype": datatype, "data": data}


ROW = [0.5] * 20


@pytest.mark.parametrize(
    ("path", "body", "status", "message"),
    [
        ("/v2/models/ghost/infer", {"inputs": []}, 404, "model 'ghost' is not served"),
        ("/v2/models/forest/versions/9/infer", {"inputs": []}, 404, "version 9 is not served"),
        (
            "/v2/models/forest/infer",
            {"inputs": [{**tensor("input", [1, 20], "BOOL", ROW), "data": [True] * 20}]},
            400,
            "got BOOL",
        ),
        (
            "/v2/models/forest/infer",
            {"inputs": [tensor("input", [1, 19], "FP64", ROW[:19])]},
            400,
            "expects shape",
        ),
        ("/v2/models/forest/infer", {"inputs": [tensor("input", [2, 20], "FP64", ROW)]}, 400, ""),
        (
            "/v2/models/forest/infer",
            {"inputs": [tensor("colour", [1], "FP64", [1.0])]},
            400,
            "unknown input 'colour'",
        ),
        (
            "/v2/models/forest/infer",
            {"inputs": [tensor("input", [1, 20], "FP64", ROW)], "outputs": [{"name": "logits"}]},
            400,
            "unknown output 'logits'",
        ),
    ],
)
def test_bad_requests_get_json_errors_and_the_server_stays_live(
    server: Served, path: str, body: dict[str, object], status: int, message: str
) -> None:
    response = server.client.post(path, json=body)
    assert response.status_code == status
    assert message in response.json()["error"]
    assert "Traceback" not in response.text
    assert server.client.get("/v2/health/live").status_code == 200


def test_non_finite_inputs_are_refused(server: Served) -> None:
    import json

    # The bare NaN/Infinity tokens tritonclient writes are read, then refused by the
    # signature (these inputs are not nullable), naming the input.
    for value in (float("nan"), float("inf"), float("-inf")):
        request = forest_request(server, 1)
        request["inputs"][0]["data"][0] = value  # type: ignore[index]
        body = json.dumps(request).encode()
        assert b"NaN" in body or b"Infinity" in body
        response = server.client.post("/v2/models/forest/infer", content=body)
        assert response.status_code == 400
        assert "non-finite value in input 'input'" in response.json()["error"]
    body = json.dumps(forest_request(server, 1)).replace('"data": [', '"data": [NaNx, ').encode()
    response = server.client.post("/v2/models/forest/infer", content=body)
    assert response.status_code == 400
    assert "JSON is not valid" in response.json()["error"]


def test_framing_and_media_type_errors(server: Served) -> None:
    client = server.client
    huge = client.post("/v2/models/forest/infer", content=b"{}",
                       headers={"Inference-Header-Content-Length": "99999999999"})  # fmt: skip
    assert huge.status_code == 400
    pickled = client.post("/v2/models/forest/infer", content=b"\x80\x04.",
                          headers={"Content-Type": "application/python-pickle"})  # fmt: skip
    assert pickled.status_code == 415
    assert client.post("/v2/models/forest/infer", content=b"{not json").status_code == 400
    wrong_method = client.get("/v2/models/forest/infer")
    assert wrong_method.status_code == 405
    assert "POST" in wrong_method.json()["error"]
    missing = client.get("/v2/nowhere")
    assert missing.status_code == 404
    assert missing.json() == {"error": "no route for GET /v2/nowhere"}


def test_body_size_limit(serve: ServeFn) -> None:
    served = serve(["forest@production"], max_body_bytes=4096)
    big = {"inputs": [tensor("input", [200, 20], "FP64", [0.1] * 4000)]}
    response = served.client.post("/v2/models/forest/infer", json=big)
    assert response.status_code == 413
    assert "limit of 4096 bytes" in response.json()["error"]
    bomb = gzip.compress(b"[" + b"0," * 100_000 + b"0]")
    response = served.client.post(
        "/v2/models/forest/infer", content=bomb, headers={"Content-Encoding": "gzip"}
    )
    assert response.status_code == 413


def test_request_ids_are_echoed_or_generated(server: Served) -> None:
    given = server.client.get("/v2/health/live", headers={"X-Request-ID": "trace-42"})
    assert given.headers["x-request-id"] == "trace-42"
    generated = server.client.get("/v2/health/live")
    assert len(generated.headers["x-request-id"]) == 32
    weird = server.client.get("/v2/health/live", headers={"X-Request-ID": "a b\tc"})
    assert weird.headers["x-request-id"] != "a b\tc"
