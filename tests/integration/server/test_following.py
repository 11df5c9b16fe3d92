"""A server following an alias tells the truth: it refuses a swap that would break its
clients, says which version it serves, which one the alias wants and why they differ,
and keeps serving through a deleted alias or a registry outage."""

from __future__ import annotations

import gc
import logging
import time
import weakref
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy import make_url
from starlette.testclient import TestClient

from modelport.bootstrap import build_registry, build_server_app
from modelport.config import Settings
from modelport.package.options import PackageOptions
from modelport.registry.service import RegistryService
from modelport.serving.sources import parse_source
from testing_databases import fresh_postgres_schema, reachable_postgres_url
from testing_models import EchoModel
from testing_proxy import CuttableProxy

ROW = {"inputs": [{"name": "input", "shape": [1, 3], "datatype": "FP64", "data": [1, 2, 3]}]}
RUNTIME_LOGGER = "modelport.serving.runtime"


def register(registry: RegistryService, sample: Any = None, **config: object) -> int:
    options = PackageOptions(sample_input=sample, flavor_options={"config": config})
    return registry.register(EchoModel(), "echo", options).version


def serving(settings: Settings) -> TestClient:
    app = build_server_app(
        settings, [parse_source("echo@production")], worker_index=0, workers=1,
        on_ready=lambda: None, on_failed=lambda message: None,
    )  # fmt: skip
    return TestClient(app.asgi)


def echo_state(client: TestClient) -> dict[str, Any]:
    answer = client.get("/api/models").json()
    state: dict[str, Any] = answer["models"][0]
    state["registry"] = answer["registry"]
    return state


def wait_until(check: Callable[[], bool], seconds: float = 15) -> None:
    deadline = time.monotonic() + seconds
    while not check():
        assert time.monotonic() < deadline, "the server never got there"
        time.sleep(0.05)


def metric(client: TestClient, name: str, **labels: str) -> float:
    text = client.get("/metrics").text
    return sum(
        sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
        if sample.name == name and labels.items() <= sample.labels.items()
    )


def version_answering(client: TestClient) -> str:
    response = client.post("/v2/models/echo/infer", json=ROW)
    assert response.status_code == 200, response.text
    return str(response.json()["model_version"])


def warnings_about(caplog: pytest.LogCaptureFixture, text: str) -> list[str]:
    return [
        r.getMessage()
        for r in caplog.records
        if r.levelno == logging.WARNING and text in r.getMessage()
    ]


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    # The server's own defences against a bad version are under test: no promotion
    # gate stops the bad version before it reaches the server.
    return Settings(home=tmp_path / "home", serve={"poll_interval_s": 0.05}, gates={"targets": []})


@pytest.fixture
def registry(settings: Settings) -> Iterator[RegistryService]:
    with build_registry(settings) as registry:
        register(registry, np.zeros((4, 3)))
        registry.promote("echo", 1, "production")
        yield registry


# ----------------------------------------------------------------- signature changes


@pytest.mark.parametrize(
    ("new_sample", "expected"),
    [
        (None, "the new version has no signature"),
        (np.zeros((4, 4)), "input 'input' changes shape from [-1, 3] to [-1, 4]"),
        (np.zeros((4, 3), dtype=np.float32), "changes datatype from FP64 to FP32"),
    ],
    ids=["no signature", "wider input", "narrower type"],
)
def test_a_swap_that_would_break_clients_is_refused_and_said_so(
    settings: Settings,
    registry: RegistryService,
    caplog: pytest.LogCaptureFixture,
    new_sample: Any,
    expected: str,
) -> None:
    with serving(settings) as client:
        assert version_answering(client) == "1"
        caplog.set_level(logging.WARNING, RUNTIME_LOGGER)
        register(registry, new_sample)
        registry.promote("echo", 2, "production", force=new_sample is None)
        wait_until(lambda: echo_state(client)["stale"] is not None)
        time.sleep(0.5)  # ten more checks of the alias: the refusal is not logged again
        state = echo_state(client)
        assert version_answering(client) == "1"
        assert client.get("/v2/health/ready").status_code == 200
        assert (state["version"], state["wanted_version"]) == (1, 2)
        assert state["stale"]["reason"] == "swap_refused"
        assert expected in state["stale"]["detail"]
        assert state["stale"]["version"] == 2
        refusals = warnings_about(caplog, "is not served")
        assert len(refusals) == 1
        assert expected in refusals[0] and "allow_signature_change" in refusals[0]
        assert metric(client, "modelport_model_loads_total", kind="swap", result="refused") == 1
        assert metric(client, "modelport_model_stale", model="echo", reason="swap_refused") == 1
        assert metric(client, "modelport_model_wanted_version", model="echo") == 2
        assert metric(client, "modelport_model_ready", model="echo", version="1") == 1


def test_a_compatible_change_switches(settings: Settings, tmp_path: Path) -> None:
    with build_registry(settings) as registry:
        register(registry, np.zeros((4, 3), dtype=np.float32))
        registry.promote("echo", 1, "production")
        with serving(settings) as client:
            register(registry, np.zeros((4, 3)), offset=100)  # FP32 -> FP64 widens
            registry.promote("echo", 2, "production")
            wait_until(lambda: echo_state(client)["version"] == 2)
            state = echo_state(client)
            assert (state["wanted_version"], state["stale"]) == (2, None)
            assert metric(client, "modelport_model_stale", model="echo") == 0


def test_a_retired_version_is_freed(settings: Settings, registry: RegistryService) -> None:
    """What the server keeps per version (its metrics, drift feed and log target) must
    not keep a retired version alive: each swap would leak one."""
    app = build_server_app(
        settings, [parse_source("echo@production")], worker_index=0, workers=1,
        on_ready=lambda: None, on_failed=lambda message: None,
    )  # fmt: skip
    with TestClient(app.asgi) as client:
        assert version_answering(client) == "1"
        first = weakref.ref(app.context.runtime.routes()[0].current)
        register(registry, np.zeros((4, 3)), offset=100)
        registry.promote("echo", 2, "production")
        wait_until(lambda: version_answering(client) == "2")

        def freed() -> bool:
            gc.collect()
            return first() is None

        wait_until(freed)


def test_an_operator_may_allow_a_breaking_swap_for_one_model(
    tmp_path: Path, registry: RegistryService, settings: Settings
) -> None:
    serve = {"poll_interval_s": 0.05, "models": {"echo": {"allow_signature_change": True}}}
    allowed = Settings(home=settings.home, serve=serve)
    with serving(allowed) as client:
        register(registry, np.zeros((4, 4)))
        registry.promote("echo", 2, "production")
        wait_until(lambda: echo_state(client)["version"] == 2)
        assert echo_state(client)["stale"] is None
        response = client.post("/v2/models/echo/infer", json=ROW)
        assert response.status_code == 400  # what the operator agreed to break
        assert "[-1, 4]" in response.json()["error"]


def test_a_version_that_fails_to_load_is_shown_with_its_error(
    settings: Settings, registry: RegistryService
) -> None:
    with serving(settings) as client:
        register(registry, np.zeros((4, 3)), offset=50)
        stored = registry.artifacts.local_path(registry.get_version("echo", 2).artifact_key)
        code = stored / "model" / "code" / "testing_models.py"
        code.write_text(code.read_text() + "\n# tampered\n")  # now fails its digest
        registry.promote("echo", 2, "production")
        wait_until(lambda: echo_state(client)["stale"] is not None)
        state = echo_state(client)
        assert (state["version"], state["wanted_version"]) == (1, 2)
        assert state["stale"]["reason"] == "load_failed"
        assert "testing_models.py" in state["stale"]["detail"]  # the file that changed
        assert state["error"] is None  # the model is ready: error says why one is not
        register(registry, np.zeros((4, 3)), offset=7)  # the alias moves on: tried again
        registry.promote("echo", 3, "production")
        wait_until(lambda: echo_state(client)["version"] == 3)
        assert echo_state(client)["stale"] is None


# ------------------------------------------------------------------- deleted alias


def test_a_deleted_alias_keeps_serving_logs_once_and_recovers(
    settings: Settings, registry: RegistryService, caplog: pytest.LogCaptureFixture
) -> None:
    with serving(settings) as client:
        caplog.set_level(logging.WARNING, RUNTIME_LOGGER)
        registry.delete_alias("echo", "production")
        wait_until(lambda: echo_state(client)["stale"] is not None)
        time.sleep(1.0)  # checks go on, with back-off, quietly
        state = echo_state(client)
        assert state["stale"]["reason"] == "reference_missing"
        assert "modelport alias set echo production 1" in state["stale"]["detail"]
        assert version_answering(client) == "1"
        assert client.get("/v2/health/ready").status_code == 200
        assert len(warnings_about(caplog, "cannot be followed")) == 1
        registry.promote("echo", 1, "production")
        wait_until(lambda: echo_state(client)["stale"] is None)


# ----------------------------------------------------------------- registry outage


@pytest.fixture
def postgres_behind_proxy(settings: Settings) -> Iterator[tuple[Settings, CuttableProxy]]:
    """Settings whose database is the real PostgreSQL server reached through a proxy the
    test can cut, with echo version 1 in production."""
    with fresh_postgres_schema(reachable_postgres_url()) as direct_url:
        url = make_url(direct_url)
        proxy = CuttableProxy((url.host or "127.0.0.1", url.port or 5432))
        proxied = url.set(host="127.0.0.1", port=proxy.port).render_as_string(hide_password=False)
        through_proxy = settings.model_copy(update={"database_url": proxied})
        try:
            with build_registry(through_proxy.model_copy(update={"database_url": direct_url})) as r:
                register(r, np.zeros((4, 3)))
                r.promote("echo", 1, "production")
            yield through_proxy, proxy
        finally:
            proxy.close()


@pytest.mark.postgres
def test_a_registry_outage_keeps_serving_and_says_so(
    postgres_behind_proxy: tuple[Settings, CuttableProxy], caplog: pytest.LogCaptureFixture
) -> None:
    settings, proxy = postgres_behind_proxy
    with serving(settings) as client:
        assert echo_state(client)["registry"]["reachable"] is True
        caplog.set_level(logging.INFO, RUNTIME_LOGGER)
        proxy.cut()
        wait_until(lambda: echo_state(client)["registry"]["reachable"] is False)
        time.sleep(0.5)
        state = echo_state(client)
        assert state["registry"]["unreachable_since"] is not None
        assert state["registry"]["error"]
        assert state["stale"]["reason"] == "registry_unreachable"
        assert (state["version"], state["wanted_version"]) == (1, 1)
        assert version_answering(client) == "1"
        assert client.get("/v2/health/ready").status_code == 200  # a healthy replica stays
        assert metric(client, "modelport_registry_reachable") == 0
        assert len(warnings_about(caplog, "cannot reach the registry")) == 1
        proxy.restore()
        wait_until(lambda: echo_state(client)["registry"]["reachable"] is True)
        wait_until(lambda: echo_state(client)["stale"] is None)
        assert metric(client, "modelport_registry_reachable") == 1
        assert any("answers again" in r.getMessage() for r in caplog.records)
