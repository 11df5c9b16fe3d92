"""The rendered pod runs: ``modelport serve`` started with exactly the command, arguments
and environment the Deployment (and KServe's runtime + InferenceService) render, as
the kubelet would assemble them (ConfigMap, then Secret references, then ``$(VAR)``
expansion), on loopback instead of the pod's every address, with a key in the
database the Secret names. Its probe paths answer, /metrics takes the ServiceMonitor's
key, and SIGTERM drains within the rendered grace period."""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import time
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest

import modelport
from modelport.bootstrap import build_registry
from modelport.cli.main import main
from modelport.config import Settings
from modelport.package.options import PackageOptions
from modelport.security.key_admin import KeyAdmin
from testing_k8s import kubelet_env, on_loopback
from testing_models import EchoModel
from testing_process import MODELPORT

pytestmark = pytest.mark.slow  # the drain delay alone is 5 s
_SERVING = re.compile(r"modelport serving .* on http://([\d.]+):(\d+)")


def _render(capsys: pytest.CaptureFixture[str], *extra: str) -> list[dict[str, Any]]:
    with pytest.raises(SystemExit) as info:
        main(["k8s", "render", "echo@production", "--image", "i", "--json", *extra])
    out, err = capsys.readouterr()
    assert info.value.code == 0, err
    items: list[dict[str, Any]] = json.loads(out)["items"]
    return items


def _expand(args: list[str], env: dict[str, str]) -> list[str]:
    """Kubernetes' ``$(VAR)`` expansion in arguments."""
    return [re.sub(r"\$\(([A-Za-z_][A-Za-z0-9_]*)\)", lambda m: env[m.group(1)], a) for a in args]


def _merged_kserve_container(items: list[dict[str, Any]]) -> dict[str, Any]:
    """KServe's merge of the runtime's container with the InferenceService's model spec:
    env by name (the model's wins), envFrom from the model, args concatenated."""
    runtime = next(i for i in items if i["kind"] == "ServingRuntime")["spec"]["containers"][0]
    model = next(i for i in items if i["kind"] == "InferenceService")["spec"]["predictor"]["model"]
    env = {item["name"]: item for item in runtime["env"]}
    env.update({item["name"]: item for item in model.get("env", [])})
    args = [*runtime["args"], *model.get("args", [])]
    return {**runtime, "env": list(env.values()), "envFrom": model.get("envFrom", []), "args": args}


@pytest.mark.parametrize(
    ("kserve", "storage"),
    [(False, False), (True, False), (True, True)],
    ids=["deployment", "kserve-registry", "kserve-storage-uri"],
)
def test_the_rendered_container_serves_its_probes_and_drains_in_its_grace_period(
    kserve: bool,
    storage: bool,
    isolated_home: Path,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    database = f"sqlite:///{tmp_path / 'registry.db'}"
    # The shared registry: the database the Secret names, and an artifact store every
    # pod reads (a directory here, standing in for a bucket or a mounted volume).
    shared = {"MODELPORT_DATABASE_URL": database,
              "MODELPORT_ARTIFACTS_URI": str(tmp_path / "shared-artifacts")}  # fmt: skip
    with pytest.MonkeyPatch.context() as patch:
        for name, value in shared.items():
            patch.setenv(name, value)
        with modelport.connect() as registry:
            registry.register(EchoModel(), "echo", PackageOptions(sample_input=np.zeros((4, 3))))
            registry.promote("echo", 1, "production")
        extra = ["--kserve"] if kserve else []
        if storage:  # storageUri: the package in an object store, fetched by KServe
            extra += ["--artifacts-uri", "s3://models/artifacts"]
        items = _render(capsys, *extra)
    with build_registry(Settings(home=isolated_home, database_url=database)) as registry:
        _, metrics_key = KeyAdmin(registry.metadata).create("prometheus", ["metrics"], actor="t")
    config_maps = {i["metadata"]["name"]: i["data"] for i in items if i["kind"] == "ConfigMap"}
    if kserve:
        container = _merged_kserve_container(items)
        isvc = next(i for i in items if i["kind"] == "InferenceService")
        grace = isvc["spec"]["predictor"]["terminationGracePeriodSeconds"]
        ready_path = container["readinessProbe"]["httpGet"]["path"]
        live_path = container["livenessProbe"]["httpGet"]["path"]
    else:
        pod = next(i for i in items if i["kind"] == "Deployment")["spec"]["template"]["spec"]
        (container,) = pod["containers"]
        grace = pod["terminationGracePeriodSeconds"]
        ready_path = container["readinessProbe"]["httpGet"]["path"]
        live_path = container["livenessProbe"]["httpGet"]["path"]
    env = kubelet_env(container, config_maps, {"database-url": database,
                                                "metrics-key": metrics_key})  # fmt: skip
    assert env["MODELPORT_HOME"] == "/var/lib/modelport"
    env["MODELPORT_HOME"] = str(tmp_path / "mounted-home")  # the emptyDir mounted there
    (tmp_path / "mounted-home").mkdir()
    if storage:  # what KServe's storage initializer does: the storageUri's files at /mnt/models
        isvc = next(i for i in items if i["kind"] == "InferenceService")
        uri = isvc["spec"]["predictor"]["model"]["storageUri"]
        key = uri.removeprefix("s3://models/artifacts/")
        shutil.copytree(tmp_path / "shared-artifacts" / key, tmp_path / "mnt-models")
        assert env["SERVE_MODEL"] == "echo=/mnt/models"
        env["SERVE_MODEL"] = f"echo={tmp_path / 'mnt-models'}"  # the volume mounted there
    command = [
        str(MODELPORT),
        *container["command"][1:],
        *on_loopback(_expand(container["args"], env)),
    ]
    assert container["command"] == ["modelport"]
    base = {key: os.environ[key] for key in ("PATH", "PYTHONPATH") if key in os.environ}
    log = tmp_path / "serve.log"
    with log.open("w") as stderr:
        process = subprocess.Popen(command, env={**base, **env}, stdout=subprocess.PIPE,
                                   stderr=stderr, text=True)  # fmt: skip
    try:
        url = _wait_for_url(process, log)
        assert httpx.get(url + live_path, timeout=10).status_code == 200
        assert httpx.get(url + ready_path, timeout=10).status_code == 200
        # keys are on: /metrics takes the ServiceMonitor's key, nothing else
        assert httpx.get(url + "/metrics", timeout=10).status_code == 401
        scraped = httpx.get(url + "/metrics", headers={"Authorization": f"Bearer {metrics_key}"})
        assert scraped.status_code == 200 and "modelport_" in scraped.text
        signalled = time.monotonic()
        process.send_signal(signal.SIGTERM)
        time.sleep(0.5)
        # during the drain delay: out of the Service's endpoints, still alive and serving
        assert httpx.get(url + ready_path, timeout=10).status_code == 503
        assert httpx.get(url + live_path, timeout=10).status_code == 200
        assert process.wait(grace) == 0
        assert time.monotonic() - signalled < grace
    finally:
        if process.poll() is None:
            process.kill()
            process.wait(10)
        assert process.stdout is not None
        process.stdout.close()


def _wait_for_url(process: subprocess.Popen[str], log: Path, timeout: float = 60) -> str:
    assert process.stdout is not None
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        line = process.stdout.readline()
        match = _SERVING.search(line)
        if match:
            return f"http://{match.group(1)}:{match.group(2)}"
        if process.poll() is not None:
            break
    raise AssertionError(f"the rendered container did not start: {log.read_text()[-3000:]}")
