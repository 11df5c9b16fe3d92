"""``modelport build --build`` for real: podman builds the image from a Debian base made
locally (``testing_podman``), the container serves V2 and MLflow requests over a
published loopback port, passes its own HEALTHCHECK, and on SIGTERM finishes the
request in flight and exits 0. The image is removed afterwards; the base is kept."""

from __future__ import annotations

import json
import socket
import subprocess
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import numpy as np
import pytest

import modelport
from modelport.package.options import PackageOptions
from testing_models import EchoModel
from testing_podman import BASE_IMAGE, podman, podman_env
from testing_process import MODELPORT, env_for

pytestmark = [pytest.mark.slow, pytest.mark.image, pytest.mark.timeout(1200)]

ROW = {"inputs": [{"name": "input", "shape": [1, 3], "datatype": "FP64", "data": [1, 2, 3]}]}
DELAY_S = 1.0  # each prediction takes this long: a request is still in flight at SIGTERM


@pytest.fixture
def engine_env(tmp_path: Path) -> dict[str, str]:
    return podman_env(tmp_path)


@pytest.fixture
def image(engine_env: dict[str, str], tmp_path: Path, isolated_home: Path) -> Iterator[dict]:
    """``modelport build echo/1 --build``'s JSON answer; the image and the stages it
    left are removed at the end."""
    slow = {"config": {"delay": DELAY_S}}
    options = PackageOptions(sample_input=np.zeros((4, 3)), flavor_options=slow)
    with modelport.connect() as registry:
        registry.register(EchoModel(), "echo", options)
    tag = f"localhost/modelport-test-echo:{uuid.uuid4().hex[:8]}"
    before = _dangling(engine_env)
    command = [str(MODELPORT), "build", "echo/1", "--out", str(tmp_path / "context")]
    command += ["--base", BASE_IMAGE, "--tag", tag, "--offline", "--build", "--json"]
    started = time.monotonic()
    try:
        done = subprocess.run(
            command,
            env={**env_for(isolated_home), **engine_env},
            capture_output=True,
            text=True,
            timeout=900,
            check=False,
        )
        assert done.returncode == 0, done.stderr[-5000:]
        answer = json.loads(done.stdout)
        answer["build_seconds"] = time.monotonic() - started
        yield answer
    finally:
        podman("rmi", "--force", tag, env=engine_env, check=False)
        left = sorted(_dangling(engine_env) - before)  # the builder stage of this build
        if left:
            podman("rmi", "--force", *left, env=engine_env, check=False)


def test_the_built_image_needs_keys_serves_checks_its_health_and_drains_on_sigterm(
    image: dict, engine_env: dict[str, str]
) -> None:
    size_mb = image["image_size_bytes"] / 1e6
    print(f"image {image['tag']}: {size_mb:.0f} MB, built in {image['build_seconds']:.0f} s")
    assert image["engine"] == "podman"
    assert image["extras"] == []  # a python-flavor model needs no framework extra
    config = json.loads(podman("image", "inspect", image["tag"], env=engine_env).stdout)[0]
    assert config["Config"]["User"] == "10001:10001"
    assert config["Labels"]["io.modelport.version"] == "1"
    assert config["Config"]["Entrypoint"] == ["modelport", "serve", "echo=/opt/modelport/package"]
    health = config.get("Healthcheck") or config["Config"]["Healthcheck"]  # podman: top level
    assert "/v2/health/ready" in " ".join(health["Test"])

    # It binds 0.0.0.0, so it requires API keys: with no database holding one, the
    # server says so and exits instead of serving everyone.
    refused = podman("run", "--rm", image["tag"], env=engine_env, check=False)
    assert refused.returncode != 0
    assert "requires API keys" in refused.stderr, refused.stderr[-3000:]
    assert "--insecure-no-auth" in refused.stderr

    name = f"modelport-test-{uuid.uuid4().hex[:8]}"
    port = _free_port()
    podman(
        "run", "--detach", "--name", name, "--publish", f"127.0.0.1:{port}:8080",
        image["tag"], "--insecure-no-auth",
        env=engine_env,
    )  # fmt: skip
    try:
        url = f"http://127.0.0.1:{port}"
        _wait_ready(url, name, engine_env)
        with httpx.Client(base_url=url, timeout=30) as client:
            v2 = client.post("/v2/models/echo/infer", json=ROW)
            mlflow = client.post("/invocations", json={"inputs": [[1, 2, 3], [4, 5, 6]]})
        assert v2.status_code == 200, v2.text
        assert v2.json()["outputs"][0]["data"] == [6.0]
        assert mlflow.status_code == 200, mlflow.text
        assert mlflow.json() == {"predictions": [6.0, 15.0]}
        assert podman("healthcheck", "run", name, env=engine_env, check=False).returncode == 0

        in_flight = _post_in_background(f"{url}/v2/models/echo/infer")
        time.sleep(DELAY_S / 3)  # the request reached the model
        podman("kill", "--signal", "TERM", name, env=engine_env)
        in_flight.join(30)
        exit_code = podman("wait", name, env=engine_env, timeout=60).stdout.strip()
        shown = podman("logs", name, env=engine_env)
        logs = shown.stdout + shown.stderr
        assert in_flight.status == 200, (in_flight.status, logs[-3000:])
        assert exit_code == "0", logs[-3000:]
        assert "drained in" in logs
    finally:
        podman("rm", "--force", name, env=engine_env, check=False)


class _Request(threading.Thread):
    def __init__(self, url: str) -> None:
        super().__init__(daemon=True)
        self.url = url
        self.status: int | str = "not answered"

    def run(self) -> None:
        try:
            self.status = httpx.post(self.url, json=ROW, timeout=30).status_code
        except httpx.HTTPError as exc:
            self.status = repr(exc)


def _post_in_background(url: str) -> _Request:
    request = _Request(url)
    request.start()
    return request


def _wait_ready(url: str, name: str, env: dict[str, str], timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"{url}/v2/health/ready", timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        state = podman("inspect", name, "--format", "{{.State.Status}}", env=env).stdout
        if state.strip() not in {"running", "created", "configured"}:
            break
        time.sleep(0.5)
    logs = podman("logs", name, env=env, check=False)
    pytest.fail(f"the container never became ready: {(logs.stdout + logs.stderr)[-3000:]}")


def _dangling(env: dict[str, str]) -> set[str]:
    listed = podman("images", "--quiet", "--no-trunc", "--filter", "dangling=true", env=env)
    return set(listed.stdout.split())


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])
