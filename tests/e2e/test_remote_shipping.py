"""What ships models from a machine that has only a control plane's URL and a key
(``MODELPORT_REGISTRY_URL``, ``MODELPORT_API_KEY``): batch scoring, Kubernetes
manifests, the quickstart, and a serving replica checking its callers' keys through the
control plane. Each runs as the real CLI and is compared with the same command run
where the database is."""

from __future__ import annotations

import contextlib
import json
import queue
import re
import signal
import subprocess
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pandas as pd
import pytest

from modelport.bootstrap import build_registry
from modelport.config import Settings
from modelport.security.key_admin import KeyAdmin
from modelport.security.keys import split_token
from testing_batch import expected, read_output, register, rows
from testing_control_plane import control_plane
from testing_k8s import documents, kubelet_env, on_loopback, validate_directory
from testing_process import MODELPORT, ServerProcess, env_for, serving


@dataclass
class Plane:
    """A control plane over ``home`` (keys on), an admin key, and a client home with no
    database of its own."""

    server: ServerProcess
    home: Path
    client_home: Path
    admin: str

    def remote(self, *args: str, timeout: float = 180, key: str | None = None,
               **env: str) -> subprocess.CompletedProcess[str]:  # fmt: skip
        """The CLI on the client machine: only the URL and a key."""
        extra = {"MODELPORT_REGISTRY_URL": self.server.url,
                 "MODELPORT_API_KEY": key or self.admin, **env}  # fmt: skip
        return _run(self.client_home, args, timeout, extra)

    def local(self, *args: str, timeout: float = 180) -> subprocess.CompletedProcess[str]:
        """The same CLI where the database is."""
        return _run(self.home, args, timeout, {})


def _run(home: Path, args: tuple[str, ...], timeout: float,
         extra: dict[str, str]) -> subprocess.CompletedProcess[str]:  # fmt: skip
    env = env_for(home, **extra)
    if "MODELPORT_REGISTRY_URL" not in extra:
        for name in ("MODELPORT_REGISTRY_URL", "MODELPORT_API_KEY"):
            env.pop(name, None)
    return subprocess.run([str(MODELPORT), *args], env=env, capture_output=True, text=True,
                          timeout=timeout, check=False)  # fmt: skip


def _admin_key(home: Path) -> str:
    with build_registry(Settings(home=home)) as registry:
        return KeyAdmin(registry.metadata).create("admin", ["admin"], actor="setup")[1]


@pytest.fixture
def plane(isolated_home: Path, tmp_path: Path) -> Iterator[Plane]:
    isolated_home.mkdir(parents=True, exist_ok=True)
    admin = _admin_key(isolated_home)
    client_home = tmp_path / "client-home"
    client_home.mkdir()
    with control_plane(isolated_home, MODELPORT_SECURITY__AUTH="on") as server:
        yield Plane(server, isolated_home, client_home, admin)
    assert not (client_home / "modelport.db").exists()  # the client never opened one


# --------------------------------------------------------------------- batch scoring


def test_batch_predict_over_the_url_writes_what_a_local_run_writes(
    plane: Plane, tmp_path: Path
) -> None:
    version = register()
    data = rows(1_500)
    data.to_parquet(tmp_path / "in.parquet", row_group_size=500)
    args = ("batch", "predict", "churn@production", "--input", str(tmp_path / "in.parquet"),
            "--chunk-rows", "500", "--outputs", "prediction,probabilities", "--json")  # fmt: skip

    remote = plane.remote(*args, "--output", str(tmp_path / "remote.parquet"))
    local = plane.local(*args, "--output", str(tmp_path / "local.parquet"))

    assert remote.returncode == 0, remote.stderr
    assert local.returncode == 0, local.stderr
    summaries = [json.loads(done.stdout) for done in (remote, local)]
    same = ("model", "version", "rows_in", "rows_out", "rows_failed", "parts", "errors")
    assert [{k: s[k] for k in same} for s in summaries] == [
        {"model": "churn", "version": version, "rows_in": 1_500, "rows_out": 1_500,
         "rows_failed": 0, "parts": 3, "errors": None}
    ] * 2  # fmt: skip
    assert "batch: 1,500/1,500 rows (100%)" in remote.stderr
    scored = read_output(tmp_path / "remote.parquet")
    pd.testing.assert_frame_equal(scored, read_output(tmp_path / "local.parquet"))
    np.testing.assert_array_equal(scored["prediction"], expected(data))
    # The package came through the control plane, checked, into this machine's cache.
    cached = list((plane.client_home / "cache" / "registry").glob("*/churn/*/modelport.yaml"))
    assert len(cached) == 1


def test_batch_over_the_url_verifies_a_signature_its_settings_require(
    plane: Plane, tmp_path: Path
) -> None:
    pytest.importorskip("model_signing")
    from modelport.security.signing_keys import generate_key_pair

    register()
    rows(200).to_parquet(tmp_path / "in.parquet")
    keys = generate_key_pair(tmp_path / "release")
    signing = {"MODELPORT_SIGNING__REQUIRE_SIGNED": '["production"]',
               "MODELPORT_SIGNING__TRUSTED_KEYS": json.dumps([str(keys.public_key)])}  # fmt: skip

    def score(out: str) -> subprocess.CompletedProcess[str]:
        return plane.remote("batch", "predict", "churn@production", "--input",
                            str(tmp_path / "in.parquet"), "--output", str(tmp_path / out),
                            "--json", **signing)  # fmt: skip

    unsigned = score("unsigned.parquet")
    assert unsigned.returncode == 1 and "churn/1 is not signed" in unsigned.stderr
    assert not (tmp_path / "unsigned.parquet").exists()
    signed = plane.remote("version", "sign", "churn/1", "--key", str(keys.private_key))
    assert signed.returncode == 0, signed.stderr
    scored = score("signed.parquet")
    assert scored.returncode == 0, scored.stderr
    assert json.loads(scored.stdout)["rows_out"] == 200


def test_batch_predict_on_dask_over_the_url_writes_what_a_local_run_writes(
    plane: Plane, tmp_path: Path
) -> None:
    pytest.importorskip("distributed")
    register()
    rows(3_000).to_parquet(tmp_path / "in.parquet", row_group_size=1_000)
    args = ("batch", "predict", "churn@production", "--input", str(tmp_path / "in.parquet"),
            "--chunk-rows", "1000", "--engine", "dask", "--workers", "2", "--json")  # fmt: skip

    remote = plane.remote(*args, "--output", str(tmp_path / "remote.parquet"), timeout=300)
    local = plane.local(*args, "--output", str(tmp_path / "local.parquet"), timeout=300)

    assert remote.returncode == 0, remote.stderr
    assert local.returncode == 0, local.stderr
    assert json.loads(remote.stdout)["rows_out"] == json.loads(local.stdout)["rows_out"] == 3_000
    pd.testing.assert_frame_equal(read_output(tmp_path / "remote.parquet"),
                                  read_output(tmp_path / "local.parquet"))  # fmt: skip


def test_a_worker_elsewhere_downloads_the_package_with_its_own_key(
    plane: Plane, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """What a Dask, Ray or Spark worker on another machine does with the source the
    driver sends it: no copy in its cache, so it downloads through the control plane
    with the key of its own environment (the driver's key is not in the source)."""
    import pickle

    from modelport.bootstrap import package_source
    from modelport.errors import AuthenticationError

    register()
    monkeypatch.setenv("MODELPORT_REGISTRY_URL", plane.server.url)
    monkeypatch.setenv("MODELPORT_API_KEY", plane.admin)
    source = package_source("churn@production", Settings(home=plane.client_home))
    assert plane.admin.encode() not in pickle.dumps(source)

    elsewhere = pickle.loads(pickle.dumps(source))
    object.__setattr__(elsewhere, "cache_dir", str(tmp_path / "worker-cache"))
    object.__setattr__(elsewhere, "accelerate", False)  # another load key: not the driver's
    data = rows(20)
    predicted = elsewhere.load().predict(data[["tenure", "charges"]])
    np.testing.assert_array_equal(np.asarray(predicted), expected(data))
    assert list((tmp_path / "worker-cache" / "registry").glob("*/churn/*/modelport.yaml"))

    # A worker without a key of its own is told what to set.
    monkeypatch.delenv("MODELPORT_API_KEY")
    keyless = pickle.loads(pickle.dumps(source))
    object.__setattr__(keyless, "cache_dir", str(tmp_path / "keyless-cache"))
    object.__setattr__(keyless, "trust", ("nothing.*",))  # another load key again
    with pytest.raises(AuthenticationError, match="MODELPORT_API_KEY"):
        keyless.load()


# ---------------------------------------------------------------- kubernetes manifests


def _pod(documents: list[dict[str, Any]]) -> dict[str, Any]:
    deployment = next(d for d in documents if d["kind"] == "Deployment")
    return deployment["spec"]["template"]["spec"]


def test_k8s_render_over_the_url_points_the_pods_at_the_control_plane(
    plane: Plane, tmp_path: Path
) -> None:
    from testing_tls import make_pki

    register()
    ca = make_pki(tmp_path / "pki").ca.cert  # what verifies the control plane here
    args = ("k8s", "render", "churn@production", "--image", "registry.example/modelport:1",
            "--namespace", "ml")  # fmt: skip
    remote = plane.remote(*args, "--out", str(tmp_path / "remote"),
                          MODELPORT_REGISTRY_CA_BUNDLE=str(ca))  # fmt: skip
    local = plane.local(*args, "--artifacts-uri", "s3://models/a", "--out",
                        str(tmp_path / "local"))  # fmt: skip
    assert remote.returncode == 0, remote.stderr
    assert local.returncode == 0, local.stderr
    assert "warning" not in remote.stderr  # no artifact store to share: none is read

    rendered = validate_directory(tmp_path / "remote")
    expected_kinds = {d["kind"] for d in validate_directory(tmp_path / "local")}
    assert {d["kind"] for d in rendered} == expected_kinds
    config = next(d for d in rendered if d["kind"] == "ConfigMap")["data"]
    assert config["MODELPORT_REGISTRY_URL"] == plane.server.url
    assert config["MODELPORT_REGISTRY_CA_BUNDLE"] == "/etc/modelport/registry-ca/ca.pem"
    assert "MODELPORT_ARTIFACTS_URI" not in config
    container = _pod(rendered)["containers"][0]
    env = {e["name"]: e["valueFrom"]["secretKeyRef"] for e in container["env"]}
    assert env["MODELPORT_API_KEY"] == {"name": "churn-registry-key", "key": "api-key"}
    assert "MODELPORT_DATABASE_URL" not in env and "AWS_ACCESS_KEY_ID" not in env
    assert {"name": "registry-ca", "mountPath": "/etc/modelport/registry-ca",
            "readOnly": True} in container["volumeMounts"]  # fmt: skip
    assert {"name": "registry-ca", "configMap": {"name": "churn-registry-ca", "items": [
        {"key": "ca.pem", "path": "ca.pem"}]}} in _pod(rendered)["volumes"]  # fmt: skip
    assert container["args"] == _pod(documents_of(tmp_path / "local"))["containers"][0]["args"]
    text = "".join(p.read_text() for p in (tmp_path / "remote").glob("*.yaml"))
    split = split_token(plane.admin)
    assert split is not None  # (key id, secret); the secret may hold "_" itself
    assert plane.admin not in text and split[1] not in text

    # Named objects, and KServe, validate too.
    kserve = plane.remote(*args, "--kserve", "--registry-key-secret", "serving-key",
                          "--registry-url", "https://control.ml.svc:5000", "--out",
                          str(tmp_path / "kserve"))  # fmt: skip
    assert kserve.returncode == 0, kserve.stderr
    docs = {d["kind"]: d for d in validate_directory(tmp_path / "kserve")}
    model = docs["InferenceService"]["spec"]["predictor"]["model"]
    assert "storageUri" not in model
    assert {"name": "MODELPORT_API_KEY", "valueFrom": {"secretKeyRef": {
        "name": "serving-key", "key": "api-key"}}} in model["env"]  # fmt: skip
    assert docs["ConfigMap"]["data"]["MODELPORT_REGISTRY_URL"] == "https://control.ml.svc:5000"

    # Over the database, the registry options have nothing to point at.
    refused = plane.local(*args, "--registry-key-secret", "k")
    assert refused.returncode == 1 and "MODELPORT_REGISTRY_URL" in refused.stderr
    missing = plane.remote("k8s", "render", "nope@production", "--image", "i")
    assert missing.returncode == 1 and "nope" in missing.stderr


def documents_of(directory: Path) -> list[dict[str, Any]]:
    return [d for path in sorted(directory.glob("*.yaml")) for d in documents(path)]


# ------------------------------------------------------------------------- quickstart


def _steps(output: str) -> list[str]:
    """The output without its first line (the home, which differs by machine)."""
    return output.splitlines()[1:]


def test_quickstart_over_the_url_registers_there_and_serves_from_it(
    plane: Plane, tmp_path: Path
) -> None:
    remote = plane.remote("quickstart", "--no-serve")
    assert remote.returncode == 0, remote.stderr
    local_home = tmp_path / "local-home"
    local = _run(local_home, ("quickstart", "--no-serve"), 180, {})
    assert local.returncode == 0, local.stderr
    assert _steps(remote.stdout) == _steps(local.stdout)
    assert "registered models:/breast-cancer/1" in remote.stdout
    shown = plane.local("version", "show", "breast-cancer@production", "--json")
    assert json.loads(shown.stdout)["created_by"] == "key:admin"  # on the control plane

    # Serving: the same model from the control plane, until Ctrl+C.
    env = env_for(plane.client_home, MODELPORT_REGISTRY_URL=plane.server.url,
                  MODELPORT_API_KEY=plane.admin)  # fmt: skip
    process = subprocess.Popen(
        [str(MODELPORT), "quickstart", "--port", "0"],
        env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )  # fmt: skip
    assert process.stdout is not None
    try:
        output = _read_until(process, "Serving until Ctrl+C.\n")
        assert "reusing it" in output and "3/4 it is already in production" in output
        assert re.search(r"prediction over HTTP: 1 \(p\(benign\) = 0\.\d+\)", output), output
        url = re.search(r"on (http://127\.0\.0\.1:\d+) ", output)
        assert url, output
        body = re.search(r"-d '(\{\"inputs\": \[\[.*\]\]\})'", output)
        assert body, output
        answer = httpx.post(f"{url.group(1)}/invocations", content=body.group(1),
                            headers={"Content-Type": "application/json"}, timeout=10)  # fmt: skip
        assert answer.json() == {"predictions": [1]}
    finally:
        process.send_signal(signal.SIGINT)  # Ctrl+C: drain and exit 0
        code = process.wait(30)
        process.stdout.close()
    assert code == 0
    listed = plane.local("version", "list", "breast-cancer", "--json")
    assert [v["version"] for v in json.loads(listed.stdout)] == [1]


def _read_until(process: subprocess.Popen[str], end: str, timeout: float = 120) -> str:
    lines: queue.Queue[str] = queue.Queue()
    stream = process.stdout
    assert stream is not None
    threading.Thread(target=lambda: [lines.put(line) for line in stream], daemon=True).start()
    output = ""
    deadline = time.monotonic() + timeout
    while not output.endswith(end):
        assert process.poll() is None and time.monotonic() < deadline, output
        with contextlib.suppress(queue.Empty):
            output += lines.get(timeout=0.5)
    return output


# -------------------------------------------------------- replica API-key checks


def test_a_replica_checks_its_callers_keys_through_the_control_plane(
    isolated_home: Path, tmp_path: Path
) -> None:
    register()
    admin = _admin_key(isolated_home)
    client_home = tmp_path / "client-home"
    client_home.mkdir()
    ttl = 1.0
    with control_plane(isolated_home, MODELPORT_SECURITY__AUTH="on",
                       MODELPORT_SECURITY__KEYS_REFRESH_S=str(ttl)) as server:  # fmt: skip
        plane = Plane(server, isolated_home, client_home, admin)
        replica_key = _created(plane, "replica", "read", "verify")
        caller_key = _created(plane, "caller", "predict")
        replica_home = tmp_path / "replica-home"
        replica_home.mkdir()
        env = {"MODELPORT_REGISTRY_URL": server.url, "MODELPORT_API_KEY": replica_key,
               "MODELPORT_SECURITY__AUTH": "on"}  # fmt: skip
        with serving(replica_home, ["churn@production"], **env) as replica:
            body = {"dataframe_split": {"columns": ["customer_id", "tenure", "charges"],
                                        "data": [[1, 12, 70.5]]}}  # fmt: skip

            def predict(key: str) -> httpx.Response:
                return httpx.post(f"{replica.url}/invocations", json=body, timeout=10,
                                  headers={"authorization": f"Bearer {key}"})  # fmt: skip

            accepted = predict(caller_key)
            assert accepted.status_code == 200, accepted.text
            assert accepted.json()["predictions"] == [1]
            bogus = caller_key[:-4] + "AAAA"
            refused = predict(bogus)
            assert refused.status_code == 401 and "error_code" in refused.json()
            # The caller's key may predict, not read the registry or change deployments.
            listed = httpx.get(f"{replica.url}/api/deployments", timeout=10,
                               headers={"authorization": f"Bearer {caller_key}"})  # fmt: skip
            assert listed.status_code == 403

            revoked = plane.remote("key", "revoke", "caller")
            assert revoked.returncode == 0, revoked.stderr
            deadline = time.monotonic() + ttl + 5  # the TTL, and the control plane's re-read
            while predict(caller_key).status_code != 401:
                assert time.monotonic() < deadline, "the revoked key still works"
                time.sleep(0.1)
        assert not (replica_home / "modelport.db").exists()  # no database on the replica

        # A replica key without the verify scope is refused at start, saying why.
        reader = _created(plane, "reader", "read")
        started = _run(replica_home, ("serve", "churn@production", "--port", "0"), 60,
                       {**env, "MODELPORT_API_KEY": reader})  # fmt: skip
        assert started.returncode != 0
        assert "verify" in started.stderr and "reader" in started.stderr


def _created(plane: Plane, name: str, *scopes: str) -> str:
    """A key made with `modelport key create` over the URL; its token."""
    args = [arg for scope in scopes for arg in ("--scope", scope)]
    done = plane.remote("key", "create", "--name", name, *args, "--json")
    assert done.returncode == 0, done.stderr
    return str(json.loads(done.stdout)["key"])


def test_the_verify_route_answers_only_verify_keys_and_says_nothing_of_its_own(
    plane: Plane, tmp_path: Path
) -> None:
    from modelport.client import RegistryClient
    from modelport.errors import (
        AuthenticationError,
        InvalidRequestError,
        PermissionDeniedError,
        UnsupportedMediaTypeError,
    )

    reader = _created(plane, "reader", "read")
    verifier = _created(plane, "verifier", "verify")
    url = plane.server.url
    with RegistryClient(url, api_key=verifier, cache_dir=tmp_path) as client:
        assert client.verify_key(reader)["scopes"] == ["read"]
        assert client.verify_key(reader + "x") == {"valid": False, "ttl_s": 5.0}
    with RegistryClient(url, api_key=reader, cache_dir=tmp_path) as client:
        with pytest.raises(PermissionDeniedError) as denied:  # read is not enough
            client.verify_key(verifier)
        assert denied.value.scope == "verify"
    with RegistryClient(url, cache_dir=tmp_path) as client, pytest.raises(AuthenticationError):
        client.verify_key(verifier)
    headers = {"authorization": f"Bearer {verifier}"}
    for body, error in (({"key": 1}, InvalidRequestError), ({"key": "k", "x": 1},
                        InvalidRequestError)):  # fmt: skip
        answer = httpx.post(f"{url}/api/keys/verify", json=body, headers=headers, timeout=10)
        assert answer.status_code == 400 and answer.json()["kind"] == error.__name__
    answer = httpx.post(f"{url}/api/keys/verify", content=b"key", headers=headers, timeout=10)
    assert answer.status_code == 415
    assert answer.json()["kind"] == UnsupportedMediaTypeError.__name__
    document = httpx.get(f"{url}/api/openapi.json", headers=headers, timeout=10).json()
    assert list(document["paths"]["/api/keys/verify"]) == ["post"]

    # A replica relaying a flood of bad tokens is slowed by the control plane too.
    from modelport.server.http.key_verify import FAILURES_PER_MINUTE

    with httpx.Client(base_url=url, headers=headers, timeout=10) as http:
        answers = [http.post("/api/keys/verify", json={"key": f"mp_x_{n}"}).status_code
                   for n in range(FAILURES_PER_MINUTE)]  # fmt: skip
        # One failed verification was counted above: the limit's last one, then 429.
        assert answers == [200] * (FAILURES_PER_MINUTE - 1) + [429]
        other = {"authorization": f"Bearer {plane.admin}"}  # counted per calling key
        assert http.post("/api/keys/verify", json={"key": "mp_x_y"},
                         headers=other).status_code == 200  # fmt: skip


def test_the_rendered_pod_follows_the_control_plane_with_only_its_secret(
    plane: Plane, tmp_path: Path
) -> None:
    """The Deployment's container, started with exactly the command, arguments and
    environment rendered over the URL (the Secret holding the replica's key), on
    loopback: it serves the model from the control plane and checks callers' keys
    through it, with no database setting at all."""
    import os

    register()
    rendered = plane.remote("k8s", "render", "churn@production", "--image", "i", "--json")
    assert rendered.returncode == 0, rendered.stderr
    items = json.loads(rendered.stdout)["items"]
    config_maps = {i["metadata"]["name"]: i["data"] for i in items if i["kind"] == "ConfigMap"}
    (container,) = _pod(items)["containers"]
    replica_key = _created(plane, "churn-pods", "read", "verify")
    caller_key = _created(plane, "caller", "predict")
    env = kubelet_env(container, config_maps, {"api-key": replica_key})
    assert not [name for name in env if "DATABASE" in name or "ARTIFACTS" in name]
    env["MODELPORT_HOME"] = str(tmp_path / "mounted-home")  # the emptyDir mounted there
    (tmp_path / "mounted-home").mkdir()
    base = {key: os.environ[key] for key in ("PATH", "PYTHONPATH") if key in os.environ}
    command = [str(MODELPORT), *on_loopback(container["args"])]
    log = tmp_path / "pod.log"
    with log.open("w") as stderr:
        process = subprocess.Popen(command, env={**base, **env}, stdout=subprocess.PIPE,
                                   stderr=stderr, text=True)  # fmt: skip
    try:
        line = _read_until(process, "\n", timeout=90)
        match = re.search(r"on (http://127\.0\.0\.1:\d+) ", line)
        assert match, line + log.read_text()[-2000:]
        body = {"dataframe_split": {"columns": ["customer_id", "tenure", "charges"],
                                    "data": [[1, 12, 70.5]]}}  # fmt: skip
        answer = httpx.post(f"{match.group(1)}/invocations", json=body, timeout=10,
                            headers={"authorization": f"Bearer {caller_key}"})  # fmt: skip
        assert answer.status_code == 200 and answer.json()["predictions"] == [1]
        assert httpx.post(f"{match.group(1)}/invocations", json=body,
                          timeout=10).status_code == 401  # fmt: skip
    finally:
        process.send_signal(signal.SIGTERM)
        process.wait(60)
        assert process.stdout is not None
        process.stdout.close()
    assert not (tmp_path / "mounted-home" / "modelport.db").exists()
