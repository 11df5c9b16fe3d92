"""OWASP API3:2023 Broken Object Property Level Authorization: answers show no internal
fields, and request bodies cannot set fields they do not own.

Every documented route is called with good, empty and garbage bodies on a server whose
models include one that fails and one that answers nonsense; no answer may show a
filesystem path, the machine's host name, a database URL or a stack trace. The REST
bodies that change state (deployments, feedback) refuse fields they do not take
(mass assignment) instead of applying or silently dropping them.
"""

from __future__ import annotations

import re
import socket
from typing import Any

import pytest

from modelport.bootstrap import build_registry
from modelport.server.http.app import ROUTES
from modelport.server.http.openapi import openapi_document
from testing_server import Catalog, Served, ServeFn

ROW = {"inputs": [{"name": "input", "shape": [1, 3], "datatype": "FP64", "data": [1, 2, 3]}]}
VALUES = {"name": "echo", "version": "1", "model": "echo", "arm": "champion"}
BODIES: list[dict[str, Any]] = [
    {"json": ROW},
    {"json": {}},
    {"content": b"\x00\xff garbage"},
    {"json": {"inputs": [{"name": "input", "shape": [1, 3], "datatype": "FP64", "data": [13]}]}},
]


def leaks(text: str, catalog: Catalog) -> list[str]:
    """The internal things ``text`` shows."""
    home = str(catalog.settings.home)
    found = [home] if home in text else []
    host = socket.gethostname()
    if len(host) > 3 and host in text:
        found.append(f"host name {host}")
    patterns = {
        "a database URL": r"(sqlite|postgresql|postgres|mysql)(\+\w+)?://",
        "a stack trace": r"Traceback|File \"[^\"]+\", line \d+",
        "a source file": r"\.py\b",
        "a filesystem path": r"(/tmp/|/home/|/root/|/usr/|/var/|site-packages)",
        "an artifact key": r"artifact_key|manifest_digest|cache_dir",
    }
    found.extend(what for what, pattern in patterns.items() if re.search(pattern, text))
    return found


@pytest.fixture
def served(serve_app: ServeFn) -> Served:
    served: Served = serve_app(["echo@production", "garbage/1", "slow@production"])
    return served


def concrete(path: str, name: str) -> str:
    values = {**VALUES, "name": name, "model": name}
    return re.sub(r"\{(\w+)\}", lambda m: values.get(m.group(1), "x1"), path)


def test_no_answer_of_any_route_shows_internals(served: Served, attack_catalog: Catalog) -> None:
    document = openapi_document(ROUTES)
    seen = 0
    for path, item in document["paths"].items():
        for method in item:
            for name in ("echo", "garbage", "ghost", "..%2F..%2Fetc"):
                for body in BODIES if method in ("post", "put") else [{}]:
                    response = served.client.request(method, concrete(path, name), **body)
                    seen += 1
                    found = leaks(response.text, attack_catalog)
                    assert not found, (method, path, name, response.status_code, found)
                    assert not leaks(str(response.headers), attack_catalog)
    assert seen > 300


def test_a_model_answering_nonsense_is_an_error_without_internals(
    served: Served, attack_catalog: Catalog
) -> None:
    for path, body in (
        ("/v2/models/garbage/infer", ROW),
        ("/models/garbage/invocations", {"inputs": [[1, 2, 3]]}),
    ):
        response = served.client.post(path, json=body)
        assert response.status_code >= 400
        assert not leaks(response.text, attack_catalog), response.text


def test_model_descriptions_show_only_public_fields(served: Served) -> None:
    detail = served.client.get("/api/models/echo").json()
    assert set(detail) == {
        "name", "source", "version", "wanted_version", "stale", "state", "runtime",
        "acceleration", "error", "deployment", "flavor", "inputs", "outputs", "signature",
    }  # fmt: skip
    assert detail["source"] == "models:/echo@production"


@pytest.mark.parametrize(
    ("method", "path", "body", "field"),
    [
        ("PUT", "/api/deployments/mass", {"version": 1, "model": "echo", "revision": 9},
         "revision"),
        ("PUT", "/api/deployments/mass", {"version": 1, "model": "echo", "created_by": "root"},
         "created_by"),
        ("POST", "/api/deployments/mass/canary",
         {"version": 1, "weight": 10, "model": "echo", "traffic_percent": 100}, "traffic_percent"),
        ("POST", "/api/deployments/mass/promote", {"skip_gates": False, "trusted": True},
         "trusted"),
        ("POST", "/api/deployments/mass/weights",
         {"arm": "champion", "weight": 50, "signature_verified": True}, "signature_verified"),
    ],
)  # fmt: skip
def test_deployment_bodies_refuse_fields_they_do_not_take(
    served: Served, attack_catalog: Catalog, method: str, path: str, body: dict[str, Any],
    field: str,
) -> None:  # fmt: skip
    response = served.client.request(method, path, json=body)
    assert response.status_code == 400, response.text
    assert field in response.json()["error"]
    with build_registry(attack_catalog.settings) as registry:
        assert "mass" not in {d.name for d in registry.list_deployments()}  # nothing applied


def test_feedback_refuses_fields_it_does_not_take(served: Served) -> None:
    label = {"model": "echo", "prediction_id": "p-1", "label": 1}
    for extra in ({"actor": "admin"}, {"logged_at": "2020-01-01T00:00:00Z"}, {"source": "x"}):
        response = served.client.post("/api/feedback", json={**label, **extra})
        assert response.status_code == 400, (extra, response.text)
        assert next(iter(extra)) in response.json()["error"]
    wrapped = {"model": "echo", "labels": [label], "actor": "admin"}
    response = served.client.post("/api/feedback", json=wrapped)
    assert response.status_code == 400 and "actor" in response.json()["error"]
