"""OWASP API8:2023 Security Misconfiguration: secure defaults, every answer hardened.

Every response carries the security headers (``server.http.front.SECURITY_HEADERS``)
and no ``Access-Control-*`` header (CORS is off: a browser preflight gets 405); there are
no documentation or debug pages; the real server names no software or version in a
``Server`` header; pickled bodies are refused before they are read (415); errors carry no
stack trace; and the defaults bind loopback, run without debug and call no internal
address.
"""

from __future__ import annotations

import gzip
from typing import Any

import httpx
import pytest

from modelport.config import Settings
from modelport.server.http.front import POST_SECURITY_HEADERS, SECURITY_HEADERS
from testing_process import ServerProcess
from testing_server import Served, ServeFn

ROW = {"inputs": [{"name": "input", "shape": [1, 3], "datatype": "FP64", "data": [1, 2, 3]}]}
EXPECTED = {name.decode(): value.decode() for name, value in SECURITY_HEADERS}
# A POST's answer is data no browser navigates to, frames or caches: no headers.
EXPECTED_POST = {name.decode(): value.decode() for name, value in POST_SECURITY_HEADERS}
PICKLES = [
    "application/vnd.bentoml+pickle",
    "application/python-pickle",
    "application/x-python-pickle",
    "application/pickle",
]
# Requests that reach every kind of answer: success, 4xx of each sort, text bodies.
REQUESTS: list[tuple[str, str, dict[str, Any]]] = [
    ("GET", "/v2/health/live", {}),
    ("GET", "/v2", {}),
    ("GET", "/v2/models/echo", {}),
    ("POST", "/v2/models/echo/infer", {"json": ROW}),
    ("POST", "/v2/models/echo/infer", {"content": b"{not json"}),
    ("POST", "/v2/models/ghost/infer", {"json": ROW}),
    ("GET", "/v2/models/echo/infer", {}),
    ("POST", "/v2/models/echo/infer", {"content": b"x", "headers": {"content-type": PICKLES[0]}}),
    ("POST", "/invocations", {"json": {"inputs": [[1, 2, 3]]}}),
    ("POST", "/invocations", {"content": b"a,b", "headers": {"content-type": "text/html"}}),
    ("GET", "/ping", {}),
    ("GET", "/version", {}),
    ("GET", "/metrics", {}),
    ("GET", "/api/models", {}),
    ("GET", "/api/openapi.json", {}),
    ("GET", "/nowhere", {}),
    ("DELETE", "/v2/health/live", {}),
]


@pytest.fixture
def served(serve_app: ServeFn) -> Served:
    served: Served = serve_app(["echo@production"])
    return served


@pytest.mark.parametrize(("method", "path", "options"), REQUESTS, ids=lambda v: str(v)[:40])
def test_every_answer_carries_the_security_headers_and_no_cors_header(
    served: Served, method: str, path: str, options: dict[str, Any]
) -> None:
    response = served.client.request(method, path, **options)
    expected = EXPECTED_POST if method == "POST" else EXPECTED
    for name, value in expected.items():
        assert response.headers.get_list(name) == [value], (name, response.status_code)
    if method == "POST":
        assert "x-frame-options" not in response.headers
    assert not [name for name in response.headers if name.lower().startswith("access-control")]
    assert "traceback" not in response.text.lower()


def test_a_cors_preflight_is_refused(served: Served) -> None:
    preflight = {
        "Origin": "https://evil.example",
        "Access-Control-Request-Method": "POST",
        "Access-Control-Request-Headers": "content-type, authorization",
    }
    for path in ("/v2/models/echo/infer", "/invocations", "/api/deployments/x"):
        response = served.client.options(path, headers=preflight)
        assert response.status_code == 405, path
        assert "access-control-allow-origin" not in response.headers
    simple = served.client.get("/v2/models/echo", headers={"Origin": "https://evil.example"})
    assert simple.status_code == 200 and "access-control-allow-origin" not in simple.headers


@pytest.mark.parametrize(
    "path",
    ["/docs", "/redoc", "/openapi.json", "/debug", "/_debug", "/admin", "/console",
     "/swagger-ui.html", "/.env", "/server-status", "/debug/pprof", "/actuator/env", "/__debug__/"],
)  # fmt: skip
def test_there_are_no_documentation_or_debug_pages(served: Served, path: str) -> None:
    response = served.client.get(path)
    assert response.status_code == 404
    assert response.headers["content-type"] == "application/json"
    assert response.json() == {"error": f"no route for GET {path}"}


@pytest.mark.parametrize("content_type", PICKLES)
def test_pickled_bodies_are_refused_with_415_on_every_route_that_takes_a_body(
    served: Served, content_type: str
) -> None:
    body = b"\x80\x04\x95\x00"  # the start of a pickle; never read
    headers = {"content-type": content_type}
    for path in ("/v2/models/echo/infer", "/invocations", "/api/feedback", "/api/deployments/x"):
        method = "PUT" if path.startswith("/api/deployments") else "POST"
        response = served.client.request(method, path, content=body, headers=headers)
        assert response.status_code == 415, (path, response.text)


def test_malformed_requests_get_clear_errors_without_internals(served: Served) -> None:
    bodies = [b"{" * 5000, b"\xff\xfe", gzip.compress(b"[1,2"), b'{"inputs": [{"name": 1}]}']
    for body in bodies:
        response = served.client.post("/v2/models/echo/infer", content=body)
        assert 400 <= response.status_code < 500
        text = response.text
        assert "Traceback" not in text and 'File "' not in text and ".py" not in text


def test_the_defaults_are_the_safe_ones() -> None:
    settings = Settings()
    assert settings.serve.host == "127.0.0.1"  # loopback unless told otherwise
    assert settings.debug is False
    assert settings.serve.access_log is False  # no request data in logs by default
    assert settings.outgoing.allowed_hosts == []
    assert settings.outgoing.allow_private_networks is False
    assert settings.serve.allow_non_finite is False


def test_the_real_server_names_no_software_and_sends_the_headers(
    real_server: ServerProcess,
) -> None:
    for path in ("/v2/health/live", "/nowhere", "/v2/models/echo"):
        response = httpx.get(real_server.url + path, timeout=10)
        assert "server" not in response.headers, response.headers
        assert "x-powered-by" not in response.headers
        for name, value in EXPECTED.items():
            assert response.headers.get(name) == value
