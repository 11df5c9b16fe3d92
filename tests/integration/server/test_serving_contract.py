"""The serving contract: every request reaches a model through the route's target, which
wrappers compose around the served version; what answered is in the result."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import numpy as np
import pytest
from prometheus_client.parser import text_string_to_metric_families

from modelport.bootstrap import build_registry
from modelport.config import BatchingSettings
from modelport.errors import InvalidInputError
from modelport.flavors.catalog import default_catalog
from modelport.serving.batch_observer import NullObserver
from modelport.serving.binding import ArrayInputs, TableInputs
from modelport.serving.loader import ModelLoader
from modelport.serving.metered import MeteredTarget
from modelport.serving.runtime import ModelRuntime
from modelport.serving.served import ServedModel, ServeOptions
from modelport.serving.sources import parse_source
from modelport.serving.target import InferenceRequest, InferenceResult, InferenceTarget
from testing_server import Catalog, Served


class Recording:
    """A wrapper target that remembers what passed through it."""

    def __init__(self, inner: InferenceTarget, seen: list[tuple[str, Any]]) -> None:
        self._inner = inner
        self._seen = seen

    async def infer(self, request: InferenceRequest) -> InferenceResult:
        try:
            result = await self._inner.infer(request)
        except Exception as exc:
            self._seen.append((request.request_id, exc))
            raise
        self._seen.append((request.request_id, result))
        return result


class Rows:
    """A VersionRecorder that keeps what it is told."""

    def __init__(self) -> None:
        self.answers: list[tuple[int, float]] = []
        self.failures: list[float] = []

    def answered(self, rows: int, seconds: float) -> None:
        self.answers.append((rows, seconds))

    def failed(self, seconds: float) -> None:
        self.failures.append(seconds)


def request(
    inputs: Any, request_id: str, outputs: tuple[str, ...] | None = None
) -> InferenceRequest:
    now = time.monotonic()
    return InferenceRequest(inputs, outputs, now + 5, request_id, "test", now)


def runtime_for(catalog: Catalog, wrap: Any) -> ModelRuntime:
    loader = ModelLoader(
        lambda: build_registry(catalog.settings),
        default_catalog(),
        accelerate=True,
        version_check=catalog.settings.version_check,
    )
    return ModelRuntime(
        [parse_source("forest@production")],
        loader,
        lambda name: ServeOptions(BatchingSettings()),
        observer_for=lambda served: NullObserver(),
        wrap=wrap,
    )


def test_wrappers_see_every_request_and_the_version_that_answered(catalog: Catalog) -> None:
    seen: list[tuple[str, Any]] = []
    rows = Rows()

    def wrap(served: ServedModel) -> InferenceTarget:
        metered = MeteredTarget(served, rows, model=served.name, version=served.version)
        return Recording(metered, seen)

    x = catalog.data["forest"].head(3)
    expected = catalog.models["forest"].predict(x)

    async def scenario() -> tuple[InferenceResult, Exception]:
        runtime = runtime_for(catalog, wrap)
        await runtime.start()
        try:
            with runtime.hold("forest") as target:
                table = TableInputs(list(x.columns), x.to_numpy())
                result = await target.infer(request(table, "r-1", ("predictions",)))
            with runtime.hold("forest", "1") as target, pytest.raises(InvalidInputError) as bad:
                await target.infer(request(ArrayInputs(np.ones((2, 3))), "r-2"))
        finally:
            await runtime.close()
        return result, bad.value

    result, error = asyncio.run(scenario())
    assert (result.model, result.version, result.rows) == ("forest", 1, 3)
    assert list(result.outputs) == ["predictions"]
    assert result.outputs["predictions"].tolist() == expected.tolist()
    assert result.inputs.batch["input"].shape == (3, 20)  # as the version bound them
    assert [request_id for request_id, _ in seen] == ["r-1", "r-2"]
    assert seen[0][1] is result
    assert rows.answers[0][0] == 3 and rows.answers[0][1] > 0
    assert len(rows.answers) == 1  # the refused request predicted nothing
    assert len(rows.failures) == 1 and rows.failures[0] > 0  # but it was timed as a failure
    # The error is stamped with where it happened, for whoever counts by version.
    assert (error.model, error.version) == ("forest", 1)


def test_outputs_come_back_in_the_order_asked_for(catalog: Catalog) -> None:
    x = catalog.data["forest"].head(2)

    async def scenario() -> InferenceResult:
        runtime = runtime_for(catalog, None)
        await runtime.start()
        try:
            with runtime.hold("forest") as target:
                table = TableInputs(None, x.to_numpy())
                wanted = ("probabilities", "predictions")
                return await target.infer(request(table, "r", wanted))
        finally:
            await runtime.close()

    result = asyncio.run(scenario())
    assert list(result.outputs) == ["probabilities", "predictions"]
    assert result.outputs["probabilities"].shape == (2, 2)


def test_metrics_count_each_version_answers_and_its_refusals(server: Served) -> None:
    x = server.data["forest"].head(4).to_numpy().tolist()
    for _ in range(3):
        assert (
            server.client.post("/invocations?model=forest", json={"inputs": x}).status_code == 200
        )
    bad = server.client.post(
        "/v2/models/forest/infer",
        json={
            "inputs": [{"name": "input", "shape": [1, 2], "datatype": "FP64", "data": [1.0, 2.0]}]
        },
    )
    assert bad.status_code == 400
    samples = [
        s
        for family in text_string_to_metric_families(server.client.get("/metrics").text)
        for s in family.samples
    ]

    def value(name: str, **labels: str) -> float:
        return sum(
            s.value for s in samples if s.name == name and labels.items() <= s.labels.items()
        )

    assert value("modelport_inference_duration_seconds_count", model="forest", version="1") == 3
    assert value("modelport_predictions_total", model="forest", version="1") == 12
    # The refusal happened at version 1 (binding its inputs): counted there.
    assert value("modelport_requests_total", model="forest", version="1", code="400") == 1
    assert value("modelport_requests_total", model="forest", version="1", code="200") == 3
