"""A deployment's shadow arm answered by real ``modelport serve`` processes: each worker
hands its copies to a process of its own at idle priority, which logs the shadow's
answers under the caller's request ids; a killed shadow process is counted and replaced;
stopping the server stops it, with everything it answered written."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import httpx
import numpy as np
import pytest
from prometheus_client.parser import text_string_to_metric_families

import modelport
from modelport.monitoring.prediction_log import query
from modelport.package.options import PackageOptions
from testing_models import EchoModel
from testing_process import ServerProcess, serving

pytestmark = [
    pytest.mark.timeout(180),
    pytest.mark.skipif(not hasattr(os, "SCHED_IDLE"), reason="Linux scheduling classes"),
]

X = np.zeros((4, 3))
# The tests share the machine with others: the shadow answers whatever the CPU load.
ANSWER_ALWAYS = {"MODELPORT_SERVE__SHADOW_BUSY_LIMIT": "1"}
ROW = {"inputs": [{"name": "input", "shape": [1, 3], "datatype": "FP64", "data": [1, 2, 3]}]}


def deploy_with_shadow() -> None:
    with modelport.connect() as registry:
        for offset in (0.0, 100.0):
            options = PackageOptions(sample_input=X, flavor_options={"config": {"offset": offset}})
            registry.register(EchoModel(), "echo", options)
        registry.create_deployment("echo", 1)
        registry.deploy_shadow("echo", 2, 1.0)


def descendants(pid: int) -> list[int]:
    """Every process below ``pid`` (from /proc)."""
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            stat = Path(f"/proc/{entry}/stat").read_text()
        except OSError:
            continue
        parent = int(stat.rsplit(")", 1)[1].split()[1])
        children.setdefault(parent, []).append(int(entry))
    found, stack = [], [pid]
    while stack:
        for child in children.get(stack.pop(), []):
            found.append(child)
            stack.append(child)
    return found


def shadow_processes(server: ServerProcess) -> list[int]:
    pids = []
    for pid in descendants(server.process.pid):
        try:
            command = Path(f"/proc/{pid}/cmdline").read_bytes()
        except OSError:
            continue
        if b"modelport.server.process.shadow_worker" in command:
            pids.append(pid)
    return pids


def idle(pid: int) -> bool:
    """Whether every thread of ``pid`` is in the idle scheduling class."""
    tasks = [int(task) for task in os.listdir(f"/proc/{pid}/task")]
    return len(tasks) > 1 and all(os.sched_getscheduler(t) == os.SCHED_IDLE for t in tasks)


def counter(client: httpx.Client, name: str, **labels: str) -> float:
    text = client.get("/metrics").text
    total = 0.0
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == name and all(sample.labels.get(k) == v for k, v in labels.items()):
                total += sample.value
    return total


def answered(client: httpx.Client) -> float:
    """Copies the shadow arms answered, as the server counts them."""
    return counter(client, "modelport_arm_requests_total", arm="shadow", outcome="ok")


def wait_until(check: Callable[[], bool], seconds: float = 30) -> None:
    deadline = time.monotonic() + seconds
    while not check():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.1)


def call(client: httpx.Client, request_id: str) -> None:
    response = client.post("/v2/models/echo/infer", json=ROW, headers={"x-request-id": request_id})
    assert response.status_code == 200, response.text
    assert response.headers["x-modelport-arm"] == "champion"
    assert response.json()["outputs"][0]["data"] == [6.0]  # the champion's, never the shadow's


def one_copy_answered(server: ServerProcess, client: httpx.Client) -> int:
    """The one worker's shadow process, once it has answered a first copy."""
    (shadow,) = shadow_processes(server)
    call(client, "before")
    wait_until(lambda: answered(client) == 1)
    return shadow


def test_shadow_copies_are_answered_by_an_idle_priority_process_and_logged(
    isolated_home: Path,
) -> None:
    deploy_with_shadow()
    with (
        serving(isolated_home, ["echo", "--workers", "2"], **ANSWER_ALWAYS) as server,
        httpx.Client(base_url=server.url, timeout=10) as client,
    ):
        shadows = shadow_processes(server)
        assert len(shadows) == 2  # one per worker, started with the deployment
        # Idle from the start, every thread (checked once the app has started its own).
        wait_until(lambda: all(idle(pid) for pid in shadows))
        for i in range(20):
            call(client, f"req-{i}")
        wait_until(lambda: answered(client) == 20)
        assert counter(client, "modelport_shadow_dropped_total") == 0
    for pid in shadows:  # stopped with the server, not left behind
        assert not Path(f"/proc/{pid}").exists() or "Z" in Path(f"/proc/{pid}/stat").read_text()
    rows = query(str(isolated_home / "predictions"), "echo").to_pylist()
    logged = {(r["request_id"], r["arm"], r["version"]) for r in rows}
    for i in range(20):
        assert (f"req-{i}", "champion", "1") in logged
        assert (f"req-{i}", "shadow", "2") in logged
    shadow_answers = {r["out_predictions"] for r in rows if r["arm"] == "shadow"}
    assert shadow_answers == {106.0}  # version 2's answer, logged beside the champion's


def test_a_killed_shadow_process_is_counted_and_replaced(isolated_home: Path) -> None:
    deploy_with_shadow()
    with (
        serving(isolated_home, ["echo"], **ANSWER_ALWAYS) as server,
        httpx.Client(base_url=server.url, timeout=10) as client,
    ):
        first = one_copy_answered(server, client)
        os.kill(first, signal.SIGKILL)
        # The caller never notices; the copies made while no shadow process runs are
        # dropped and counted, and a new process answers the later ones.
        deadline = time.monotonic() + 30
        i = 0
        while answered(client) < 2:
            assert time.monotonic() < deadline, "no new shadow process answered"
            call(client, f"after-{i}")
            i += 1
            time.sleep(0.05)
        assert counter(client, "modelport_shadow_dropped_total", arm="shadow") >= 1
        (second,) = shadow_processes(server)
        assert second != first
        wait_until(lambda: idle(second))
        assert "shadow process is gone" in server.stderr.read_text()


def test_a_paused_shadow_answers_what_it_was_sent_when_the_server_stops(
    isolated_home: Path,
) -> None:
    deploy_with_shadow()
    spinners: list[subprocess.Popen[bytes]] = []
    with (
        serving(isolated_home, ["echo"], MODELPORT_SERVE__SHADOW_BUSY_LIMIT="0.5") as server,
        httpx.Client(base_url=server.url, timeout=10) as client,
    ):
        (shadow,) = shadow_processes(server)
        wait_until(lambda: idle(shadow))
        try:
            # Every core busy: the shadow pauses; the copies wait for it.
            spinners = [
                subprocess.Popen([sys.executable, "-c", "while True: pass"])
                for _ in range(os.cpu_count() or 1)
            ]
            time.sleep(0.5)  # the gate's next reading sees them
            for i in range(10):
                call(client, f"paused-{i}")
            time.sleep(1.5)  # metrics are written every second
            answered = counter(client, "modelport_arm_requests_total", arm="shadow")
            assert answered == 0
        finally:
            for spinner in spinners:
                spinner.kill()
                spinner.wait()
        assert server.stop() == 0
    rows = query(str(isolated_home / "predictions"), "echo").to_pylist()
    shadowed = {r["request_id"] for r in rows if r["arm"] == "shadow"}
    assert shadowed == {f"paused-{i}" for i in range(10)}  # answered on the way out


def live_gauge_files(directory: Path, pid: int) -> list[Path]:
    """The live gauges' files ``pid`` left in the server's metrics directory."""
    return sorted(directory.glob(f"gauge_live*_{pid}.db"))


def test_a_killed_workers_shadow_process_exits_and_removes_its_live_gauges(
    isolated_home: Path,
) -> None:
    """Its socket ends with the worker: it answers what it holds, exits, and takes its
    live gauges (model ready, registry reachable, ...) out of the server's metrics,
    which the killed worker can no longer do."""
    deploy_with_shadow()
    with (
        serving(isolated_home, ["echo"], **ANSWER_ALWAYS) as server,
        httpx.Client(base_url=server.url, timeout=10) as client,
    ):
        shadow = one_copy_answered(server, client)
        environ = Path(f"/proc/{shadow}/environ").read_bytes().split(b"\0")
        (entry,) = [e for e in environ if e.startswith(b"PROMETHEUS_MULTIPROC_DIR=")]
        metrics = Path(entry.split(b"=", 1)[1].decode())
        assert live_gauge_files(metrics, shadow)  # it reports models ready, as a worker
        worker = int(Path(f"/proc/{shadow}/stat").read_text().rsplit(")", 1)[1].split()[1])
        os.kill(worker, signal.SIGKILL)

        def gone() -> bool:
            stat = Path(f"/proc/{shadow}/stat")
            return not stat.exists() or ") Z" in stat.read_text()

        wait_until(gone)
        assert live_gauge_files(metrics, shadow) == []
        # The server replaces the worker (and its shadow process) and goes on serving.
        # The worker started again serves the deployment as before (its champion answers,
        # a shadow process of its own gets the copies).
        wait_until(lambda: len(shadow_processes(server)) == 1 and gone(), 60)
        wait_until(lambda: client.get("/v2/health/ready").status_code == 200, 60)
        call(client, "after")
        wait_until(lambda: answered(client) == 2)
