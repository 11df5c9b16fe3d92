"""A registry with the models the server tests serve, and servers built on it in process.

The registry (SQLite + local artifacts) is built once per session: registering
converts and verifies ONNX graphs, which takes a moment. Each test then starts its own
server app on it (loading is quick) and talks to it through Starlette's TestClient,
which runs the app's start-up and shutdown.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import numpy as np
import pandas as pd
import pytest
from starlette.testclient import TestClient

from modelport.bootstrap import build_registry, build_server_app
from modelport.config import ServeSettings, Settings
from modelport.package.options import PackageOptions
from modelport.serving.sources import parse_source
from testing_models import EchoModel
from testing_server import Catalog, Served, ServeFn


def _forest_data() -> tuple[pd.DataFrame, np.ndarray]:
    rng = np.random.default_rng(3)
    frame = pd.DataFrame(rng.normal(size=(400, 20)), columns=[f"f{i}" for i in range(20)])
    target = ((frame["f0"] + frame["f1"] * frame["f2"]) > 0).to_numpy().astype(int)
    return frame, target


@pytest.fixture(scope="session")
def catalog(
    tmp_path_factory: pytest.TempPathFactory,
    churn_model: Any,
    churn_data: tuple[pd.DataFrame, np.ndarray],
) -> Catalog:
    from sklearn.ensemble import RandomForestClassifier
    from sklearn.linear_model import LinearRegression

    home = tmp_path_factory.mktemp("server-registry")
    settings = Settings(home=home, user="tester")
    forest_x, forest_y = _forest_data()
    forest = RandomForestClassifier(n_estimators=20, random_state=0).fit(forest_x, forest_y)
    tensor_x = np.random.default_rng(4).normal(size=(50, 3))
    regressor = LinearRegression().fit(tensor_x, tensor_x @ [1.0, 2.0, 3.0])
    # pandas' default integer column labels; served natively, so the frame the model gets
    # is built by the server.
    unnamed_x = pd.DataFrame(tensor_x)
    unnamed = LinearRegression().fit(unnamed_x, tensor_x @ [3.0, 2.0, 1.0])
    churn_x, _ = churn_data
    with build_registry(settings) as registry:
        entries: list[tuple[str, Any, PackageOptions]] = [
            ("forest", forest, PackageOptions(sample_input=forest_x)),
            ("churn", churn_model, PackageOptions(sample_input=churn_x, accelerate=False)),
            ("regressor", regressor, PackageOptions(sample_input=tensor_x)),
            ("echo", EchoModel(), PackageOptions(sample_input=tensor_x)),
            ("unnamed", unnamed, PackageOptions(sample_input=unnamed_x, accelerate=False)),
        ]
        for name, model, options in entries:
            version = registry.register(model, name, options)
            registry.promote(name, version.version, "production")
        slow = PackageOptions(sample_input=tensor_x, flavor_options={"config": {"delay": 0.3}})
        registry.register(EchoModel(), "slow", slow)
        failing = PackageOptions(sample_input=tensor_x, flavor_options={"config": {"fail_on": 13}})
        registry.register(EchoModel(), "failing", failing)
    models = {"forest": forest, "churn": churn_model, "regressor": regressor, "unnamed": unnamed}
    data = {"forest": forest_x, "churn": churn_x, "tensor": tensor_x}
    return Catalog(settings, models, data)


@pytest.fixture
def serve(catalog: Catalog) -> Iterator[ServeFn]:
    """``serve(["forest@production"], max_queue=2, ...)`` -> a running ``Served``."""
    stack: list[Any] = []

    @contextmanager
    def running(models: list[str], **serve_settings: Any) -> Iterator[Served]:
        serve_settings = ServeSettings.model_validate(
            {**catalog.settings.serve.model_dump(), **serve_settings}
        )
        settings = catalog.settings.model_copy(update={"serve": serve_settings})
        failures: list[str] = []
        app = build_server_app(
            settings,
            [parse_source(m) for m in models],
            worker_index=0,
            workers=1,
            on_ready=lambda: None,
            on_failed=failures.append,
        )
        with TestClient(app.asgi) as client:
            yield Served(client, app, catalog.models, catalog.data)

    def start(models: list[str], **serve_settings: Any) -> Served:
        context = running(models, **serve_settings)
        served = context.__enter__()
        stack.append(context)
        return served

    yield start
    for context in reversed(stack):
        context.__exit__(None, None, None)


ALL_MODELS = ["forest@production", "churn@production", "regressor@production", "echo@production"]


@pytest.fixture
def server(serve: ServeFn) -> Served:
    """The four production models, default settings."""
    served: Served = serve(ALL_MODELS)
    return served
