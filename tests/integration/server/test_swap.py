"""Hot swap in process: the alias moves, the new version takes over without a failed
request, and a version that cannot load never replaces a working one."""

from __future__ import annotations

import asyncio
import json
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from starlette.testclient import TestClient

from modelport.bootstrap import build_registry, build_server_app
from modelport.config import Settings
from modelport.package.options import PackageOptions
from modelport.registry.service import RegistryService
from modelport.server.http.app import ServerApp
from modelport.serving.sources import parse_source
from testing_models import EchoModel

X = np.zeros((4, 3))
BODY = {"inputs": [{"name": "input", "shape": [1, 3], "datatype": "FP64", "data": [1, 2, 3]}]}


def register(registry: RegistryService, **config: object) -> int:
    options = PackageOptions(sample_input=X, flavor_options={"config": config})
    return registry.register(EchoModel(), "echo", options).version


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    # The server's own defences against a bad version are under test: no promotion
    # gate stops the bad version before it reaches the server.
    return Settings(home=tmp_path / "home", serve={"poll_interval_s": 0.1}, gates={"targets": []})


def echo_at_production(settings: Settings) -> ServerApp:
    """Version 1 of echo registered and in production, and an app serving echo@production."""
    with build_registry(settings) as registry:
        register(registry, offset=0)
        registry.promote("echo", 1, "production")
    return build_server_app(
        settings, [parse_source("echo@production")], worker_index=0, workers=1,
        on_ready=lambda: None, on_failed=lambda message: None,
    )  # fmt: skip


@pytest.fixture
def client(settings: Settings) -> Iterator[TestClient]:
    app = echo_at_production(settings)
    with TestClient(app.asgi) as test_client:
        yield test_client


def answer(client: TestClient) -> tuple[str, float]:
    response = client.post("/v2/models/echo/infer", json=BODY)
    assert response.status_code == 200, response.text
    body = response.json()
    return body["model_version"], body["outputs"][0]["data"][0]


def wait_for_version(client: TestClient, version: str, seconds: float = 10) -> None:
    deadline = time.monotonic() + seconds
    while client.get("/v2/models/echo").json()["versions"] != [version]:
        assert time.monotonic() < deadline, f"version {version} was never served"
        time.sleep(0.05)


def test_moving_the_alias_swaps_the_version_without_failing_a_request(
    client: TestClient, settings: Settings
) -> None:
    assert answer(client) == ("1", 6.0)
    answers: list[tuple[str, float]] = []
    stop = threading.Event()

    def load() -> None:  # steady traffic during the swap
        while not stop.is_set():
            answers.append(answer(client))

    traffic = threading.Thread(target=load)
    traffic.start()
    try:
        with build_registry(settings) as registry:
            register(registry, offset=100)
            registry.promote("echo", 2, "production")
        wait_for_version(client, "2")
        time.sleep(0.2)
    finally:
        stop.set()
        traffic.join(10)
    assert set(answers) <= {("1", 6.0), ("2", 106.0)}  # each answer is wholly one version's
    assert ("2", 106.0) in answers
    assert answer(client) == ("2", 106.0)
    assert client.get("/v2/models/echo/versions/1").status_code == 404
    assert client.get("/v2/models/echo/versions/2").status_code == 200


def test_a_version_that_cannot_load_never_replaces_the_working_one(
    client: TestClient, settings: Settings
) -> None:
    with build_registry(settings) as registry:
        register(registry, offset=50)
        stored = registry.artifacts.local_path(registry.get_version("echo", 2).artifact_key)
        target = stored / "model" / "code" / "testing_models.py"
        target.write_text(target.read_text() + "\n# tampered\n")  # now fails its digest
        registry.promote("echo", 2, "production")
    deadline = time.monotonic() + 10
    while "failed" not in client.get("/metrics").text.split('kind="swap"')[-1][:40]:
        assert time.monotonic() < deadline, "the failed swap was never reported"
        time.sleep(0.05)
    assert answer(client) == ("1", 6.0)
    assert client.get("/v2/health/ready").status_code == 200
    # Moving the alias on to a good version swaps again.
    with build_registry(settings) as registry:
        register(registry, offset=7)
        registry.promote("echo", 3, "production")
    wait_for_version(client, "3")
    assert answer(client) == ("3", 13.0)


def test_a_request_caught_half_way_by_a_swap_finishes_on_its_version(
    settings: Settings,
) -> None:
    # The request picks version 1, then its body is slow to arrive; meanwhile the alias
    # moves and version 2 takes over. Version 1 must stay until that request is done.
    app = echo_at_production(settings)
    runtime = app.context.runtime

    async def scenario() -> tuple[int, dict[str, object]]:
        lifespan_events: asyncio.Queue[dict[str, object]] = asyncio.Queue()
        await lifespan_events.put({"type": "lifespan.startup"})
        lifespan_sent: list[dict[str, object]] = []

        async def lifespan_send(message: dict[str, object]) -> None:
            lifespan_sent.append(message)

        lifespan = asyncio.create_task(
            app.asgi({"type": "lifespan"}, lifespan_events.get, lifespan_send)
        )
        while not lifespan_sent:
            await asyncio.sleep(0.01)
        assert lifespan_sent[0]["type"] == "lifespan.startup.complete", lifespan_sent

        body_arrives = asyncio.Event()
        sent: list[dict[str, object]] = []

        async def receive() -> dict[str, object]:
            await body_arrives.wait()
            return {"type": "http.request", "body": json.dumps(BODY).encode(), "more_body": False}

        async def send(message: dict[str, object]) -> None:
            sent.append(message)

        scope = {
            "type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1",
            "method": "POST", "scheme": "http", "path": "/v2/models/echo/infer",
            "raw_path": b"/v2/models/echo/infer", "query_string": b"", "root_path": "",
            "headers": [(b"content-type", b"application/json")],
            "client": ("127.0.0.1", 1), "server": ("127.0.0.1", 80),
        }  # fmt: skip
        request = asyncio.create_task(app.asgi(scope, receive, send))
        await asyncio.sleep(0.1)  # the request has picked version 1 and waits for its body
        with build_registry(settings) as registry:
            register(registry, offset=100)
            registry.promote("echo", 2, "production")
        await runtime.refresh()
        assert runtime.get("echo").version == 2  # the swap happened under the request
        body_arrives.set()
        await asyncio.wait_for(request, 10)
        await lifespan_events.put({"type": "lifespan.shutdown"})
        await asyncio.wait_for(lifespan, 10)
        status = next(m["status"] for m in sent if m["type"] == "http.response.start")
        payload = b"".join(m.get("body", b"") for m in sent if m["type"] == "http.response.body")
        return int(status), json.loads(payload)

    status, answer_body = asyncio.run(scenario())
    assert status == 200, answer_body
    assert answer_body["model_version"] == "1"
    assert answer_body["outputs"][0]["data"][0] == 6.0  # type: ignore[index]
