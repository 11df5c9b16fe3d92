"""``modelport serve`` as a real process: hot swap under load, SIGTERM drain, overload,
a crashing worker, and a real V2 client (tritonclient)."""

from __future__ import annotations

import contextlib
import os
import re
import signal
import subprocess
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import numpy as np
import pytest

import modelport
from modelport.package.options import PackageOptions
from testing_models import EchoModel
from testing_process import MODELPORT, env_for, serving

X = np.zeros((4, 3))
ROW = {"inputs": [{"name": "input", "shape": [1, 3], "datatype": "FP64", "data": [1, 2, 3]}]}


def register_echo(name: str = "echo", **config: object) -> int:
    options = PackageOptions(sample_input=X, flavor_options={"config": config})
    with modelport.connect() as registry:
        return registry.register(EchoModel(), name, options).version


def infer(client: httpx.Client, name: str = "echo") -> tuple[int, str, float]:
    response = client.post(f"/v2/models/{name}/infer", json=ROW)
    if response.status_code != 200:
        return response.status_code, response.text, 0.0
    body = response.json()
    return 200, body["model_version"], body["outputs"][0]["data"][0]


def test_hot_swap_under_load_never_fails_a_request(isolated_home: Path) -> None:
    register_echo(offset=0)
    register_echo(offset=100)
    modelport.promote("echo", 1, "production")
    answers: list[tuple[int, str, float]] = []
    stop = threading.Event()
    with serving(
        isolated_home, ["echo@production", "--workers", "2"], MODELPORT_SERVE__POLL_INTERVAL_S="0.2"
    ) as server:

        def load() -> None:
            with httpx.Client(base_url=server.url, timeout=10) as client:
                while not stop.is_set():
                    answers.append(infer(client))

        with ThreadPoolExecutor(4) as pool:
            for _ in range(4):
                pool.submit(load)
            for version in (2, 1, 2):  # the alias flips back and forth under load
                time.sleep(1.5)
                modelport.promote("echo", version, "production")
            time.sleep(1.5)
            stop.set()
    failures = [a for a in answers if a[0] != 200]
    assert not failures, failures[:5]
    assert len(answers) > 100
    assert set(answers) <= {(200, "1", 6.0), (200, "2", 106.0)}
    assert {(200, "1", 6.0), (200, "2", 106.0)} <= set(answers)
    assert answers[-1] == (200, "2", 106.0)


def wait_in_flight(url: str, count: int) -> None:
    """Until the server handles ``count`` inference requests (its own gauge says so, not
    a guess of how long the clients take to connect on a loaded machine)."""
    deadline = time.monotonic() + 10
    while True:
        metrics = httpx.get(f"{url}/metrics").text
        found = re.search(r"^modelport_in_flight_requests (\S+)$", metrics, re.MULTILINE)
        if found is not None and float(found.group(1)) >= count:
            return
        assert time.monotonic() < deadline, f"never {count} requests in flight"
        time.sleep(0.02)


def test_sigterm_finishes_requests_in_flight_then_exits_0(isolated_home: Path) -> None:
    register_echo("slow", delay=0.8)
    with serving(isolated_home, ["slow", "--max-batch-size", "1"]) as server:
        # Connected first, so that the five requests arrive together even on a loaded
        # machine (all five must be in flight before the first one's 0.8 s are over).
        clients = [httpx.Client(base_url=server.url, timeout=30) for _ in range(5)]
        for client in clients:
            assert client.get("/v2/health/ready").status_code == 200
        with ThreadPoolExecutor(5) as pool:
            futures = [pool.submit(infer, client, "slow") for client in clients]
            wait_in_flight(server.url, 5)  # they take 4 s in all, one after the other
            started = time.monotonic()
            code = server.stop()
            results = [f.result() for f in futures]
        assert code == 0
        for client in clients:
            client.close()
        assert [r[0] for r in results] == [200] * 5
        assert time.monotonic() - started < 10
        with pytest.raises(httpx.ConnectError):
            httpx.get(f"{server.url}/v2/health/live", timeout=2)


def test_drain_delay_keeps_serving_while_readiness_says_go_away(isolated_home: Path) -> None:
    register_echo()
    with serving(isolated_home, ["echo", "--drain-delay", "3"]) as server:
        with httpx.Client(base_url=server.url, timeout=5) as client:
            assert client.get("/v2/health/ready").status_code == 200
            signalled = time.monotonic()
            server.process.send_signal(signal.SIGTERM)
            deadline = signalled + 1.0
            while client.get("/v2/health/ready").status_code != 503:
                assert time.monotonic() < deadline, "readiness never turned 503"
                time.sleep(0.02)
            # Until the delay is over, new connections are accepted and served.
            with httpx.Client(base_url=server.url, timeout=5) as fresh:
                assert infer(fresh)[0] == 200
            assert infer(client)[0] == 200
            assert time.monotonic() - signalled < 3
        assert server.process.wait(30) == 0
        assert time.monotonic() - signalled >= 3
    with pytest.raises(httpx.ConnectError):
        httpx.get(f"{server.url}/v2/health/live", timeout=2)


def test_overload_gets_503_with_retry_after_at_once(isolated_home: Path) -> None:
    register_echo("slow", delay=1.0)
    args = ["slow", "--max-batch-size", "1", "--max-queue", "2"]
    with serving(isolated_home, args) as server, ThreadPoolExecutor(8) as pool:

        def timed() -> tuple[int, float, str | None]:
            response = httpx.post(f"{server.url}/v2/models/slow/infer", json=ROW, timeout=30)
            return response.status_code, time.monotonic(), response.headers.get("retry-after")

        first = pool.submit(timed)
        time.sleep(0.2)
        rest = [pool.submit(timed) for _ in range(7)]
        results = [first.result(), *(f.result() for f in rest)]
        assert sorted(r[0] for r in results) == [200] * 3 + [503] * 5
        refused = [r for r in results if r[0] == 503]
        assert all(r[2] == "1" for r in refused)
        # At once: every refusal is answered while the model is still on its first or
        # second call (1 s each), not after waiting for a slot in the queue. Compared with
        # the answers, not with a clock budget, so that a loaded machine cannot fail it.
        answered = sorted(r[1] for r in results if r[0] == 200)
        assert max(r[1] for r in refused) < answered[1]
        assert httpx.get(f"{server.url}/v2/health/live").status_code == 200


def test_a_crashing_worker_is_replaced_and_the_other_keeps_answering(isolated_home: Path) -> None:
    register_echo("fragile", crash_on=66)
    with serving(isolated_home, ["fragile", "--workers", "2"]) as server:
        crash = {
            "inputs": [{"name": "input", "shape": [1, 3], "datatype": "FP64", "data": [66, 0, 0]}]
        }
        with pytest.raises(httpx.HTTPError):  # the worker dies mid-request
            httpx.post(f"{server.url}/v2/models/fragile/infer", json=crash, timeout=10)
        ok = 0
        deadline = time.monotonic() + 30  # 50 answers in a row, on a loaded machine too
        while time.monotonic() < deadline and ok < 50:
            try:  # fresh connections: they land on any worker, old or new
                status = httpx.post(f"{server.url}/v2/models/fragile/infer", json=ROW).status_code
            except httpx.HTTPError:
                status = 0
            ok = ok + 1 if status == 200 else 0
            time.sleep(0.02)
        assert ok >= 50
        log = server.stderr.read_text()
        assert "exited" in log or "replac" in log


def test_tritonclient_speaks_to_the_server(isolated_home: Path) -> None:
    import pandas as pd
    import tritonclient.http as httpclient
    from sklearn.ensemble import RandomForestClassifier

    rng = np.random.default_rng(0)
    frame = pd.DataFrame(rng.normal(size=(200, 4)), columns=list("abcd"))
    forest = RandomForestClassifier(n_estimators=10, random_state=0)
    forest.fit(frame, (frame["a"] > 0).astype(int))
    version = modelport.register(forest, "iris-like", sample_input=frame)
    modelport.promote("iris-like", version.version, "production")
    with serving(isolated_home, ["iris-like@production"]) as server:
        client = httpclient.InferenceServerClient(url=f"{server.host}:{server.port}")
        try:
            assert client.is_server_live() and client.is_server_ready()
            assert client.is_model_ready("iris-like")
            metadata = client.get_model_metadata("iris-like")
            assert metadata["inputs"] == [{"name": "input", "datatype": "FP64", "shape": [-1, 4]}]
            x = frame.head(5).to_numpy()
            for binary in (True, False):
                given = httpclient.InferInput("input", list(x.shape), "FP64")
                given.set_data_from_numpy(x, binary_data=binary)
                wanted = [
                    httpclient.InferRequestedOutput("predictions", binary_data=binary),
                    httpclient.InferRequestedOutput("probabilities", binary_data=binary),
                ]
                result = client.infer("iris-like", [given], outputs=wanted, request_id="r1")
                assert (
                    result.as_numpy("predictions").tolist()
                    == forest.predict(frame.head(5)).tolist()
                )
                np.testing.assert_allclose(
                    result.as_numpy("probabilities"), forest.predict_proba(frame.head(5)), atol=1e-6
                )
                assert result.get_response()["id"] == "r1"
            default = client.infer("iris-like", [given])  # tritonclient's defaults: all binary
            assert default.as_numpy("predictions").shape == (5,)
            with pytest.raises(httpclient.InferenceServerException, match="not served"):
                client.get_model_metadata("ghost")
        finally:
            client.close()


@pytest.mark.parametrize(
    ("args", "error"),
    [
        (["ghost@production"], "error: model 'ghost' does not exist"),  # after the spawn
        (["ghost@production", "--workers", "0"], "error: "),  # before the supervisor runs
    ],
)
def test_a_serve_that_fails_leaves_no_worker_or_directory_behind(
    isolated_home: Path, tmp_path: Path, args: list[str], error: str
) -> None:
    # `modelport serve` spawns its first worker before reading its options; when the
    # command then fails, that worker and its private directory must go too.
    scratch = tmp_path / "tmp"
    scratch.mkdir()
    result = subprocess.run(
        [str(MODELPORT), "serve", *args, "--port", "0"],
        env=env_for(isolated_home, TMPDIR=str(scratch)),
        capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert result.returncode == 1
    assert result.stderr.strip().splitlines()[-1].startswith(error), result.stderr
    assert list(scratch.iterdir()) == []
    leftovers = [
        pid
        for pid in _processes_with_env(f"PROMETHEUS_MULTIPROC_DIR={scratch}")
        if pid != os.getpid()
    ]
    assert leftovers == []


def _processes_with_env(prefix: str) -> list[int]:
    """Processes whose environment has a variable starting with ``prefix``."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        with contextlib.suppress(OSError):
            environ = (entry / "environ").read_bytes().split(b"\0")
            if any(item.startswith(prefix.encode()) for item in environ):
                found.append(int(entry.name))
    return found
