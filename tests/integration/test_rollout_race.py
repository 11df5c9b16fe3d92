"""Two rollout controllers on one real PostgreSQL database never act twice on one step.

Each controller has its own registry and connection pool (as two processes would) and
both tick the same rollout at the same moment, step after step. With the lease, one
acts and the other sees the lease held; with leases that lapse at once (a TTL of 0,
as when a controller stalls past its lease), the compare-and-set on the rollout's
state still lets only one of them decide.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta
from pathlib import Path

import pytest

from modelport.artifacts.local import LocalArtifactStore
from modelport.domain.rollout_plan import RolloutStatus
from modelport.flavors.catalog import default_catalog
from modelport.metadata.sql import SqlMetadataStore
from modelport.registry.service import RegistryService
from modelport.rollout.commands import start_rollout
from modelport.rollout.controller import RolloutController, StepOutcome

from .test_deployments import add_versions
from .test_rollout_controller import MINUTE, PLAN, Clock, Numbers, good

pytestmark = pytest.mark.postgres
ROUNDS = 3  # 5% -> 25% -> 50% -> promoted


@pytest.fixture
def registries(postgres_schema_url: str, tmp_path: Path) -> Iterator[list[RegistryService]]:
    made = [
        RegistryService(
            SqlMetadataStore(postgres_schema_url),
            LocalArtifactStore(tmp_path / "artifacts"),
            default_catalog(),
            actor=f"controller-{index}",
        )
        for index in range(2)
    ]
    yield made
    for registry in made:
        registry.close()


def race(controllers: list[RolloutController]) -> list[StepOutcome]:
    """Both controllers tick ``churn`` at once."""
    barrier = threading.Barrier(len(controllers))

    def tick(controller: RolloutController) -> StepOutcome:
        barrier.wait()
        return controller.tick("churn")

    with ThreadPoolExecutor(len(controllers)) as pool:
        return list(pool.map(tick, controllers))


@pytest.mark.parametrize("lease_ttl", [timedelta(seconds=30), timedelta(0)])
def test_two_controllers_decide_each_step_once(
    registries: list[RegistryService], lease_ttl: timedelta
) -> None:
    clock = Clock()
    first = registries[0]
    add_versions(first, "churn", 4)
    first.create_deployment("churn", 3)
    numbers = Numbers({3: good(3, 20_000), 4: good(4)})
    controllers = [
        RolloutController(
            registry, numbers, owner=f"owner-{index}", clock=clock, lease_ttl=lease_ttl
        )
        for index, registry in enumerate(registries)
    ]
    start_rollout(controllers[0], "churn", 4, PLAN)
    for _ in range(ROUNDS):
        clock.advance(MINUTE)
        outcomes = race(controllers)
        assert sum(outcome.decision is not None for outcome in outcomes) == 1, outcomes
    actions = [event.action for event in reversed(first.deployment_history("churn"))]
    assert actions == [
        "deployment.create", "rollout.start", "rollout.advance", "rollout.advance",
        "rollout.promote", "deployment.promote",
    ]  # fmt: skip
    state = controllers[1].state("churn")
    assert state is not None and state.status is RolloutStatus.PROMOTED
    assert len(numbers.asked) >= ROUNDS
