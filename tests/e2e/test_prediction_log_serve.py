"""The prediction log's guarantees with ``modelport serve`` as real processes: a clean
stop (SIGTERM, Ctrl+C) loses nothing, a killed worker loses at most its last flush
interval, and a full spool's (or writer queue's) drops reach Prometheus and the log,
summed over workers."""

from __future__ import annotations

import os
import re
import signal
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import numpy as np
import pytest

import modelport
from modelport.monitoring.prediction_log import query
from modelport.package.options import PackageOptions
from testing_models import EchoModel
from testing_process import serving

pytestmark = pytest.mark.timeout(180)

X = np.zeros((4, 3))
# How late a worker's writer thread may run on a loaded machine, beyond its interval.
SCHEDULING_SLACK_S = 1.0


def register_echo() -> None:
    with modelport.connect() as registry:
        registry.register(EchoModel(), "echo", PackageOptions(sample_input=X))


def rows(n: int) -> dict[str, object]:
    data = np.arange(n * 3, dtype=float).tolist()
    return {"inputs": [{"name": "input", "shape": [n, 3], "datatype": "FP64", "data": data}]}


def logged_ids(home: Path) -> list[str]:
    return query(str(home / "predictions"), "echo").column("prediction_id").to_pylist()


def send(url: str, count: int, tag: str) -> list[str]:
    """``count`` 2-row requests from 4 clients; the prediction ids the server returned."""

    def one(i: int) -> list[str]:
        response = httpx.post(
            f"{url}/v2/models/echo/infer",
            json=rows(2),
            headers={"x-request-id": f"{tag}{i}"},
            timeout=30,
        )
        assert response.status_code == 200, response.text
        return response.headers["x-modelport-prediction-ids"].split(",")

    with ThreadPoolExecutor(4) as pool:
        return [pid for ids in pool.map(one, range(count)) for pid in ids]


@pytest.mark.parametrize("stop_signal", [signal.SIGTERM, signal.SIGINT])
def test_a_clean_stop_loses_no_logged_row(isolated_home: Path, stop_signal: int) -> None:
    register_echo()
    # A long interval: only the shutdown's flush can have written these rows.
    env = {"MODELPORT_PREDICTION_LOG__FLUSH_INTERVAL_S": "60"}
    with serving(isolated_home, ["echo", "--workers", "2"], **env) as server:
        returned = send(server.url, 200, "c")
        assert logged_ids(isolated_home) == []
        server.process.send_signal(stop_signal)
        assert server.process.wait(60) == 0
    assert sorted(logged_ids(isolated_home)) == sorted(returned)
    assert len(returned) == 400


def test_a_killed_worker_loses_at_most_its_last_interval(isolated_home: Path) -> None:
    register_echo()
    interval = 0.2
    env = {"MODELPORT_PREDICTION_LOG__FLUSH_INTERVAL_S": str(interval)}
    answered: list[tuple[float, list[str]]] = []
    stop = threading.Event()
    with serving(isolated_home, ["echo"], **env) as server:

        def load() -> None:
            with httpx.Client(base_url=server.url, timeout=10) as client:
                i = 0
                while not stop.is_set():
                    try:
                        response = client.post(
                            "/v2/models/echo/infer", json=rows(2), headers={"x-request-id": f"k{i}"}
                        )
                    except httpx.HTTPError:
                        return  # the worker is gone
                    if response.status_code == 200:
                        ids = response.headers["x-modelport-prediction-ids"].split(",")
                        answered.append((time.time(), ids))
                    i += 1

        worker = threading.Thread(target=load)
        worker.start()
        try:
            segments = isolated_home / "predictions" / "echo"
            deadline = time.monotonic() + 30
            while not list(segments.glob("*/*/*.parquet")) and time.monotonic() < deadline:
                time.sleep(0.05)
            files = list(segments.glob("*/*/*.parquet"))
            assert files, "the worker never flushed"
            time.sleep(3.0)  # many more intervals of rows
            pid = int(files[0].name.split("-")[0])  # segments are named <pid>-<token>-<seq>
            killed_at = time.time()
            os.kill(pid, signal.SIGKILL)
        finally:
            stop.set()
            worker.join(30)
    logged = set(logged_ids(isolated_home))
    old_enough = [
        pid for at, ids in answered if at < killed_at - interval - SCHEDULING_SLACK_S for pid in ids
    ]
    assert len(old_enough) > 20
    missing = [pid for pid in old_enough if pid not in logged]
    assert not missing, missing[:5]


# A full spool (a few hundred bytes: 2 or 3 of these requests) or, with spool = false, a
# full queue of each worker's writer thread (5 rows: 2 of these requests).
FULL = {
    "spool": {"MODELPORT_PREDICTION_LOG__SPOOL_MAX_MB": "0.0003"},
    "thread": {
        "MODELPORT_PREDICTION_LOG__SPOOL": "false",
        "MODELPORT_PREDICTION_LOG__MAX_QUEUE_ROWS": "5",
    },
}


@pytest.mark.parametrize("where", sorted(FULL))
def test_overflow_is_counted_in_prometheus_and_logged(isolated_home: Path, where: str) -> None:
    register_echo()
    env = {"MODELPORT_PREDICTION_LOG__FLUSH_INTERVAL_S": "60", **FULL[where]}
    with serving(isolated_home, ["echo", "--workers", "2"], **env) as server:
        send(server.url, 40, "o")  # 80 rows; each worker keeps a few
        time.sleep(1.5)  # the workers flush their metrics every second
        metrics = httpx.get(f"{server.url}/metrics").text
        found = re.search(
            r'^modelport_prediction_log_dropped_total\{model="echo"\} (\S+)$', metrics, re.M
        )
        assert found is not None, metrics
        dropped = float(found.group(1))
        queued = re.search(r"^modelport_prediction_log_queue_rows (\S+)$", metrics, re.M)
        assert queued is not None and float(queued.group(1)) > 0
        assert server.stop() == 0
        stderr = server.stderr.read_text()
    kept = len(logged_ids(isolated_home))
    assert 4 <= kept <= 24  # a few requests per worker; the rest dropped
    assert kept + dropped == 80
    assert "Prediction log dropped" in stderr
