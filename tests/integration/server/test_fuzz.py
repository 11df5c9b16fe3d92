"""No malformed request gets a 5xx, and the server is live after every one of them.

Two fuzzers: schemathesis drives every route from our OpenAPI document (path
parameters steered to served models so the parsers behind them are reached), and from
the Open Inference Protocol's own REST description (``open_inference_rest``); every
answer must also be one its document describes (status and body schema). And hypothesis
mutates valid V2 and MLflow requests (values, shapes, datatypes, framing headers,
compressed garbage).
"""

from __future__ import annotations

import gzip
import json
from collections.abc import Iterator
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from jsonschema import Draft202012Validator
from starlette.testclient import TestClient

from modelport.bootstrap import build_registry, build_server_app
from modelport.server.http.app import ROUTES
from modelport.server.http.openapi import openapi_document
from modelport.serving.sources import parse_source
from open_inference_rest import open_inference_rest
from testing_server import Catalog

SERVED = ["forest", "churn", "echo", "regressor"]
FUZZ = settings(
    max_examples=40, deadline=None, suppress_health_check=list(HealthCheck), derandomize=True
)


@pytest.fixture(scope="module")
def client(catalog: Catalog) -> Iterator[TestClient]:
    sources = [parse_source(f"{name}@production") for name in SERVED]
    app = build_server_app(
        catalog.settings, sources, worker_index=0, workers=1,
        on_ready=lambda: None, on_failed=lambda message: None,
    )  # fmt: skip
    with TestClient(app.asgi, raise_server_exceptions=False) as test_client:
        yield test_client
    # The fuzzer may have created deployments in the session's registry: other tests
    # serve its models by name, and a deployment of that name would answer instead.
    with build_registry(catalog.settings) as registry:
        for deployment in registry.list_deployments():
            registry.delete_deployment(deployment.name, reason="fuzz test clean-up")


# Triton's load and unload answer 501 to every request, by design (server.http.triton).
REFUSED = {"/v2/repository/models/{name}/load", "/v2/repository/models/{name}/unload"}


def check(client: TestClient, response: Any, what: object, refused: bool = False) -> None:
    status = response.status_code
    assert status < 500 or (refused and status == 501), (what, status, response.text[:300])
    assert client.get("/v2/health/live").status_code == 200


DOCUMENT = openapi_document(ROUTES)
OPERATIONS = [
    result.ok() for result in schemathesis.openapi.from_dict(DOCUMENT).get_all_operations()
]


@pytest.mark.parametrize("operation", OPERATIONS, ids=lambda op: f"{op.method.upper()} {op.path}")
def test_every_route_from_the_openapi_document(client: TestClient, operation: Any) -> None:
    @given(case=operation.as_strategy(), name=st.sampled_from([*SERVED, "ghost"]))
    @FUZZ
    def run(case: Any, name: str) -> None:
        if case.path_parameters and "name" in case.path_parameters:
            case.path_parameters["name"] = name
        kwargs = case.as_transport_kwargs(base_url="http://testserver")
        kwargs.pop("cookies", None)
        if isinstance(kwargs.get("data"), bytes | str):  # requests' name for a raw body
            kwargs["content"] = kwargs.pop("data")
        response = client.request(**kwargs)
        check(client, response, kwargs, refused=operation.path in REFUSED)
        conforms(DOCUMENT, response, operation.path, operation.method.lower())

    run()


OIP = open_inference_rest()
OIP_OPERATIONS = [
    result.ok() for result in schemathesis.openapi.from_dict(OIP).get_all_operations()
]


def conforms(document: dict[str, Any], response: Any, path: str, method: str) -> None:
    """The answer is one ``document`` describes: its status, and its JSON body's schema."""
    responses = document["paths"][path][method]["responses"]
    status = str(response.status_code)
    described = responses.get(status) or responses.get(f"{status[0]}XX")
    assert described is not None, (path, status, response.text[:300])
    content = (described.get("content") or {}).get("application/json")
    if content is not None and "schema" in content:
        schema = {**content["schema"], "components": document["components"]}
        errors = list(Draft202012Validator(schema).iter_errors(response.json()))
        assert not errors, (path, status, response.text[:300], errors[0].message)


@pytest.mark.parametrize(
    "operation", OIP_OPERATIONS, ids=lambda op: f"OIP {op.method.upper()} {op.path}"
)
def test_the_open_inference_protocol_description(client: TestClient, operation: Any) -> None:
    @given(
        case=operation.as_strategy(),
        name=st.sampled_from([*SERVED, "ghost"]),
        version=st.sampled_from(["1", "2", "latest"]),
    )
    @FUZZ
    def run(case: Any, name: str, version: str) -> None:
        if case.path_parameters:
            case.path_parameters["name"] = name
            if "version" in case.path_parameters:
                case.path_parameters["version"] = version
        kwargs = case.as_transport_kwargs(base_url="http://testserver")
        kwargs.pop("cookies", None)
        response = client.request(**kwargs)
        check(client, response, kwargs)
        conforms(OIP, response, operation.path, operation.method.lower())

    run()


VALUES = st.one_of(
    st.none(), st.booleans(), st.integers(), st.floats(), st.text(max_size=5),
    st.lists(st.integers(), max_size=3),
)  # fmt: skip
DATATYPES = st.sampled_from(["FP64", "FP32", "FP16", "INT64", "INT8", "BOOL", "BYTES", "BF16", "X"])


@given(
    name=st.sampled_from(SERVED),
    rows=st.integers(-1, 3),
    width=st.integers(0, 25),
    datatype=DATATYPES,
    data=st.lists(VALUES, max_size=80),
    input_name=st.sampled_from(["input", "tenure", "contract", "nope", ""]),
    extra=st.dictionaries(st.sampled_from(["id", "parameters", "outputs"]), VALUES, max_size=2),
)
@FUZZ
def test_mutated_v2_requests(
    client: TestClient, name: str, rows: int, width: int, datatype: str,
    data: list[Any], input_name: str, extra: dict[str, Any],
) -> None:  # fmt: skip
    body = {"inputs": [{"name": input_name, "shape": [rows, width], "datatype": datatype,
                        "data": data}], **extra}  # fmt: skip
    response = client.post(f"/v2/models/{name}/infer", content=json.dumps(body).encode())
    check(client, response, body)


@given(
    name=st.sampled_from(SERVED),
    body=st.binary(max_size=200),
    length=st.one_of(
        st.none(),
        st.text(st.characters(min_codepoint=32, max_codepoint=126), max_size=12),  # header-safe
        st.integers(-5, 300).map(str),
    ),
    encoding=st.sampled_from([None, "gzip", "deflate", "br"]),
    compress=st.booleans(),
)
@FUZZ
def test_garbage_bodies_and_framing_headers(
    client: TestClient, name: str, body: bytes, length: str | None, encoding: str | None,
    compress: bool,
) -> None:  # fmt: skip
    headers = {}
    if length is not None:
        headers["Inference-Header-Content-Length"] = length
    if encoding is not None:
        headers["Content-Encoding"] = encoding
        body = gzip.compress(body) if compress and encoding == "gzip" else body
    response = client.post(f"/v2/models/{name}/infer", content=body, headers=headers)
    check(client, response, (body, headers))


@given(
    name=st.sampled_from(SERVED),
    key=st.sampled_from(["dataframe_split", "dataframe_records", "instances", "inputs", "x"]),
    value=st.recursive(
        VALUES,
        lambda inner: (
            st.lists(inner, max_size=4)
            | st.dictionaries(
                st.sampled_from(["columns", "data", "index", "f0", "tenure"]), inner, max_size=3
            )
        ),
        max_leaves=20,
    ),
    content_type=st.sampled_from(["application/json", "text/csv", "text/plain", None]),
)
@FUZZ
def test_mutated_mlflow_requests(
    client: TestClient, name: str, key: str, value: Any, content_type: str | None
) -> None:
    headers = {"Content-Type": content_type} if content_type else {}
    body = json.dumps({key: value}).encode()
    response = client.post(f"/models/{name}/invocations", content=body, headers=headers)
    check(client, response, (key, value, content_type))
