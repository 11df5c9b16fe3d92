"""``modelport serve`` with API keys, as a real process: off loopback without a key it
refuses to start and names the fix; with keys on, tritonclient, a V2 REST client (httpx)
and an MLflow-style scoring request each carry ``Authorization: Bearer`` and get in,
and the same requests without it get 401."""

from __future__ import annotations

import subprocess
from pathlib import Path

import httpx
import numpy as np
import pytest

import modelport
from modelport.bootstrap import build_registry
from modelport.config import Settings
from modelport.package.options import PackageOptions
from modelport.security.key_admin import KeyAdmin
from testing_models import EchoModel
from testing_process import MODELPORT, env_for, serving

ROW = {"inputs": [{"name": "input", "shape": [1, 3], "datatype": "FP64", "data": [1, 2, 3]}]}


def _register_echo() -> None:
    with modelport.connect() as registry:
        registry.register(EchoModel(), "echo", PackageOptions(sample_input=np.zeros((4, 3))))
        registry.promote("echo", 1, "production")


def test_a_reachable_server_without_keys_refuses_to_start(isolated_home: Path) -> None:
    _register_echo()
    finished = subprocess.run(
        [str(MODELPORT), "serve", "echo@production", "--host", "0.0.0.0", "--port", "0"],
        env=env_for(isolated_home), capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert finished.returncode != 0
    assert "modelport key create --name admin --scope admin" in finished.stderr
    assert "--insecure-no-auth" in finished.stderr
    assert "serving" not in finished.stdout


def test_clients_carrying_a_bearer_key_get_in_and_others_get_401(isolated_home: Path) -> None:
    import tritonclient.http as httpclient
    from tritonclient.utils import InferenceServerException

    _register_echo()
    with build_registry(Settings(home=isolated_home)) as registry:
        _, token = KeyAdmin(registry.metadata).create("clients", ["predict:echo"], actor="t")
    headers = {"Authorization": f"Bearer {token}"}
    with serving(isolated_home, ["echo@production"], MODELPORT_SECURITY__AUTH="on") as server:
        info = httpx.get(f"{server.url}/api", headers=headers, timeout=10)
        assert info.status_code == 403  # GET /api needs read: this key only predicts
        assert httpx.get(f"{server.url}/v2/health/ready", timeout=10).status_code == 200
        client = httpclient.InferenceServerClient(url=f"{server.host}:{server.port}")
        try:
            inputs = [httpclient.InferInput("input", [1, 3], "FP64")]
            inputs[0].set_data_from_numpy(np.array([[1.0, 2.0, 3.0]]))
            # A copy each time: tritonclient adds its framing headers to the dict it is given.
            result = client.infer("echo", inputs, headers=dict(headers))
            output = result.get_response()["outputs"][0]["name"]
            assert result.as_numpy(output).tolist() == [6.0]
            assert client.get_model_metadata("echo", headers=dict(headers))["name"] == "echo"
            with pytest.raises(InferenceServerException, match="API key"):
                client.infer("echo", inputs)
        finally:
            client.close()
        v2 = httpx.post(f"{server.url}/v2/models/echo/infer", json=ROW, headers=headers)
        assert v2.status_code == 200, v2.text
        unauthenticated = httpx.post(f"{server.url}/v2/models/echo/infer", json=ROW)
        assert unauthenticated.status_code == 401
        assert unauthenticated.headers["www-authenticate"] == 'Bearer realm="modelport"'
        scoring = {"Content-Type": "application/json", **headers}
        mlflow = httpx.post(
            f"{server.url}/invocations", json={"inputs": [[1, 2, 3]]}, headers=scoring
        )
        assert mlflow.status_code == 200, mlflow.text
        assert mlflow.json() == {"predictions": [6.0]}
        refused = httpx.post(f"{server.url}/invocations", json={"inputs": [[1, 2, 3]]})
        assert (refused.status_code, refused.json()["error_code"]) == (401, "UNAUTHENTICATED")
    assert token not in server.stderr.read_text()
