"""OWASP API9:2023 Improper Inventory Management: what answers is what is documented.

The OpenAPI document equals the route table (``tests/integration/server/test_rest.py``
checks that). Here, against the running app: every documented path refuses every
method it does not document (405, naming the allowed ones; HEAD answers where GET does,
as HTTP defines it), nothing outside the document answers (no trailing-slash redirects,
no old API versions, no encoded detours), and versions or models that are not served
answer 404.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

import pytest
from starlette.testclient import TestClient

from modelport.bootstrap import build_server_app
from modelport.server.http.app import ROUTES
from modelport.server.http.openapi import openapi_document
from modelport.serving.sources import parse_source
from testing_server import Catalog, Served, ServeFn

METHODS = ("GET", "HEAD", "POST", "PUT", "DELETE", "PATCH", "OPTIONS", "TRACE")
VALUES = {"name": "echo", "version": "1", "model": "echo", "arm": "champion"}
DOCUMENT: dict[str, Any] = openapi_document(ROUTES)
ROW = {"inputs": [{"name": "input", "shape": [1, 3], "datatype": "FP64", "data": [1, 2, 3]}]}


def concrete(path: str) -> str:
    # A parameter this module does not know (a route added later) gets a plain value.
    return re.sub(r"\{(\w+)\}", lambda match: VALUES.get(match.group(1), "x1"), path)


def documented_methods(path: str) -> set[str]:
    methods = {method.upper() for method in DOCUMENT["paths"][path]}
    return methods | ({"HEAD"} if "GET" in methods else set())


@pytest.fixture(scope="module")
def served(attack_catalog: Catalog) -> Iterator[TestClient]:
    """One app for the module: these requests change nothing."""
    app = build_server_app(
        attack_catalog.settings, [parse_source("echo@production")], worker_index=0, workers=1,
        on_ready=lambda: None, on_failed=lambda message: None,
    )  # fmt: skip
    with TestClient(app.asgi, raise_server_exceptions=False) as client:
        yield client


@pytest.mark.parametrize("path", sorted(DOCUMENT["paths"]))
def test_undocumented_methods_on_documented_paths_get_405(served: TestClient, path: str) -> None:
    allowed = documented_methods(path)
    for method in sorted(set(METHODS) - allowed):
        response = served.request(method, concrete(path))
        assert response.status_code == 405, (method, path, response.status_code)
        assert set(response.headers["allow"].split(", ")) == allowed
        if method != "HEAD":  # a HEAD answer has no body
            assert method in response.json()["error"]


@pytest.mark.parametrize(
    "path",
    [
        "/v2/health/live/", "/v2/models/echo/", "/api/models/", "/metrics/",  # trailing slashes
        "/v1/models/echo", "/v1/models/echo:predict", "/api/v1/models", "/v3/models/echo",
        "/v2/models/echo/versions/1/infer/extra", "/v2//models/echo", "/V2/health/live",
        "/v2/models/echo%2F..%2F..%2Fmetrics", "/v2/models/echo/../../metrics/x",
        "/v2/repository/models", "/v2/models/echo/trace/setting", "/v2/logging",
        "/v2/systemsharedmemory/status", "/v2/cudasharedmemory/status", "/v2/trace/setting",
    ],
)  # fmt: skip
def test_nothing_outside_the_document_answers(served: TestClient, path: str) -> None:
    for method in ("GET", "POST"):
        response = served.request(method, path, follow_redirects=False)
        assert response.status_code == 404, (method, path, response.status_code)


def test_versions_and_models_that_are_not_served_answer_404(serve_app: ServeFn) -> None:
    served: Served = serve_app(["echo@production"])
    client = served.client
    assert client.post("/v2/models/echo/versions/1/infer", json=ROW).status_code == 200
    for path in ("/v2/models/echo/versions/2", "/v2/models/hang", "/v2/models/slow/ready"):
        assert client.get(path).status_code == 404, path
    for path in ("/v2/models/echo/versions/2/infer", "/v2/models/hang/infer"):
        assert client.post(path, json=ROW).status_code == 404, path
    assert client.post("/models/hang/invocations", json={"inputs": [[1, 2, 3]]}).status_code == 404
    listed = client.get("/api/models").json()["models"]
    assert [model["name"] for model in listed] == ["echo"]
