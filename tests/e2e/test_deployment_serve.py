"""``modelport serve NAME`` of a registry deployment as real processes: no request fails
while the deployment changes under load, and replicas sharing one PostgreSQL registry
both follow a change."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import numpy as np
import pytest

import modelport
from modelport.package.options import PackageOptions
from modelport.registry.service import RegistryService
from testing_databases import fresh_postgres_schema, reachable_postgres_url
from testing_models import EchoModel
from testing_process import serving

X = np.zeros((4, 3))
ROW = {"inputs": [{"name": "input", "shape": [1, 3], "datatype": "FP64", "data": [1, 2, 3]}]}
# Version n answers 100 * (n - 1) + 6 to ROW: every answer says which version gave it.
ANSWERS = {"1": 6.0, "2": 106.0, "3": 206.0}


def register_versions(registry: RegistryService, count: int) -> None:
    for n in range(count):
        options = PackageOptions(sample_input=X, flavor_options={"config": {"offset": 100 * n}})
        registry.register(EchoModel(), "echo", options)


Answer = tuple[int, str, str, float]


def infer(client: httpx.Client) -> Answer:
    response = client.post("/v2/models/echo/infer", json=ROW)
    if response.status_code != 200:
        return response.status_code, response.text, "", 0.0
    body = response.json()
    assert body["model_version"] == response.headers["x-modelport-version"]
    arm = response.headers["x-modelport-arm"]
    return 200, body["model_version"], arm, body["outputs"][0]["data"][0]


def wait_until(check: Callable[[], bool], seconds: float = 30) -> None:
    deadline = time.monotonic() + seconds
    while not check():
        assert time.monotonic() < deadline, "the servers never followed the change"
        time.sleep(0.1)


def test_no_request_fails_while_the_deployment_changes_under_load(isolated_home: Path) -> None:
    with modelport.connect() as registry:
        register_versions(registry, 3)
        registry.create_deployment("echo", 1)
    changes: list[Callable[[RegistryService], object]] = [
        lambda r: r.deploy_canary("echo", 2, 20),
        lambda r: r.set_arm_weight("echo", "canary", 50),
        lambda r: r.deploy_shadow("echo", 3, 1.0),
        lambda r: r.promote_deployment("echo", skip_gates="load test"),
        lambda r: r.rollback_deployment("echo"),
        lambda r: r.deploy_canary("echo", 3, 30),
        lambda r: r.promote_deployment("echo", skip_gates="load test"),
    ]
    answers: list[Answer] = []
    stop = threading.Event()
    args = ["echo", "--workers", "2"]
    with serving(isolated_home, args, MODELPORT_SERVE__POLL_INTERVAL_S="0.2") as server:

        def load() -> None:
            with httpx.Client(base_url=server.url, timeout=10) as client:
                while not stop.is_set():
                    answers.append(infer(client))

        with ThreadPoolExecutor(4) as pool, modelport.connect() as registry:
            for _ in range(4):
                pool.submit(load)
            for change in changes:
                time.sleep(1.0)
                change(registry)
            time.sleep(1.5)
            stop.set()
    failures = [a for a in answers if a[0] != 200]
    assert not failures, failures[:5]
    assert len(answers) > 100
    for _, version, _, value in answers:
        assert value == ANSWERS[version]  # the header's version is the one that answered
    arms = {(arm, version) for _, version, arm, _ in answers}
    assert {("champion", "1"), ("canary", "2"), ("champion", "2"), ("canary", "3")} <= arms
    assert ("shadow", "3") not in arms  # a shadow never answers a caller
    assert answers[-1][1:3] == ("3", "champion")


@pytest.fixture
def postgres_home(isolated_home: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    with fresh_postgres_schema(reachable_postgres_url()) as url:
        monkeypatch.setenv("MODELPORT_DATABASE_URL", url)
        yield isolated_home


def test_two_servers_sharing_a_postgres_registry_follow_a_deployment_change(
    postgres_home: Path,
) -> None:
    with modelport.connect() as registry:
        register_versions(registry, 2)
        registry.create_deployment("echo", 1)
    poll = {"MODELPORT_SERVE__POLL_INTERVAL_S": "0.2"}
    with (
        serving(postgres_home, ["echo"], **poll) as first,
        serving(postgres_home, ["echo"], **poll) as second,
        httpx.Client(base_url=first.url, timeout=10) as one,
        httpx.Client(base_url=second.url, timeout=10) as two,
    ):
        assert first.port != second.port
        assert infer(one)[1:3] == infer(two)[1:3] == ("1", "champion")
        with modelport.connect() as registry:
            registry.deploy_canary("echo", 2, 50)
        for client in (one, two):
            wait_until(answers_with(client, {("2", "canary")}, any_of=True))
        with modelport.connect() as registry:
            registry.promote_deployment("echo", skip_gates="replica test")
        for client in (one, two):
            wait_until(answers_with(client, {("2", "champion")}))


def answers_with(
    client: httpx.Client, wanted: set[tuple[str, str]], *, any_of: bool = False
) -> Callable[[], bool]:
    """A check: four answers all in ``wanted`` (or, ``any_of``, one of them in it)."""

    def check() -> bool:
        seen = {infer(client)[1:3] for _ in range(4)}
        return bool(seen & wanted) if any_of else seen <= wanted

    return check
