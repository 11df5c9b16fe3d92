"""The attack matrix's registry and servers (OWASP API Security Top 10, 2023).

One small registry per session (SQLite and local artifacts): ``echo`` (a fast model),
``slow`` (0.3 s per call), ``garbage`` (answers nonsense) and ``hang`` (2 s per call),
the first two in production. Tests start the server app in process through
``serve_app`` (Starlette's TestClient), or use ``real_server``: ``modelport serve`` as a
process on loopback, for what only real sockets show (headers the HTTP server adds,
timeouts on bodies).

The keyed registry (``keyed``: two small models and the keys of
``testing_security.KEYS``) and a server checking its keys (``keyed_client``) serve the
authentication and authorization modules (API1, API2, API5).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import numpy as np
import pytest
from starlette.testclient import TestClient

from modelport.bootstrap import build_registry, build_server_app
from modelport.config import ServeSettings, Settings
from modelport.package.options import PackageOptions
from modelport.serving.sources import parse_source
from testing_models import EchoModel, GarbageModel
from testing_process import ServerProcess, serving
from testing_security import KeyedCatalog, build_keyed_catalog, keyed_server
from testing_server import Catalog, Served, ServeFn

BODY_TIMEOUT_S = 1


@pytest.fixture(scope="session")
def attack_catalog(tmp_path_factory: pytest.TempPathFactory) -> Catalog:
    """The session's registry (see the module docstring)."""
    home = tmp_path_factory.mktemp("attack-registry")
    settings = Settings(home=home, user="tester")
    x = np.random.default_rng(5).normal(size=(20, 3))
    with build_registry(settings) as registry:
        for name, config in (("echo", {}), ("slow", {"delay": 0.3})):
            options = PackageOptions(sample_input=x, flavor_options={"config": config})
            version = registry.register(EchoModel(), name, options)
            registry.promote(name, version.version, "production")
        registry.register(EchoModel(), "hang", PackageOptions(
            sample_input=x, flavor_options={"config": {"delay": 2.0}}
        ))  # fmt: skip
        registry.register(GarbageModel(), "garbage", PackageOptions(sample_input=x))
    return Catalog(settings, {}, {"tensor": x})


@pytest.fixture
def serve_app(attack_catalog: Catalog) -> Iterator[ServeFn]:
    """``serve_app(["echo@production"], max_body_bytes=4096)`` -> a running ``Served``
    (settings of ``[serve]`` as keywords); stopped after the test."""
    stack: list[Any] = []

    @contextmanager
    def running(models: list[str], **serve_settings: Any) -> Iterator[Served]:
        serve = ServeSettings.model_validate(
            {**attack_catalog.settings.serve.model_dump(), **serve_settings}
        )
        settings = attack_catalog.settings.model_copy(update={"serve": serve})
        app = build_server_app(
            settings, [parse_source(m) for m in models], worker_index=0, workers=1,
            on_ready=lambda: None, on_failed=lambda message: None,
        )  # fmt: skip
        with TestClient(app.asgi, raise_server_exceptions=False) as client:
            yield Served(client, app, {}, attack_catalog.data)

    def start(models: list[str], **serve_settings: Any) -> Served:
        context = running(models, **serve_settings)
        served = context.__enter__()
        stack.append(context)
        return served

    yield start
    for context in reversed(stack):
        context.__exit__(None, None, None)


@pytest.fixture
def body_timeout_s() -> float:
    """The body timeout ``real_server`` runs with."""
    return BODY_TIMEOUT_S


@pytest.fixture(scope="session")
def real_server(attack_catalog: Catalog) -> Iterator[ServerProcess]:
    """``modelport serve echo@production`` on loopback, body timeout ``BODY_TIMEOUT_S``."""
    env = {"MODELPORT_SERVE__CONNECTIONS__BODY_TIMEOUT_S": str(BODY_TIMEOUT_S)}
    with serving(attack_catalog.settings.home, ["echo@production"], **env) as server:
        yield server


@pytest.fixture(scope="session")
def keyed(tmp_path_factory: pytest.TempPathFactory) -> KeyedCatalog:
    """The registry with the models alpha and beta and one key per kind of holder."""
    return build_keyed_catalog(tmp_path_factory.mktemp("keyed-registry"))


@pytest.fixture(scope="module")
def keyed_client(keyed: KeyedCatalog) -> Iterator[TestClient]:
    """A server of alpha and beta that requires keys, shared by a module's tests."""
    with keyed_server(keyed.settings) as client:
        yield client
