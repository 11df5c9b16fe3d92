"""``modelport serve`` with ``[signing] require_signed = ["production"]``: its workers
serve the signed production version, refuse to swap to an unsigned one (the old one
keeps answering), and the command refuses to start on an unsigned production version."""

from __future__ import annotations

import subprocess
import time
from pathlib import Path

import httpx
import numpy as np
import pytest

import modelport
from modelport.package.options import PackageOptions
from modelport.security.signing_keys import generate_key_pair
from testing_models import EchoModel
from testing_process import MODELPORT, env_for, serving

pytest.importorskip("model_signing")

X = np.zeros((4, 3))
ROW = {"inputs": [{"name": "input", "shape": [1, 3], "datatype": "FP64", "data": [1, 2, 3]}]}


def register_echo(offset: int) -> int:
    options = PackageOptions(sample_input=X, flavor_options={"config": {"offset": offset}})
    with modelport.connect() as registry:
        return registry.register(EchoModel(), "echo", options).version


def answer(client: httpx.Client) -> tuple[str, float]:
    response = client.post("/v2/models/echo/infer", json=ROW)
    assert response.status_code == 200, response.text
    body = response.json()
    return body["model_version"], body["outputs"][0]["data"][0]


def test_serve_takes_signed_production_versions_only(isolated_home: Path, tmp_path: Path) -> None:
    keys = generate_key_pair(tmp_path / "signing")
    config = tmp_path / "modelport.toml"
    config.write_text(
        f'[signing]\ntrusted_keys = ["{keys.public_key}"]\nrequire_signed = ["production"]\n'
    )
    # This process has no [signing]: it promotes what the server must refuse by itself.
    register_echo(offset=0)
    with modelport.connect() as registry:
        registry.sign_version("echo/1", keys.private_key)
    modelport.promote("echo", 1, "production")
    args = ["echo@production", "--workers", "2"]
    env = {"MODELPORT_CONFIG": str(config), "MODELPORT_SERVE__POLL_INTERVAL_S": "0.2"}
    with serving(isolated_home, args, **env) as server, httpx.Client(base_url=server.url) as client:
        assert answer(client) == ("1", 6.0)
        register_echo(offset=100)
        modelport.promote("echo", 2, "production")
        deadline = time.monotonic() + 20
        while True:
            stale = client.get("/api/models/echo").json()["stale"] or {}
            if stale.get("version") == 2:
                break
            assert time.monotonic() < deadline, "the unsigned version was never refused"
            time.sleep(0.1)
        assert stale["reason"] == "load_failed"
        assert "echo/2 is not signed (no model.sig)" in stale["detail"]
        assert all(answer(client) == ("1", 6.0) for _ in range(10))
    result = subprocess.run(
        [str(MODELPORT), "serve", "echo@production", "--port", "0"],
        env=env_for(isolated_home, MODELPORT_CONFIG=str(config)),
        capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert result.returncode == 1
    assert "echo/2 is not signed (no model.sig)" in result.stderr
