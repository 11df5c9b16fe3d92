"""The control plane's OpenAPI document describes every registry route and method it
answers, and nothing else; the serving server's document is unchanged by them."""

from __future__ import annotations

from modelport.server.http.app import ROUTES
from modelport.server.http.control import CONTROL_ROUTES
from modelport.server.http.openapi import openapi_document
from modelport.server.http.registry_routes import REGISTRY_ROUTES


def _operations(routes: object) -> set[tuple[str, str]]:
    return {(path, method.lower()) for path, methods, _ in routes for method in methods}  # type: ignore[attr-defined]


def test_every_registry_route_is_described_exactly() -> None:
    document = openapi_document(CONTROL_ROUTES, title="control")
    described = {(path, method) for path, item in document["paths"].items() for method in item}
    assert _operations(REGISTRY_ROUTES) <= described
    assert described == _operations(CONTROL_ROUTES)
    for path, method in _operations(REGISTRY_ROUTES):
        operation = document["paths"][path][method]
        assert operation["summary"] and operation["responses"], (path, method)
    schemas = document["components"]["schemas"]
    assert {"RegisteredModel", "RegistryVersion", "AliasMove", "AuditEntry"} <= set(schemas)
    assert "Control plane health" in document["paths"]["/health"]["get"]["summary"]


def test_the_serving_document_has_no_registry_routes() -> None:
    document = openapi_document(ROUTES)
    assert not [path for path in document["paths"] if path.startswith("/api/registry")]
    assert document["paths"]["/health"]["get"]["summary"] == "MLflow health"
