"""The deployment part of the MetadataStore contract (deployments, their history,
rollout states, leases), on memory, SQLite and PostgreSQL alike."""

from __future__ import annotations

import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import TypeVar

import pytest

from modelport.domain.deployments import (
    Deployment,
    NewDeploymentEvent,
    new_deployment,
    parse_sticky,
    with_ab,
    with_canary,
    with_shadow,
)
from modelport.domain.rollouts import RolloutRecord
from modelport.errors import DeploymentNotFoundError, StaleDeploymentError
from modelport.metadata.store import MetadataStore

NOW = datetime(2026, 12, 6, 16, 0, 5, 125000, tzinfo=UTC)
LATER = NOW + timedelta(minutes=5)
T = TypeVar("T")


def churn() -> Deployment:
    return new_deployment("churn", "churn", 3)


def create(store: MetadataStore, deployment: Deployment) -> Deployment:
    with store.transaction() as session:
        return session.save_deployment(deployment, expected_revision=0, now=NOW, actor="ana")


def event(
    name: str = "churn", revision: int = 1, action: str = "deployment.create"
) -> NewDeploymentEvent:
    return NewDeploymentEvent(
        deployment=name,
        revision=revision,
        action=action,
        actor="ana",
        reason="first canary" if revision > 1 else None,
        timestamp=NOW + timedelta(seconds=revision),
        spec=churn().spec_dict(),
        details={"gates": {"passed": True, "results": []}, "weight": 10.0},
    )


# -- deployments


def test_a_new_deployment_is_stored_at_revision_one(metadata_store: MetadataStore) -> None:
    with metadata_store.reader() as session:
        assert session.get_deployment("churn") is None
    saved = create(metadata_store, churn())
    assert saved == replace(churn(), revision=1, created_at=NOW, updated_at=NOW, updated_by="ana")
    with metadata_store.reader() as session:
        assert session.get_deployment("churn") == saved


def test_every_field_of_the_spec_round_trips(metadata_store: MetadataStore) -> None:
    split = with_ab(
        churn(), [("churn", 3, 45.5), ("churn", 4, 54.5)], parse_sticky("header:X-User-ID")
    )
    shadowed = with_shadow(split, "fraud", 7, 0.25)
    deployment = replace(shadowed, previous_champion=("churn", 2))
    saved = create(metadata_store, deployment)
    with metadata_store.reader() as session:
        stored = session.get_deployment("churn")
    assert stored == saved
    assert stored is not None and stored.spec_dict() == deployment.spec_dict()
    assert stored.sticky == parse_sticky("header:X-User-ID")
    assert [(a.name, a.weight, a.sample) for a in stored.arms] == [
        ("champion", 45.5, 1.0),
        ("challenger", 54.5, 1.0),
        ("shadow", 0.0, 0.25),
    ]


def test_a_change_is_stored_at_the_next_revision(metadata_store: MetadataStore) -> None:
    first = create(metadata_store, churn())
    canary = with_canary(first, "churn", 4, 10)
    with metadata_store.transaction() as session:
        second = session.save_deployment(canary, expected_revision=1, now=LATER, actor="bo")
    assert second.revision == 2
    assert (second.created_at, second.updated_at, second.updated_by) == (NOW, LATER, "bo")
    with metadata_store.reader() as session:
        assert session.get_deployment("churn") == second
    assert second.spec_dict() == canary.spec_dict()


def test_creating_an_existing_name_is_stale(metadata_store: MetadataStore) -> None:
    create(metadata_store, churn())
    with pytest.raises(StaleDeploymentError, match="already exists") as raised:
        create(metadata_store, new_deployment("churn", "churn", 9))
    assert (raised.value.expected, raised.value.found) == (0, 1)
    with metadata_store.reader() as session:
        stored = session.get_deployment("churn")
    assert stored is not None and stored.champion.version == 3


@pytest.mark.parametrize("expected", [2, 5])
def test_a_stale_revision_writes_nothing(metadata_store: MetadataStore, expected: int) -> None:
    first = create(metadata_store, churn())
    with (
        pytest.raises(StaleDeploymentError, match="revision 1, not") as raised,
        metadata_store.transaction() as session,
    ):
        session.save_deployment(
            with_canary(first, "churn", 4, 10), expected_revision=expected, now=LATER, actor="bo"
        )
    assert raised.value.to_dict()["revision"] == 1
    with metadata_store.reader() as session:
        assert session.get_deployment("churn") == first


def test_updating_a_deleted_deployment_is_stale(metadata_store: MetadataStore) -> None:
    first = create(metadata_store, churn())
    with metadata_store.transaction() as session:
        session.delete_deployment("churn")
    with pytest.raises(StaleDeploymentError, match="deleted"), metadata_store.transaction() as tx:
        tx.save_deployment(first, expected_revision=1, now=LATER, actor="bo")


def test_deployments_are_listed_by_name(metadata_store: MetadataStore) -> None:
    for name in ("fraud", "churn", "Zeta", "ads"):
        create(metadata_store, new_deployment(name, "churn", 1))
    with metadata_store.reader() as session:
        assert [d.name for d in session.list_deployments()] == ["Zeta", "ads", "churn", "fraud"]


def test_deleting_removes_it_and_a_missing_one_is_not_found(
    metadata_store: MetadataStore,
) -> None:
    create(metadata_store, churn())
    create(metadata_store, new_deployment("fraud", "fraud", 1))
    with metadata_store.transaction() as session:
        session.delete_deployment("churn")
    with metadata_store.reader() as session:
        assert session.get_deployment("churn") is None
        assert [d.name for d in session.list_deployments()] == ["fraud"]
    with pytest.raises(DeploymentNotFoundError), metadata_store.transaction() as session:
        session.delete_deployment("churn")
    # The name can be used again, from revision 1.
    assert create(metadata_store, churn()).revision == 1


def test_a_failed_transaction_leaves_no_deployment(metadata_store: MetadataStore) -> None:
    def write_then_fail() -> None:
        with metadata_store.transaction() as session:
            session.save_deployment(churn(), expected_revision=0, now=NOW, actor="ana")
            session.add_deployment_event(event())
            raise RuntimeError("the audit write failed")

    with pytest.raises(RuntimeError):
        write_then_fail()
    with metadata_store.reader() as session:
        assert session.get_deployment("churn") is None
        assert session.list_deployment_events("churn") == []


# -- history


def test_events_are_listed_newest_first_per_deployment(metadata_store: MetadataStore) -> None:
    with metadata_store.transaction() as session:
        added = [session.add_deployment_event(event(revision=n)) for n in (1, 2, 3)]
        session.add_deployment_event(event("fraud"))
    assert [e.id for e in added] == sorted({e.id for e in added})
    with metadata_store.reader() as session:
        listed = session.list_deployment_events("churn")
        assert listed == added[::-1]
        assert [e.revision for e in session.list_deployment_events("churn", limit=2)] == [3, 2]
        assert [e.deployment for e in session.list_deployment_events("fraud")] == ["fraud"]
        assert session.list_deployment_events("ads") == []
    newest = listed[0]
    assert newest.reason == "first canary" and listed[-1].reason is None
    assert newest.details == {"gates": {"passed": True, "results": []}, "weight": 10.0}
    assert newest.spec == churn().spec_dict()
    assert newest.timestamp == NOW + timedelta(seconds=3)
    assert newest.to_dict()["timestamp"] == (NOW + timedelta(seconds=3)).isoformat()


def test_the_history_outlives_the_deployment(metadata_store: MetadataStore) -> None:
    create(metadata_store, churn())
    with metadata_store.transaction() as session:
        session.add_deployment_event(event())
        session.delete_deployment("churn")
    with metadata_store.reader() as session:
        assert [e.action for e in session.list_deployment_events("churn")] == ["deployment.create"]


# -- rollouts and leases


def record(state: dict[str, object], revision: int = 0) -> RolloutRecord:
    return RolloutRecord("churn", state, revision, NOW)


def test_rollout_states_are_compare_and_set(metadata_store: MetadataStore) -> None:
    with metadata_store.transaction() as session:
        assert session.get_rollout("churn") is None
        first = session.save_rollout(record({"step": 0, "steps": [5, 25]}), expected_revision=0)
        assert session.save_rollout(record({"step": 9}), expected_revision=0) is None
    assert first == RolloutRecord("churn", {"step": 0, "steps": [5, 25]}, 1, NOW)
    with metadata_store.transaction() as session:
        moved = replace(first, state={"step": 1, "steps": [5, 25]}, updated_at=LATER)
        second = session.save_rollout(moved, expected_revision=1)
        assert session.save_rollout(moved, expected_revision=1) is None
    assert second is not None and (second.revision, second.updated_at) == (2, LATER)
    with metadata_store.reader() as session:
        assert session.get_rollout("churn") == second
    with metadata_store.transaction() as session:
        session.delete_rollout("churn")
        session.delete_rollout("churn")  # absent: no error
    with metadata_store.reader() as session:
        assert session.get_rollout("churn") is None


def test_a_lease_is_held_by_one_owner_until_it_expires(metadata_store: MetadataStore) -> None:
    with metadata_store.transaction() as session:
        assert session.acquire_lease("rollout:churn", "a", now=NOW, ttl_s=30)
        assert not session.acquire_lease("rollout:churn", "b", now=NOW, ttl_s=30)
        assert session.acquire_lease("rollout:fraud", "b", now=NOW, ttl_s=30)
        # The holder extends it; the other owner still cannot take it just before expiry.
        assert session.acquire_lease(
            "rollout:churn", "a", now=NOW + timedelta(seconds=20), ttl_s=30
        )
        assert not session.acquire_lease(
            "rollout:churn", "b", now=NOW + timedelta(seconds=49), ttl_s=30
        )
        assert session.acquire_lease(
            "rollout:churn", "b", now=NOW + timedelta(seconds=50), ttl_s=30
        )
        assert not session.acquire_lease(
            "rollout:churn", "a", now=NOW + timedelta(seconds=51), ttl_s=30
        )


def test_only_the_holder_releases_a_lease(metadata_store: MetadataStore) -> None:
    with metadata_store.transaction() as session:
        session.acquire_lease("rollout:churn", "a", now=NOW, ttl_s=30)
        session.release_lease("rollout:churn", "b")
        assert not session.acquire_lease("rollout:churn", "b", now=NOW, ttl_s=30)
        session.release_lease("rollout:churn", "a")
        session.release_lease("rollout:nothing", "a")
        assert session.acquire_lease("rollout:churn", "b", now=NOW, ttl_s=30)


# -- concurrent writers


def race(workers: int, attempt: Callable[[int], T]) -> list[T]:
    """Run ``attempt(i)`` in ``workers`` threads released together."""
    start = threading.Barrier(workers)

    def run(index: int) -> T:
        start.wait()
        return attempt(index)

    with ThreadPoolExecutor(workers) as pool:
        return list(pool.map(run, range(workers)))


def test_of_concurrent_changes_to_one_revision_exactly_one_wins(
    metadata_store: MetadataStore,
) -> None:
    first = create(metadata_store, churn())

    def change(index: int) -> bool:
        try:
            with metadata_store.transaction() as session:
                session.save_deployment(
                    with_canary(first, "churn", 4, index + 1),
                    expected_revision=first.revision,
                    now=LATER,
                    actor=f"writer-{index}",
                )
        except StaleDeploymentError:
            return False
        return True

    outcomes = race(6, change)
    assert outcomes.count(True) == 1
    with metadata_store.reader() as session:
        stored = session.get_deployment("churn")
    assert stored is not None and stored.revision == 2
    winner = outcomes.index(True)
    assert stored.updated_by == f"writer-{winner}"
    assert stored.arm("canary").weight == winner + 1


def test_of_concurrent_creations_exactly_one_wins(metadata_store: MetadataStore) -> None:
    def create_once(index: int) -> bool:
        try:
            create(metadata_store, new_deployment("churn", "churn", index + 1))
        except StaleDeploymentError:
            return False
        return True

    assert race(6, create_once).count(True) == 1


def test_of_concurrent_lease_takers_exactly_one_wins(metadata_store: MetadataStore) -> None:
    def take(index: int) -> bool:
        with metadata_store.transaction() as session:
            return session.acquire_lease("rollout:churn", f"owner-{index}", now=NOW, ttl_s=30)

    assert race(6, take).count(True) == 1
