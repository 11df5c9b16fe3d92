"""Deployments in the registry: every change audited, in the history, checked against the
versions, compare-and-set on the revision, gates on promote, events after the commit."""

from __future__ import annotations

import threading
from collections.abc import Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import Any

import pytest

from modelport.domain.deployments import ArmRole, Deployment, with_canary
from modelport.domain.entities import ModelVersion, VersionStatus
from modelport.domain.gates import GateOutcome, GateReport, GateResult
from modelport.domain.rollouts import RolloutRecord
from modelport.errors import (
    DeploymentNotFoundError,
    GateFailedError,
    InvalidArgumentError,
    ModelNotFoundError,
    StaleDeploymentError,
    VersionNotFoundError,
)
from modelport.registry.service import RegistryService
from testing_deployments import add_versions


@pytest.fixture
def events(registry: RegistryService) -> list[tuple[str, Mapping[str, Any], Any]]:
    """Registry events heard, each with the deployment as a new reader saw it then."""
    heard: list[tuple[str, Mapping[str, Any], Any]] = []

    def listen(event: str, payload: Mapping[str, Any]) -> None:
        heard.append((event, payload, registry.find_deployment(payload["deployment"])))

    registry.context.on_event = listen
    add_versions(registry, "churn", 5)
    return heard


def arms(deployment: Deployment) -> list[tuple[str, int, float]]:
    return [(a.name, a.version, a.weight) for a in deployment.arms]


@dataclass
class FakeGates:
    """Gates guarding production that pass or fail as told, remembering what they saw."""

    passing: bool = True
    seen: list[tuple[str, int, str]] = field(default_factory=list)

    def guards(self, target: str) -> bool:
        return target == "production"

    def check(self, candidate: ModelVersion, target: str) -> GateReport:
        self.seen.append((candidate.name, candidate.version, target))
        outcome = GateOutcome.PASSED if self.passing else GateOutcome.FAILED
        result = GateResult("holdout_metric", outcome, "accuracy 0.91 vs 0.90", {"delta": 0.01})
        return GateReport(candidate.name, candidate.version, target, (result,), baseline=3)


def test_create_is_audited_in_the_history_and_announced(
    registry: RegistryService, events: list[Any]
) -> None:
    created = registry.create_deployment("churn", 3, reason="first release")
    assert (created.revision, created.updated_by) == (1, "alice")
    assert arms(created) == [("champion", 3, 100.0)]
    assert registry.get_deployment("churn") == created
    assert registry.list_deployments() == [created]
    [audit] = registry.get_audit_log("churn")
    assert (audit.action, audit.target, audit.actor) == (
        "deployment.create",
        "deployment:churn",
        "alice",
    )
    assert audit.before is None and audit.after is not None
    assert audit.after["arms"] == created.spec_dict()["arms"]
    assert audit.after["reason"] == "first release"
    [entry] = registry.deployment_history("churn")
    assert (entry.action, entry.revision, entry.reason) == ("deployment.create", 1, "first release")
    assert entry.spec == created.spec_dict()
    # The event comes after the commit: a new reader already sees the deployment.
    [(name, payload, seen)] = events
    assert name == "deployment.changed" and seen == created
    assert payload["deployment"] == "churn" and payload["revision"] == 1
    assert payload["action"] == "deployment.create" and payload["deleted"] is False


def test_a_deployment_answers_on_another_models_versions(
    registry: RegistryService, events: list[Any]
) -> None:
    add_versions(registry, "churn_v2", 2)
    created = registry.create_deployment("churn-api", 2, model="churn_v2")
    assert created.champion.ref == "churn_v2/2"
    canary = registry.deploy_canary("churn-api", 4, 5, model="churn")
    assert [a.ref for a in canary.arms] == ["churn_v2/2", "churn/4"]


def test_arm_versions_must_exist_and_be_active(
    registry: RegistryService, events: list[Any]
) -> None:
    with pytest.raises(ModelNotFoundError):
        registry.create_deployment("fraud", 1)
    with pytest.raises(VersionNotFoundError):
        registry.create_deployment("churn", 9)
    with registry.metadata.transaction() as tx:
        tx.set_version_status("churn", 2, VersionStatus.ARCHIVED)
    with pytest.raises(InvalidArgumentError, match="archived"):
        registry.create_deployment("churn", 2)
    registry.create_deployment("churn", 3)
    with pytest.raises(InvalidArgumentError, match="archived"):
        registry.deploy_canary("churn", 2, 10)
    assert registry.get_deployment("churn").revision == 1
    assert [e.action for e in registry.deployment_history("churn")] == ["deployment.create"]
    assert len(events) == 1


def test_creating_twice_is_refused(registry: RegistryService, events: list[Any]) -> None:
    registry.create_deployment("churn", 3)
    with pytest.raises(StaleDeploymentError, match="already exists"):
        registry.create_deployment("churn", 4)
    assert registry.get_deployment("churn").champion.version == 3


def test_canary_weights_then_removal(registry: RegistryService, events: list[Any]) -> None:
    registry.create_deployment("churn", 3)
    canary = registry.deploy_canary("churn", 4, 10, reason="try 4")
    assert arms(canary) == [("champion", 3, 90.0), ("canary", 4, 10.0)]
    wider = registry.set_arm_weight("churn", "canary", 25)
    assert arms(wider) == [("champion", 3, 75.0), ("canary", 4, 25.0)]
    removed = registry.remove_arm("churn", "canary", reason="worse p99")
    assert arms(removed) == [("champion", 3, 100.0)]
    assert removed.revision == 4
    history = registry.deployment_history("churn")
    assert [e.action for e in history] == [
        "deployment.remove_arm",
        "deployment.set_weight",
        "deployment.canary",
        "deployment.create",
    ]
    assert history[0].details == {"arm": "canary"} and history[0].reason == "worse p99"
    assert [e.revision for e in history] == [4, 3, 2, 1]
    assert [a.action for a in registry.get_audit_log("churn")][:2] == [
        "deployment.remove_arm",
        "deployment.set_weight",
    ]
    assert [payload["revision"] for _, payload, _ in events] == [1, 2, 3, 4]


def test_ab_with_a_sticky_key_and_a_shadow(registry: RegistryService, events: list[Any]) -> None:
    registry.create_deployment("churn", 3)
    split = registry.deploy_ab("churn", [(3, 50), (4, 50)], sticky="header:X-User-ID")
    assert arms(split) == [("champion", 3, 50.0), ("challenger", 4, 50.0)]
    assert split.sticky is not None and split.sticky.describe() == "header:X-User-ID"
    shadowed = registry.deploy_shadow("churn", 5, 0.5)
    assert [(a.name, a.role, a.sample) for a in shadowed.shadow_arms] == [
        ("shadow", ArmRole.SHADOW, 0.5)
    ]
    with pytest.raises(InvalidArgumentError, match="add up to"):
        registry.deploy_ab("churn", [(3, 50), (4, 40)])
    with pytest.raises(InvalidArgumentError, match="KIND:NAME"):
        registry.deploy_ab("churn", [(3, 50), (4, 50)], sticky="cookie")
    assert registry.get_deployment("churn").revision == 3


def test_promote_runs_the_gates_and_rollback_restores_the_champion(
    registry: RegistryService, events: list[Any]
) -> None:
    gates = FakeGates()
    registry.context.gates = gates
    registry.create_deployment("churn", 3)
    registry.deploy_canary("churn", 4, 10)
    promoted = registry.promote_deployment("churn", reason="better accuracy")
    assert arms(promoted) == [("champion", 4, 100.0)]
    assert promoted.previous_champion == ("churn", 3)
    assert gates.seen == [("churn", 4, "production")]
    [entry, *_] = registry.deployment_history("churn")
    assert entry.action == "deployment.promote"
    assert entry.details["gates"]["passed"] is True and entry.details["arm"] == "canary"
    back = registry.rollback_deployment("churn", reason="complaints")
    assert arms(back) == [("champion", 3, 100.0)] and back.previous_champion is None
    with pytest.raises(InvalidArgumentError, match="nothing to roll back"):
        registry.rollback_deployment("churn")


def test_failing_gates_refuse_the_promotion_unless_skipped_with_a_reason(
    registry: RegistryService, events: list[Any]
) -> None:
    registry.context.gates = FakeGates(passing=False)
    registry.create_deployment("churn", 3)
    registry.deploy_canary("churn", 4, 10)
    with pytest.raises(GateFailedError, match="holdout_metric") as raised:
        registry.promote_deployment("churn")
    assert raised.value.report["results"][0]["outcome"] == "failed"
    assert registry.get_deployment("churn").champion.version == 3
    with pytest.raises(InvalidArgumentError, match="reason"):
        registry.promote_deployment("churn", skip_gates=" ")
    promoted = registry.promote_deployment("churn", "canary", skip_gates="hotfix, approved by bo")
    assert promoted.champion.version == 4
    [audit, *_] = registry.get_audit_log("churn")
    assert audit.action == "deployment.promote"
    assert audit.after is not None
    assert audit.after["details"]["gates_skipped"] == "hotfix, approved by bo"
    assert registry.deployment_history("churn")[0].details["gates_skipped"] == (
        "hotfix, approved by bo"
    )


def test_rollback_drops_the_candidates(registry: RegistryService, events: list[Any]) -> None:
    registry.create_deployment("churn", 3)
    registry.deploy_ab("churn", [(3, 40), (4, 30), (5, 30)], sticky="field:customer_id")
    back = registry.rollback_deployment("churn")
    assert arms(back) == [("champion", 3, 100.0)] and back.sticky is None


def test_a_change_based_on_a_stale_revision_is_refused(
    registry: RegistryService, events: list[Any]
) -> None:
    registry.create_deployment("churn", 3)
    read = registry.get_deployment("churn")
    registry.deploy_canary("churn", 4, 10)

    def unchanged(deployment: Deployment) -> Deployment:
        return replace(deployment, arms=deployment.arms)

    with pytest.raises(StaleDeploymentError, match="revision 2, not 1"):
        registry.change_deployment(
            "churn", unchanged, action="rollout.step", expected_revision=read.revision
        )
    changed = registry.change_deployment(
        "churn",
        unchanged,
        action="rollout.step",
        reason="step 2",
        details={"step": 2, "error_rate": 0.01},
        expected_revision=2,
    )
    assert changed.revision == 3
    entry = registry.deployment_history("churn", limit=1)[0]
    assert (entry.action, entry.details) == ("rollout.step", {"step": 2, "error_rate": 0.01})
    with pytest.raises(InvalidArgumentError, match="add up to"):
        registry.change_deployment(
            "churn",
            lambda d: replace(d, arms=(replace(d.champion, weight=50.0),)),
            action="rollout.step",
        )


def test_delete_keeps_the_history(registry: RegistryService, events: list[Any]) -> None:
    registry.create_deployment("churn", 3)
    with registry.metadata.transaction() as tx:
        tx.save_rollout(
            RolloutRecord("churn", {"step": 1}, 0, datetime.now(UTC)), expected_revision=0
        )
    registry.delete_deployment("churn", reason="retired")
    assert registry.find_deployment("churn") is None
    with registry.metadata.reader() as tx:
        assert tx.get_rollout("churn") is None
    with pytest.raises(DeploymentNotFoundError, match="deploy create churn"):
        registry.get_deployment("churn")
    with pytest.raises(DeploymentNotFoundError):
        registry.delete_deployment("churn")
    assert [e.action for e in registry.deployment_history("churn")] == [
        "deployment.delete",
        "deployment.create",
    ]
    with pytest.raises(DeploymentNotFoundError):
        registry.deployment_history("fraud")
    _, payload, seen = events[-1]
    assert payload["deleted"] is True and payload["reason"] == "retired" and seen is None


def test_changes_to_a_missing_deployment_are_not_found(
    registry: RegistryService, events: list[Any]
) -> None:
    with pytest.raises(DeploymentNotFoundError):
        registry.deploy_canary("churn", 4, 10)
    with pytest.raises(DeploymentNotFoundError):
        registry.promote_deployment("churn")
    assert registry.list_deployments() == [] and events == []


def test_a_failing_listener_does_not_undo_the_change(
    registry: RegistryService, events: list[Any]
) -> None:
    def broken(event: str, payload: Mapping[str, Any]) -> None:
        raise RuntimeError("webhook down")

    registry.context.on_event = broken
    assert registry.create_deployment("churn", 3).revision == 1
    assert registry.get_deployment("churn").revision == 1


def test_of_concurrent_changes_from_one_read_exactly_one_is_stored(
    registry: RegistryService, events: list[Any]
) -> None:
    registry.create_deployment("churn", 3)
    start = threading.Barrier(4)

    def canary(weight: int) -> bool:
        start.wait()
        try:
            registry.change_deployment(
                "churn",
                lambda d: with_canary(d, "churn", 4, weight),
                action="deployment.canary",
                expected_revision=1,
            )
        except StaleDeploymentError:
            return False
        return True

    with ThreadPoolExecutor(4) as pool:
        outcomes = list(pool.map(canary, [5, 10, 15, 20]))
    assert outcomes.count(True) == 1
    stored = registry.get_deployment("churn")
    assert stored.revision == 2
    assert stored.arm("canary").weight == [5, 10, 15, 20][outcomes.index(True)]
    assert [e.revision for e in registry.deployment_history("churn")] == [2, 1]
