"""The server's process model: ``modelport serve`` as a real process tree.

The supervisor runs as ``modelport serve`` (through the CLI's ``main``) with the tiny
app of ``tiny_app.py`` in its workers, on a free port of 127.0.0.1. Every wait has a
timeout, and every process is stopped by its pid when a test ends.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import signal
import socket
import sys
import threading
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest

from modelport.cli.serve import build_settings
from modelport.errors import InvalidArgumentError
from modelport.server.http.connections import ConnectionRecycler
from modelport.server.process.logs import JsonFormatter
from testing_supervisor import (
    START_TIMEOUT_S,
    Server,
    get_pid,
    launch,
    read_line,
    refused,
    serving,
    stop,
)


def test_requests_on_one_connection_reach_every_worker(tmp_path: Path) -> None:
    with serving(
        tmp_path, "--workers", "2", MODELPORT_SERVE__MAX_REQUESTS_PER_CONNECTION="10"
    ) as server:
        pids: Counter[int] = Counter()
        closes = 0
        with httpx.Client(base_url=server.url, timeout=5) as client:
            for _ in range(400):
                response = client.get("/pid")
                assert response.status_code == 200
                pids[int(response.json())] += 1
                closes += response.headers.get("connection") == "close"
        server.seen_pids.update(pids)
        assert closes == 40  # every 10th response closes the connection
        assert len(pids) == 2, pids
        assert server.process.poll() is None


def test_a_crashed_worker_is_replaced_while_the_others_answer(tmp_path: Path) -> None:
    with serving(tmp_path, "--workers", "2") as server:
        outcomes: Counter[str] = Counter()
        pause, idle, done = threading.Event(), threading.Event(), threading.Event()

        def background() -> None:
            # A new connection per request: each one may go to any worker.
            limits = httpx.Limits(max_keepalive_connections=0)
            with httpx.Client(base_url=server.url, timeout=5, limits=limits) as client:
                while not done.is_set():
                    if pause.is_set():
                        idle.set()
                        time.sleep(0.01)
                        continue
                    idle.clear()
                    try:
                        get_pid(client, server)
                        outcomes["ok"] += 1
                    except httpx.HTTPError as exc:
                        outcomes[f"failed: {exc!r}"] += 1
                    time.sleep(0.005)

        with ThreadPoolExecutor(1) as pool:
            future = pool.submit(background)
            deadline = time.monotonic() + 10
            while len(server.seen_pids) < 2 and time.monotonic() < deadline:
                time.sleep(0.05)
            before = set(server.seen_pids)
            assert len(before) == 2

            # Nothing of ours in flight on the crashing worker: its own requests would
            # fail with it, which is the expected cost of a crash.
            pause.set()
            assert idle.wait(5)
            with pytest.raises(httpx.TransportError):
                httpx.get(f"{server.url}/crash", timeout=5)
            pause.clear()

            deadline = time.monotonic() + 15
            while not server.seen_pids - before and time.monotonic() < deadline:
                time.sleep(0.05)
            time.sleep(0.3)  # keep answering after the replacement too
            done.set()
            future.result(timeout=10)

        replacement = server.seen_pids - before
        assert len(replacement) == 1, (server.seen_pids, server.stderr())
        assert set(outcomes) == {"ok"}, outcomes
        assert outcomes["ok"] > 20

        server.process.send_signal(signal.SIGTERM)
        assert server.wait(15) == 0
        crashed = [
            json.loads(line)
            for line in server.stderr().splitlines()
            if '"exit_code"' in line and "restarting" in line
        ]
        assert len(crashed) == 1, server.stderr()
        assert crashed[0]["exit_code"] == 1
        assert crashed[0]["worker_pid"] in before
        assert f"pid {crashed[0]['worker_pid']}) exited with code 1" in crashed[0]["message"]


def children(pid: int) -> set[int]:
    """The live child processes of ``pid``."""
    text = Path(f"/proc/{pid}/task/{pid}/children").read_text()
    return {child for child in map(int, text.split()) if running(child)}


def wait_for_children(server: Server, count: int) -> set[int]:
    deadline = time.monotonic() + 20
    while len(pids := children(server.process.pid)) != count:
        assert time.monotonic() < deadline, (pids, server.stderr())
        time.sleep(0.05)
    server.seen_pids.update(pids)
    return pids


def test_a_spare_worker_waits_and_replaces_a_crashed_one_at_once(tmp_path: Path) -> None:
    # A new connection for each request: each may land on either worker.
    limits = httpx.Limits(max_keepalive_connections=0)
    with (
        serving(tmp_path, "--workers", "2") as server,
        httpx.Client(base_url=server.url, timeout=5, limits=limits) as client,
    ):
        before = wait_for_children(server, 3)  # two workers and the spare
        workers = {get_pid(client, server) for _ in range(100)}
        assert len(workers) == 2
        (spare,) = before - workers
        with pytest.raises(httpx.TransportError):
            httpx.get(f"{server.url}/crash", timeout=5)
        deadline = time.monotonic() + 15
        pid = 0
        while pid != spare:  # the spare serves in place of the crashed one
            assert time.monotonic() < deadline, server.stderr()
            # A connection the kernel queued for the crashed worker is reset (its cost).
            with contextlib.suppress(httpx.TransportError):
                pid = get_pid(client, server)
        after = wait_for_children(server, 3)  # and a new spare waits
        assert len(after - before) == 1
        crashed = next(line for line in server.stderr().splitlines() if "restarting" in line)
        assert json.loads(crashed)["message"].endswith("; restarting it now")


def test_without_a_spare_worker_there_are_only_the_workers(tmp_path: Path) -> None:
    with serving(tmp_path, "--workers", "2", MODELPORT_SERVE__SPARE_WORKER="false") as server:
        assert len(wait_for_children(server, 2)) == 2
        time.sleep(1)  # a spare would have been spawned by now
        assert len(children(server.process.pid)) == 2


def test_sigterm_drains_in_flight_requests_and_refuses_new_ones(tmp_path: Path) -> None:
    with serving(tmp_path, "--workers", "2", "--drain-timeout", "10") as server:
        with httpx.Client(base_url=server.url, timeout=5) as client:
            assert client.get("/ready").status_code == 200
            server.seen_pids.update({get_pid(client, server) for _ in range(20)})

        def slow() -> httpx.Response:
            return httpx.get(f"{server.url}/slow", params={"s": "2"}, timeout=15)

        with ThreadPoolExecutor(5) as pool:
            futures = [pool.submit(slow) for _ in range(5)]
            time.sleep(0.5)
            signalled = time.monotonic()
            server.process.send_signal(signal.SIGTERM)

            # While the five requests are still running, new connections are refused.
            deadline = signalled + 1.2
            while not refused(server.port) and time.monotonic() < deadline:
                time.sleep(0.05)
            assert refused(server.port)
            assert not any(future.done() for future in futures)

            responses = [future.result(timeout=15) for future in futures]

        assert [response.status_code for response in responses] == [200] * 5
        # Readiness turned 503 while they were in flight: the flag /ready reports was set
        # by the drain before they finished. (uvicorn closes idle keep-alive connections
        # as the drain starts, so /ready cannot be asked on an old connection.)
        assert all(response.json()["draining"] for response in responses)
        assert server.wait(10) == 0
        assert time.monotonic() - signalled < 6  # the requests took 1.5 s; the timeout is 10
        assert refused(server.port)
        for pid in server.seen_pids:  # the workers are gone (reaped by the supervisor)
            with pytest.raises(ProcessLookupError):
                os.kill(pid, 0)
        assert "Traceback" not in server.stderr()


def test_the_drain_is_bounded_by_its_timeout(tmp_path: Path) -> None:
    with (
        serving(tmp_path, "--workers", "1", "--drain-timeout", "1") as server,
        ThreadPoolExecutor(1) as pool,
    ):
        future = pool.submit(httpx.get, f"{server.url}/slow", params={"s": "30"}, timeout=30)
        time.sleep(0.5)
        signalled = time.monotonic()
        server.process.send_signal(signal.SIGTERM)
        assert server.wait(10) == 0
        assert time.monotonic() - signalled < 4
        try:
            response = future.result(timeout=10)
        except httpx.TransportError:
            return
        assert response.status_code in (500, 503)  # cut off by uvicorn (500) or the app


def test_a_second_ctrl_c_stops_at_once(tmp_path: Path) -> None:
    with (
        serving(tmp_path, "--workers", "2", "--drain-timeout", "30") as server,
        ThreadPoolExecutor(1) as pool,
    ):
        future = pool.submit(httpx.get, f"{server.url}/slow", params={"s": "30"}, timeout=30)
        time.sleep(0.5)
        signalled = time.monotonic()
        server.process.send_signal(signal.SIGINT)
        time.sleep(0.5)
        assert server.process.poll() is None  # draining: waits for the slow request
        server.process.send_signal(signal.SIGINT)
        assert server.wait(10) == 130
        assert time.monotonic() - signalled < 4
        with pytest.raises(httpx.TransportError):
            future.result(timeout=10)


def running(pid: int) -> bool:
    """True while ``pid`` exists and is not a zombie."""
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except FileNotFoundError:
        return False
    return "\nState:\tZ" not in status


def test_workers_drain_and_exit_when_the_supervisor_is_killed(tmp_path: Path) -> None:
    with serving(tmp_path, "--workers", "2", "--drain-timeout", "5") as server:
        with httpx.Client(base_url=server.url, timeout=5) as client:
            deadline = time.monotonic() + 10
            while len(server.seen_pids) < 2 and time.monotonic() < deadline:
                get_pid(client, server)
        assert len(server.seen_pids) == 2
        environ = Path(f"/proc/{min(server.seen_pids)}/environ").read_bytes().split(b"\0")
        metrics = next(v for v in environ if v.startswith(b"PROMETHEUS_MULTIPROC_DIR="))
        private = Path(metrics.partition(b"=")[2].decode()).parent
        assert private.is_dir()
        server.process.kill()
        server.wait(5)
        deadline = time.monotonic() + 10
        while any(running(pid) for pid in server.seen_pids) and time.monotonic() < deadline:
            time.sleep(0.1)
        assert not any(running(pid) for pid in server.seen_pids)
        assert not private.exists()  # the spec holds settings: not left behind


def test_a_worker_that_cannot_load_its_model_fails_the_start(tmp_path: Path) -> None:
    server = launch(tmp_path, "--workers", "2", factory="tiny_app:build_failing")
    try:
        assert server.wait(START_TIMEOUT_S) == 1
        assert read_line(server.process, 5) == ""  # nothing on stdout
        assert server.stderr().splitlines() == ["error: model 'ghost' does not exist"]
    finally:
        stop(server)


def test_a_port_in_use_is_one_error_line(tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        server = launch(tmp_path, "--port", str(port))
        try:
            assert server.wait(START_TIMEOUT_S) == 1
            assert server.stderr().splitlines() == [
                f"error: cannot listen on 127.0.0.1:{port}: Address already in use"
            ]
        finally:
            stop(server)


def test_options_override_the_environment_and_the_config_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("MODELPORT_CONFIG", raising=False)
    config = tmp_path / "modelport.toml"
    config.write_text("[serve]\nworkers = 3\nport = 9000\n[serve.batching]\nmax_queue = 7\n")
    monkeypatch.setenv("MODELPORT_SERVE__PORT", "9100")
    monkeypatch.setenv("MODELPORT_SERVE__DRAIN_TIMEOUT_S", "5")
    settings = build_settings(config, port=9200, max_batch_size=8, accelerate=False)
    serve = settings.serve
    assert (serve.port, serve.workers, serve.drain_timeout_s) == (9200, 3, 5.0)
    assert (serve.batching.max_batch_size, serve.batching.max_queue) == (8, 7)
    assert serve.accelerate is False
    assert build_settings(config).serve.port == 9100

    with pytest.raises(InvalidArgumentError, match=r"serve\.workers \(--workers, "):
        build_settings(None, workers=0)


def test_the_recycler_closes_a_connection_after_its_last_request() -> None:
    asyncio.run(check_the_recycler())


async def check_the_recycler() -> None:
    sent: list[dict[str, object]] = []

    async def app(scope: object, receive: object, send: object) -> None:
        assert callable(send)
        await send({"type": "http.response.start", "status": 200, "headers": []})

    async def send(message: dict[str, object]) -> None:
        sent.append(message)

    async def receive() -> dict[str, object]:
        return {"type": "http.disconnect"}

    recycler = ConnectionRecycler(app, 3, max_tracked=2)
    scope = {"type": "http", "http_version": "1.1", "client": ("127.0.0.1", 5000)}
    for _ in range(3):
        await recycler(scope, receive, send)
    assert [message["headers"] for message in sent] == [[], [], [(b"connection", b"close")]]
    for port in (1, 2, 3):  # memory stays bounded
        await recycler({**scope, "client": ("127.0.0.1", port)}, receive, send)
    assert recycler.tracked == 2


def test_json_logs_are_one_object_per_line_with_the_extra_fields() -> None:
    formatter = JsonFormatter({"pid": 42, "worker": 1})
    record = logging.LogRecord(
        "modelport.server", logging.WARNING, __file__, 1, "slow %s\nrequest", ("infer",), None
    )
    record.request_id = "r-1"
    record.model = "churn"
    record.latency = object()  # not JSON: written with str()
    try:
        raise ValueError("boom")
    except ValueError:
        record.exc_info = sys.exc_info()
    line = formatter.format(record)
    assert "\n" not in line
    data = json.loads(line)
    assert data["level"] == "WARNING"
    assert data["logger"] == "modelport.server"
    assert data["message"] == "slow infer\nrequest"
    assert (data["pid"], data["worker"]) == (42, 1)
    assert (data["request_id"], data["model"]) == ("r-1", "churn")
    assert data["latency"].startswith("<object object")
    assert "ValueError: boom" in data["exception"]
    assert data["time"].endswith("Z")
    assert "args" not in data and "msg" not in data
