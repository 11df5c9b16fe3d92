"""``modelport serve`` following a control plane through its URL alone: the serving
replica has no database and no artifact store, resolves ``churn@production`` over HTTP,
downloads the package with its digests, and swaps when the alias moves."""

from __future__ import annotations

import time
from pathlib import Path

import httpx
import numpy as np

from modelport.client import RegistryClient
from modelport.package.options import PackageOptions
from testing_control_plane import control_plane
from testing_models import EchoModel
from testing_process import serving

ROW = {"inputs": [{"name": "input", "shape": [1, 3], "datatype": "FP64", "data": [1, 2, 3]}]}


def _answer(url: str) -> tuple[str, float]:
    response = httpx.post(f"{url}/v2/models/churn/infer", json=ROW, timeout=10)
    assert response.status_code == 200, response.text
    body = response.json()
    return response.headers["x-modelport-version"], body["outputs"][0]["data"][0]


def test_serve_follows_an_alias_through_the_registry_url(tmp_path: Path) -> None:
    registry_home, replica_home = tmp_path / "registry", tmp_path / "replica"
    with (
        control_plane(registry_home) as plane,
        RegistryClient(plane.url, cache_dir=tmp_path / "cache") as client,
    ):
        for offset in (0, 100):
            options = PackageOptions(
                sample_input=np.zeros((4, 3)), flavor_options={"config": {"offset": offset}}
            )
            client.register(EchoModel(), "churn", options)
        client.promote("churn", 1, "production")
        env = {"MODELPORT_REGISTRY_URL": plane.url, "MODELPORT_SERVE__POLL_INTERVAL_S": "0.2"}
        with serving(replica_home, ["churn@production"], **env) as server:
            assert _answer(server.url) == ("1", 6.0)
            client.promote("churn", 2, "production")
            deadline = time.monotonic() + 30
            while _answer(server.url) != ("2", 106.0):
                assert time.monotonic() < deadline, "the server never swapped"
                time.sleep(0.1)
            # Its own deployment routes: no database here to keep them in.
            assert httpx.get(f"{server.url}/api/deployments", timeout=10).status_code == 501
    # The replica opened no database: only its cache of downloaded packages.
    assert not (replica_home / "modelport.db").exists()
    assert not (replica_home / "artifacts").exists()
    assert any((replica_home / "cache" / "registry").rglob("modelport.yaml"))
