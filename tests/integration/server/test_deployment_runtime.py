"""A worker's runtime serving a deployment: its arms loaded, its changes followed live,
versions retired after their requests, and no request failed on the way.

The deployment is read through an injected lookup (a dict standing in for the registry's
deployments), so these tests pin the runtime's behaviour on their own; the arm versions
are real registry versions.
"""

from __future__ import annotations

import asyncio
import dataclasses
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

from modelport.bootstrap import build_registry
from modelport.config import BatchingSettings, Settings
from modelport.domain.deployments import (
    Deployment,
    new_deployment,
    promoted,
    rolled_back,
    with_canary,
    with_shadow,
    with_weight,
)
from modelport.flavors.catalog import default_catalog
from modelport.package.options import PackageOptions
from modelport.serving.batch_observer import NullObserver
from modelport.serving.binding import NamedInputs, Tensor
from modelport.serving.loader import ModelLoader
from modelport.serving.route import Lag
from modelport.serving.runtime import ModelRuntime
from modelport.serving.served import ServedModel, ServeOptions
from modelport.serving.sources import ModelSource
from modelport.serving.target import ArmLabel, InferenceRequest, InferenceResult, InferenceTarget
from testing_models import EchoModel

# Version n predicts 100 * n + the row's sum: the answer says which version gave it.
OFFSETS = {1: 100.0, 2: 200.0, 3: 300.0}
WIDER = 4


@pytest.fixture(scope="module")
def settings(tmp_path_factory: pytest.TempPathFactory) -> Settings:
    home = tmp_path_factory.mktemp("deployment-runtime")
    settings = Settings(home=home, user="tester")
    x = np.random.default_rng(0).normal(size=(20, 3))
    with build_registry(settings) as registry:
        for version, offset in OFFSETS.items():
            config = {"config": {"offset": offset}}
            registered = registry.register(
                EchoModel(), "churn", PackageOptions(sample_input=x, flavor_options=config)
            )
            assert registered.version == version
        wider = PackageOptions(sample_input=np.zeros((4, 4)))  # version 4: takes 4 columns
        assert registry.register(EchoModel(), "churn", wider).version == WIDER
    return settings


class Deployments:
    """The registry's deployments as the runtime reads them: a dict with revisions."""

    def __init__(self, deployment: Deployment) -> None:
        self.current: Deployment | None = dataclasses.replace(deployment, revision=1)
        self.reads = 0

    def change(self, change: Callable[[Deployment], Deployment]) -> None:
        assert self.current is not None
        revision = self.current.revision
        self.current = dataclasses.replace(change(self.current), revision=revision + 1)

    def __call__(self, name: str) -> Deployment | None:
        self.reads += 1
        return self.current if self.current is not None and name == "churn" else None


def runtime_for(settings: Settings, deployments: Deployments, **kwargs: object) -> ModelRuntime:
    loader = ModelLoader(
        lambda: build_registry(settings),
        default_catalog(),
        accelerate=False,
        version_check=settings.version_check,
    )
    return ModelRuntime(
        [ModelSource("churn", ref="models:/churn/latest", deployment="churn")],
        loader,
        lambda name: ServeOptions(BatchingSettings()),
        observer_for=lambda served: NullObserver(),
        deployments=deployments,
        poll_interval_s=3600,  # the tests call refresh() themselves
        **kwargs,  # type: ignore[arg-type]
    )


def request(request_id: str) -> InferenceRequest:
    now = time.monotonic()
    inputs = NamedInputs({"input": Tensor(np.zeros((1, 3)))})
    return InferenceRequest(inputs, None, now + 10, request_id, "test", now)


async def infer(runtime: ModelRuntime, request_id: str = "r") -> InferenceResult:
    with runtime.hold("churn") as target:
        return await target.infer(request(request_id))


def answered_by(result: InferenceResult) -> tuple[str | None, int | None]:
    # The prediction itself says which version computed it.
    value = float(np.asarray(next(iter(result.outputs.values()))).reshape(-1)[0])
    assert value == OFFSETS[result.version or 0]
    return result.arm, result.version


def test_a_deployment_is_served_and_followed_as_it_changes(settings: Settings) -> None:
    deployments = Deployments(new_deployment("churn", "churn", 1))

    async def scenario() -> None:
        runtime = runtime_for(settings, deployments)
        await runtime.start()
        try:
            result = await infer(runtime)
            assert answered_by(result) == ("champion", 1)
            assert result.deployment == "churn"

            deployments.change(lambda d: with_canary(d, "churn", 2, 20))
            await runtime.refresh()
            seen = Counter([answered_by(await infer(runtime)) for _ in range(100)])
            assert seen == {("champion", 1): 80, ("canary", 2): 20}

            deployments.change(lambda d: with_weight(d, "canary", 50))
            await runtime.refresh()
            seen = Counter([answered_by(await infer(runtime)) for _ in range(100)])
            assert seen == {("champion", 1): 50, ("canary", 2): 50}

            deployments.change(promoted)
            await runtime.refresh()
            assert {answered_by(await infer(runtime)) for _ in range(20)} == {("champion", 2)}
            await asyncio.sleep(0.1)  # the retired version finishes its (no) requests
            route = runtime.routes()[0]
            assert set(route.arms) == {("churn", 2)}
            assert not route.retiring

            deployments.change(rolled_back)
            await runtime.refresh()
            assert {answered_by(await infer(runtime)) for _ in range(20)} == {("champion", 1)}
        finally:
            await runtime.close()

    asyncio.run(scenario())


def test_no_request_fails_while_the_deployment_changes_under_load(settings: Settings) -> None:
    deployments = Deployments(new_deployment("churn", "churn", 1))
    changes: list[Callable[[Deployment], Deployment]] = [
        lambda d: with_canary(d, "churn", 2, 10),
        lambda d: with_weight(d, "canary", 50),
        lambda d: with_shadow(d, "churn", 3, 1.0),
        promoted,
        rolled_back,
        lambda d: with_canary(d, "churn", 3, 30),
        promoted,
    ]

    async def scenario() -> Counter[tuple[str | None, int | None]]:
        runtime = runtime_for(settings, deployments)
        await runtime.start()
        answered: Counter[tuple[str | None, int | None]] = Counter()
        changing = True

        async def client(index: int) -> None:
            n = 0
            while changing:
                answered[answered_by(await infer(runtime, f"c{index}-{n}"))] += 1
                n += 1

        try:
            clients = [asyncio.create_task(client(i)) for i in range(16)]
            for change in changes:
                deployments.change(change)
                await runtime.refresh()
                await asyncio.sleep(0.05)
            changing = False
            await asyncio.gather(*clients)  # any failed request raises here
            route = runtime.routes()[0]
            assert route.deployment is not None and route.deployment.revision == 8
            assert route.stale is None
        finally:
            await runtime.close()
        return answered

    answered = asyncio.run(scenario())
    assert sum(answered.values()) > 100
    assert {version for _, version in answered} == {1, 2, 3}


def test_a_revision_that_fails_to_load_leaves_the_served_one(settings: Settings) -> None:
    deployments = Deployments(new_deployment("churn", "churn", 1))

    async def scenario() -> None:
        runtime = runtime_for(settings, deployments)
        await runtime.start()
        try:
            deployments.change(lambda d: with_canary(d, "churn", 9, 50))  # no version 9
            await runtime.refresh()
            route = runtime.routes()[0]
            assert route.stale is not None and route.stale.reason is Lag.LOAD_FAILED
            assert "churn/9" in route.stale.detail
            assert {answered_by(await infer(runtime)) for _ in range(10)} == {("champion", 1)}
            reads = deployments.reads
            await runtime.refresh()  # the same revision is not loaded again
            assert deployments.reads == reads + 1 and route.refused_revision == 2

            deployments.change(lambda d: with_canary(d, "churn", 2, 50))  # fixed
            await runtime.refresh()
            assert route.stale is None
            versions = {answered_by(await infer(runtime)) for _ in range(10)}
            assert versions == {("champion", 1), ("canary", 2)}
        finally:
            await runtime.close()

    asyncio.run(scenario())


def test_an_arm_that_would_break_current_clients_is_refused(settings: Settings) -> None:
    deployments = Deployments(new_deployment("churn", "churn", 1))

    async def scenario() -> None:
        runtime = runtime_for(settings, deployments)
        await runtime.start()
        try:
            deployments.change(lambda d: with_canary(d, "churn", WIDER, 10))
            await runtime.refresh()
            route = runtime.routes()[0]
            assert route.stale is not None and route.stale.reason is Lag.SWAP_REFUSED
            assert "churn/4" in route.stale.detail and "[-1, 3] to [-1, 4]" in route.stale.detail
            assert {answered_by(await infer(runtime)) for _ in range(20)} == {("champion", 1)}
            assert set(route.arms) == {("churn", 1)}
        finally:
            await runtime.close()

    asyncio.run(scenario())


def test_a_revision_that_routes_the_same_loads_nothing(settings: Settings) -> None:
    deployments = Deployments(with_canary(new_deployment("churn", "churn", 1), "churn", 2, 10))

    async def scenario() -> None:
        runtime = runtime_for(settings, deployments)
        await runtime.start()
        try:
            route = runtime.routes()[0]
            versions = dict(route.arms)
            current = deployments.current
            assert current is not None and current.revision == 1
            # Deleted and created again with the same arms (or any revision that routes
            # the same): the route takes the revision and keeps its loaded versions.
            deployments.current = dataclasses.replace(current, revision=5)
            await runtime.refresh()
            assert route.deployment is not None and route.deployment.revision == 5
            assert all(route.arms[key] is served for key, served in versions.items())
            assert route.stale is None
        finally:
            await runtime.close()

    asyncio.run(scenario())


def test_a_deployment_that_disappears_keeps_serving_its_last_revision(settings: Settings) -> None:
    deployments = Deployments(new_deployment("churn", "churn", 1))

    async def scenario() -> None:
        runtime = runtime_for(settings, deployments)
        await runtime.start()
        try:
            deployments.current = None
            await runtime.refresh()
            route = runtime.routes()[0]
            assert route.stale is not None and route.stale.reason is Lag.REFERENCE_MISSING
            assert answered_by(await infer(runtime)) == ("champion", 1)
        finally:
            await runtime.close()

    asyncio.run(scenario())


def test_a_shadow_gets_copies_and_the_caller_only_the_live_answer(
    settings: Settings, tmp_path: Path
) -> None:
    deployments = Deployments(with_shadow(new_deployment("churn", "churn", 1), "churn", 2, 1.0))
    seen: list[tuple[str, str | None]] = []

    def wrap_arm(served: ServedModel, label: ArmLabel) -> InferenceTarget:
        class Seen:
            async def infer(self, request: InferenceRequest) -> InferenceResult:
                result = await served.infer(request)
                seen.append((request.request_id, label.arm))
                return result

        return Seen()

    async def scenario() -> None:
        runtime = runtime_for(settings, deployments, wrap_arm=wrap_arm)
        await runtime.start()
        try:
            for i in range(10):
                assert answered_by(await infer(runtime, f"r{i}")) == ("champion", 1)
        finally:
            await runtime.close()  # sends the queued copies first

    asyncio.run(scenario())
    by_arm = Counter(arm for _, arm in seen)
    assert by_arm == {"champion": 10, "shadow": 10}
    assert {rid for rid, arm in seen if arm == "shadow"} == {f"r{i}" for i in range(10)}
