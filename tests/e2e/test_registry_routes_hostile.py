"""Every registry route of a live control plane, called with names that exist and names
that do not, and with empty, wrong and garbage bodies: each answer is JSON with a 2xx or
4xx status (never a 500), errors carry their class, and no answer shows the server's
internals (paths, database URLs, storage keys, stack traces)."""

from __future__ import annotations

import re
from pathlib import Path

import httpx
import numpy as np
import pandas as pd
from sklearn.linear_model import LogisticRegression

from modelport.client import RegistryClient
from modelport.package.options import PackageOptions
from modelport.server.http.control import CONTROL_ROUTES
from modelport.server.http.openapi import openapi_document
from testing_control_plane import control_plane

INTERNALS = re.compile(
    r"Traceback|File \"|\.py\b|/tmp/|/root/|/home/|sqlite://|postgresql|artifact_key|cache_dir"
)
BODIES: list[dict[str, object]] = [
    {},
    {"json": {}},
    {"json": {"version": "one", "stage": 3, "tags": [1], "description": None}},
    {"content": b"\x00\xff garbage", "headers": {"content-type": "application/x-tar"}},
]


def _concrete(path: str, name: str) -> str:
    values = {"name": name, "version": "1", "alias": "champion"}
    return re.sub(r"\{(\w+)\}", lambda m: values[m.group(1)], path)


def test_every_registry_route_answers_json_without_internals(tmp_path: Path) -> None:
    rng = np.random.default_rng(2)
    frame = pd.DataFrame({"a": rng.normal(size=50), "b": rng.normal(size=50)})
    model = LogisticRegression().fit(frame, (frame["a"] > 0).astype(int))
    document = openapi_document(CONTROL_ROUTES)
    operations = [
        (path, method)
        for path, item in document["paths"].items()
        if path.startswith("/api/registry")
        for method in item
    ]
    seen = 0
    with control_plane(tmp_path / "home") as server:
        with RegistryClient(server.url, cache_dir=tmp_path / "cache") as client:
            client.register(model, "churn", PackageOptions(sample_input=frame, accelerate=False))
        with httpx.Client(base_url=server.url, timeout=30) as http:
            for path, method in operations:
                for name in ("churn", "ghost", "..%2F..%2Fetc", "x" * 300):
                    bodies = BODIES if method in ("post", "put", "patch") else [{}]
                    for body in bodies:
                        answer = http.request(method, _concrete(path, name), **body)  # type: ignore[arg-type]
                        seen += 1
                        where = (method, path, name, body, answer.status_code, answer.text[:300])
                        assert answer.status_code < 500, where
                        if answer.status_code >= 400:
                            data = answer.json()
                            # The router's own 404 (no such path) and 405 are not the
                            # registry's: the client maps them by status.
                            routed = answer.status_code != 405 and "no route" not in data["error"]
                            if answer.status_code >= 400 and routed:
                                assert str(data.get("kind", "")).endswith("Error"), where
                        assert not INTERNALS.search(answer.text), where
    assert seen > 150
