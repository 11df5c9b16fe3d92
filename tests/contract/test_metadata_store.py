"""The MetadataStore contract, run on memory, SQLite and PostgreSQL alike."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from modelport.domain.entities import (
    ModelVersion,
    NewAuditEntry,
    NewVersion,
    RegisteredModel,
    VersionStatus,
)
from modelport.domain.search import NUMERIC_OPS, TEXT_OPS, Condition, VersionFilter, parse_filter
from modelport.errors import (
    InvalidArgumentError,
    ModelNotFoundError,
    ModelportError,
    VersionNotFoundError,
)
from modelport.metadata.sql import SqlMetadataStore
from modelport.metadata.store import MetadataSession, MetadataStore, sort_versions

NOW = datetime(2024, 5, 6, 7, 8, 9, 123456, tzinfo=UTC)

# A store holding the search catalog, and every version in it as the store reports it.
Catalog = tuple[MetadataStore, list[ModelVersion]]


def later(minutes: int) -> datetime:
    return NOW + timedelta(minutes=minutes)


def new_version(name: str, **changes: Any) -> NewVersion:
    base = NewVersion(
        name=name,
        flavor="sklearn",
        artifact_key=f"{name}/0123abcd",
        manifest_digest="sha256:" + "ab" * 32,
        created_by="alice",
        created_at=NOW,
    )
    return replace(base, **changes)


def create_model(store: MetadataStore, name: str, **tags: str) -> RegisteredModel:
    with store.transaction() as session:
        model, _ = session.ensure_model(name, description=f"about {name}", tags=tags, now=NOW)
    return model


def register(store: MetadataStore, name: str, **changes: Any) -> ModelVersion:
    """Register one version the way the registry does: all in one transaction."""
    with store.transaction() as session:
        session.ensure_model(name, description="", tags={}, now=NOW)
        number = session.allocate_version(name, now=NOW)
        return session.create_version(number, new_version(name, **changes))


def version_numbers(store: MetadataStore, name: str) -> list[int]:
    with store.reader() as session:
        return [version.version for version in session.list_versions(name)]


# -- registered models


def test_get_model_is_none_when_absent(metadata_store: MetadataStore) -> None:
    with metadata_store.reader() as session:
        assert session.get_model("ghost") is None
        assert session.list_models() == []


def test_ensure_model_creates_once(metadata_store: MetadataStore) -> None:
    with metadata_store.transaction() as session:
        model, created = session.ensure_model(
            "churn", description="first", tags={"team": "risk"}, now=NOW
        )
    assert created
    assert model == RegisteredModel(
        name="churn",
        description="first",
        created_at=NOW,
        updated_at=NOW,
        tags={"team": "risk"},
        aliases={},
        latest_version=None,
    )
    with metadata_store.transaction() as session:
        again, created_again = session.ensure_model(
            "churn", description="second", tags={"other": "x"}, now=later(1)
        )
    assert not created_again
    assert again == model


def test_timestamps_come_back_as_the_same_instant(metadata_store: MetadataStore) -> None:
    paris = datetime(2024, 5, 6, 9, 8, 9, 123456, tzinfo=timezone(timedelta(hours=2)))
    with metadata_store.transaction() as session:
        session.ensure_model("churn", description="", tags={}, now=paris)
    with metadata_store.reader() as session:
        stored = session.get_model("churn")
    assert stored is not None
    assert stored.created_at == paris == NOW
    assert stored.created_at.utcoffset() is not None


def test_list_models_sorts_by_name_code_point(metadata_store: MetadataStore) -> None:
    for name in ["b", "B", "a-1", "a", "A_2", "a.0", "Z"]:
        create_model(metadata_store, name)
    with metadata_store.reader() as session:
        names = [model.name for model in session.list_models()]
    assert names == ["A_2", "B", "Z", "a", "a-1", "a.0", "b"]


def test_update_model_changes_description_and_time(metadata_store: MetadataStore) -> None:
    create_model(metadata_store, "churn", team="risk")
    register(metadata_store, "churn")
    with metadata_store.transaction() as session:
        updated = session.update_model("churn", description="new words", now=later(5))
    assert updated.description == "new words"
    assert updated.updated_at == later(5)
    assert updated.created_at == NOW
    assert updated.tags == {"team": "risk"}
    assert updated.latest_version == 1
    with metadata_store.reader() as session:
        assert session.get_model("churn") == updated


def test_model_tags_set_replace_and_delete(metadata_store: MetadataStore) -> None:
    create_model(metadata_store, "churn", team="risk")
    with metadata_store.transaction() as session:
        session.set_model_tag("churn", "team", "fraud", now=later(1))
        session.set_model_tag("churn", "owner", "alice", now=later(2))
        inside = session.get_model("churn")
    assert inside is not None
    assert inside.tags == {"team": "fraud", "owner": "alice"}
    with metadata_store.reader() as session:
        model = session.get_model("churn")
    assert model is not None
    assert model.tags == {"team": "fraud", "owner": "alice"}
    assert model.updated_at == later(2)
    with metadata_store.transaction() as session:
        session.delete_model_tag("churn", "team", now=later(3))
        session.delete_model_tag("churn", "never-set", now=later(4))
    with metadata_store.reader() as session:
        model = session.get_model("churn")
    assert model is not None
    assert model.tags == {"owner": "alice"}
    assert model.updated_at == later(4)


def test_delete_model_removes_everything_but_the_audit(metadata_store: MetadataStore) -> None:
    register(metadata_store, "churn", tags={"a": "b"}, metrics={"auc": 0.9}, params={"p": "1"})
    register(metadata_store, "churn")
    register(metadata_store, "fraud")
    with metadata_store.transaction() as session:
        session.set_model_tag("churn", "team", "risk", now=NOW)
        session.set_alias("churn", "production", 1)
        session.add_audit(
            NewAuditEntry(actor="alice", action="register", model="churn", timestamp=NOW)
        )
        session.delete_model("churn")
    with metadata_store.reader() as session:
        assert session.get_model("churn") is None
        assert [model.name for model in session.list_models()] == ["fraud"]
        with pytest.raises(ModelNotFoundError):
            session.list_versions("churn")
        assert [entry.model for entry in session.list_audit(model="churn")] == ["churn"]
    # The name is free again, and the new model starts from version 1 with nothing attached.
    recreated = register(metadata_store, "churn")
    assert recreated.version == 1
    assert recreated.tags == {}
    assert recreated.aliases == ()
    with metadata_store.reader() as session:
        model = session.get_model("churn")
        assert model is not None
        assert model.tags == {}
        assert model.aliases == {}
        assert session.get_alias("churn", "production") is None


# -- versions


def test_versions_are_numbered_in_order_and_never_reused(metadata_store: MetadataStore) -> None:
    assert [register(metadata_store, "churn").version for _ in range(3)] == [1, 2, 3]
    with metadata_store.transaction() as session:
        session.delete_version("churn", 3)
    with metadata_store.reader() as session:
        model = session.get_model("churn")
    assert model is not None
    assert model.latest_version == 2
    assert register(metadata_store, "churn").version == 4
    with metadata_store.transaction() as session:
        for number in (1, 2, 4):
            session.delete_version("churn", number)
    with metadata_store.reader() as session:
        model = session.get_model("churn")
    assert model is not None
    assert model.latest_version is None
    assert register(metadata_store, "churn").version == 5
    assert version_numbers(metadata_store, "churn") == [5]


def test_each_model_counts_its_own_versions(metadata_store: MetadataStore) -> None:
    register(metadata_store, "churn")
    register(metadata_store, "churn")
    assert register(metadata_store, "fraud").version == 1


def test_allocate_version_moves_updated_at(metadata_store: MetadataStore) -> None:
    create_model(metadata_store, "churn")
    with metadata_store.transaction() as session:
        assert session.allocate_version("churn", now=later(7)) == 1
        model = session.get_model("churn")
    assert model is not None
    assert model.updated_at == later(7)


def test_create_version_round_trips_every_field(metadata_store: MetadataStore) -> None:
    signature = {"inputs": [{"name": "age", "type": "double", "shape": [-1]}], "outputs": []}
    new = new_version(
        "churn",
        flavor="xgboost",
        created_by="bob",
        created_at=later(3),
        description="gradient boosted",
        tags={"team": "risk", "data": "2024-05"},
        metrics={"auc": 0.9125, "loss": -1.5, "count": 3.0, "worst": float("-inf")},
        params={"depth": "5", "lr": "0.1", "k" * 300: "a long key"},
        signature=signature,
    )
    with metadata_store.transaction() as session:
        session.ensure_model("churn", description="", tags={}, now=NOW)
        created = session.create_version(session.allocate_version("churn", now=NOW), new)
    signature["inputs"].clear()  # the store keeps its own copy
    expected = ModelVersion(
        name="churn",
        version=1,
        flavor="xgboost",
        status=VersionStatus.ACTIVE,
        artifact_key=new.artifact_key,
        manifest_digest=new.manifest_digest,
        created_by="bob",
        created_at=later(3),
        description="gradient boosted",
        tags={"team": "risk", "data": "2024-05"},
        metrics={"auc": 0.9125, "loss": -1.5, "count": 3.0, "worst": float("-inf")},
        params={"depth": "5", "lr": "0.1", "k" * 300: "a long key"},
        aliases=(),
        signature={"inputs": [{"name": "age", "type": "double", "shape": [-1]}], "outputs": []},
    )
    assert created == expected
    with metadata_store.reader() as session:
        stored = session.get_version("churn", 1)
    assert stored == expected


def test_version_without_signature_or_extras(metadata_store: MetadataStore) -> None:
    created = register(metadata_store, "churn")
    assert created.signature is None
    assert (created.tags, created.metrics, created.params, created.aliases) == ({}, {}, {}, ())


def test_get_version_is_none_when_absent(metadata_store: MetadataStore) -> None:
    register(metadata_store, "churn")
    with metadata_store.reader() as session:
        assert session.get_version("churn", 2) is None


def test_list_versions_newest_first(metadata_store: MetadataStore) -> None:
    for _ in range(4):
        register(metadata_store, "churn")
    register(metadata_store, "fraud")
    assert version_numbers(metadata_store, "churn") == [4, 3, 2, 1]
    create_model(metadata_store, "empty")
    assert version_numbers(metadata_store, "empty") == []


def test_set_version_status(metadata_store: MetadataStore) -> None:
    register(metadata_store, "churn")
    with metadata_store.transaction() as session:
        session.set_version_status("churn", 1, VersionStatus.ARCHIVED)
    with metadata_store.reader() as session:
        archived = session.get_version("churn", 1)
    assert archived is not None
    assert archived.status is VersionStatus.ARCHIVED
    with metadata_store.transaction() as session:
        session.set_version_status("churn", 1, VersionStatus.ACTIVE)
        active = session.get_version("churn", 1)
    assert active is not None
    assert active.status is VersionStatus.ACTIVE


def test_version_tags_set_replace_and_delete(metadata_store: MetadataStore) -> None:
    register(metadata_store, "churn", tags={"team": "risk"})
    register(metadata_store, "churn", tags={"team": "other"})
    with metadata_store.transaction() as session:
        session.set_version_tag("churn", 1, "team", "fraud")
        session.set_version_tag("churn", 1, "reviewed", "yes")
        first = session.get_version("churn", 1)
    assert first is not None
    assert first.tags == {"team": "fraud", "reviewed": "yes"}
    with metadata_store.transaction() as session:
        session.delete_version_tag("churn", 1, "team")
        session.delete_version_tag("churn", 1, "never-set")
    with metadata_store.reader() as session:
        first, second = session.get_version("churn", 1), session.get_version("churn", 2)
    assert first is not None
    assert second is not None
    assert first.tags == {"reviewed": "yes"}
    assert second.tags == {"team": "other"}


def test_delete_version_keeps_the_others(metadata_store: MetadataStore) -> None:
    for _ in range(3):
        register(metadata_store, "churn", metrics={"auc": 0.5}, tags={"t": "v"})
    with metadata_store.transaction() as session:
        session.delete_version("churn", 2)
    assert version_numbers(metadata_store, "churn") == [3, 1]
    with metadata_store.reader() as session:
        first = session.get_version("churn", 1)
        assert session.get_version("churn", 2) is None
    assert first is not None
    assert first.metrics == {"auc": 0.5}


# -- aliases


def test_aliases_point_move_and_disappear(metadata_store: MetadataStore) -> None:
    for _ in range(3):
        register(metadata_store, "churn")
    with metadata_store.transaction() as session:
        session.set_alias("churn", "production", 1)
        session.set_alias("churn", "champion", 1)
        session.set_alias("churn", "staging", 2)
    with metadata_store.reader() as session:
        assert session.get_alias("churn", "production") == 1
        assert session.get_alias("churn", "canary") is None
        first = session.get_version("churn", 1)
        model = session.get_model("churn")
    assert first is not None
    assert first.aliases == ("champion", "production")
    assert model is not None
    assert model.aliases == {"production": 1, "champion": 1, "staging": 2}
    with metadata_store.transaction() as session:
        session.set_alias("churn", "production", 3)
        session.delete_alias("churn", "champion")
        session.delete_alias("churn", "never-set")
    with metadata_store.reader() as session:
        versions = {version.version: version.aliases for version in session.list_versions("churn")}
        model = session.get_model("churn")
    assert versions == {3: ("production",), 2: ("staging",), 1: ()}
    assert model is not None
    assert model.aliases == {"production": 3, "staging": 2}


def test_deleting_a_version_removes_its_aliases(metadata_store: MetadataStore) -> None:
    register(metadata_store, "churn")
    register(metadata_store, "churn")
    with metadata_store.transaction() as session:
        session.set_alias("churn", "production", 2)
        session.set_alias("churn", "canary", 2)
        session.set_alias("churn", "staging", 1)
        session.delete_version("churn", 2)
    with metadata_store.reader() as session:
        assert session.get_alias("churn", "production") is None
        assert session.get_alias("churn", "canary") is None
        model = session.get_model("churn")
    assert model is not None
    assert model.aliases == {"staging": 1}


def test_alias_must_point_at_a_version_of_its_model(metadata_store: MetadataStore) -> None:
    register(metadata_store, "churn")
    register(metadata_store, "fraud")
    register(metadata_store, "fraud")
    with metadata_store.transaction() as session, pytest.raises(VersionNotFoundError):
        session.set_alias("churn", "production", 2)


# -- errors for what does not exist


MODEL_CALLS: dict[str, Callable[[MetadataSession], object]] = {
    "update_model": lambda s: s.update_model("ghost", description="", now=NOW),
    "set_model_tag": lambda s: s.set_model_tag("ghost", "k", "v", now=NOW),
    "delete_model_tag": lambda s: s.delete_model_tag("ghost", "k", now=NOW),
    "delete_model": lambda s: s.delete_model("ghost"),
    "allocate_version": lambda s: s.allocate_version("ghost", now=NOW),
    "create_version": lambda s: s.create_version(1, new_version("ghost")),
    "get_version": lambda s: s.get_version("ghost", 1),
    "list_versions": lambda s: s.list_versions("ghost"),
    "set_version_status": lambda s: s.set_version_status("ghost", 1, VersionStatus.ARCHIVED),
    "set_version_tag": lambda s: s.set_version_tag("ghost", 1, "k", "v"),
    "delete_version_tag": lambda s: s.delete_version_tag("ghost", 1, "k"),
    "delete_version": lambda s: s.delete_version("ghost", 1),
    "get_alias": lambda s: s.get_alias("ghost", "production"),
    "set_alias": lambda s: s.set_alias("ghost", "production", 1),
    "delete_alias": lambda s: s.delete_alias("ghost", "production"),
}

VERSION_CALLS: dict[str, Callable[[MetadataSession], object]] = {
    "set_version_status": lambda s: s.set_version_status("churn", 9, VersionStatus.ARCHIVED),
    "set_version_tag": lambda s: s.set_version_tag("churn", 9, "k", "v"),
    "delete_version_tag": lambda s: s.delete_version_tag("churn", 9, "k"),
    "delete_version": lambda s: s.delete_version("churn", 9),
    "set_alias": lambda s: s.set_alias("churn", "production", 9),
}


def outcomes(
    store: MetadataStore, calls: dict[str, Callable[[MetadataSession], object]]
) -> dict[str, object]:
    """Per method: the error it raised (class, model, version), each in its own transaction."""
    results: dict[str, object] = {}
    for method, call in calls.items():
        with store.transaction() as session:
            try:
                results[method] = ("returned", call(session))
            except ModelportError as error:
                results[method] = (type(error).__name__, error.model, error.version)
    return results


def test_unknown_model_raises(metadata_store: MetadataStore) -> None:
    register(metadata_store, "churn")
    expected = dict.fromkeys(MODEL_CALLS, ("ModelNotFoundError", "ghost", None))
    assert outcomes(metadata_store, MODEL_CALLS) == expected


def test_unknown_version_raises(metadata_store: MetadataStore) -> None:
    register(metadata_store, "churn")
    expected = dict.fromkeys(VERSION_CALLS, ("VersionNotFoundError", "churn", 9))
    assert outcomes(metadata_store, VERSION_CALLS) == expected
    assert version_numbers(metadata_store, "churn") == [1]


# -- audit trail


def audit(model: str, minute: int, **fields: Any) -> NewAuditEntry:
    return NewAuditEntry(
        actor="alice", action="set_alias", model=model, timestamp=later(minute), **fields
    )


def test_audit_entries_round_trip(metadata_store: MetadataStore) -> None:
    full = audit(
        "churn",
        1,
        version=3,
        target="production",
        before={"version": 2, "nested": {"list": [1, 2.5, None, "x"]}},
        after={"version": 3},
    )
    bare = audit("fraud", 2)
    with metadata_store.transaction() as session:
        session.add_audit(full)
        session.add_audit(bare)
    with metadata_store.reader() as session:
        entries = session.list_audit()
    assert [vars(entry) | {"id": 0} for entry in entries] == [
        vars(bare) | {"id": 0},
        vars(full) | {"id": 0},
    ]
    assert entries[0].id > entries[1].id


def test_list_audit_filters_newest_first(metadata_store: MetadataStore) -> None:
    with metadata_store.transaction() as session:
        for minute, model in enumerate(["churn", "fraud", "churn", "churn", "fraud"]):
            session.add_audit(audit(model, minute))

    def minutes(**query: Any) -> list[tuple[str, int]]:
        with metadata_store.reader() as session:
            entries = session.list_audit(**query)
        return [
            (entry.model, int((entry.timestamp - NOW).total_seconds() // 60)) for entry in entries
        ]

    assert minutes() == [("fraud", 4), ("churn", 3), ("churn", 2), ("fraud", 1), ("churn", 0)]
    assert minutes(model="churn") == [("churn", 3), ("churn", 2), ("churn", 0)]
    assert minutes(since=later(2)) == [("fraud", 4), ("churn", 3), ("churn", 2)]
    assert minutes(limit=2) == [("fraud", 4), ("churn", 3)]
    assert minutes(model="fraud", since=later(2), limit=5) == [("fraud", 4)]
    assert minutes(model="ghost") == []
    assert minutes(since=later(10)) == []


def test_list_audit_since_compares_instants(metadata_store: MetadataStore) -> None:
    with metadata_store.transaction() as session:
        session.add_audit(audit("churn", 0))
        session.add_audit(audit("churn", 60))
    tokyo = timezone(timedelta(hours=9))
    with metadata_store.reader() as session:
        entries = session.list_audit(since=later(30).astimezone(tokyo))
    assert [entry.timestamp for entry in entries] == [later(60)]


# -- transactions


class Boom(Exception):
    """Raised inside a transaction to make it fail."""


def fail_after_writing(store: MetadataStore) -> None:
    with store.transaction() as session:
        session.ensure_model("churn", description="", tags={"a": "b"}, now=NOW)
        number = session.allocate_version("churn", now=NOW)
        session.create_version(number, new_version("churn", metrics={"auc": 0.9}))
        session.set_alias("churn", "production", number)
        session.create_version(
            session.allocate_version("existing", now=later(1)), new_version("existing")
        )
        session.set_model_tag("existing", "touched", "yes", now=later(1))
        session.add_audit(audit("churn", 0))
        raise Boom


def test_failed_transaction_leaves_nothing(metadata_store: MetadataStore) -> None:
    register(metadata_store, "existing")
    with pytest.raises(Boom):
        fail_after_writing(metadata_store)
    with metadata_store.reader() as session:
        assert session.get_model("churn") is None
        assert session.list_audit() == []
        existing = session.get_model("existing")
    assert existing is not None
    assert existing.tags == {}
    assert existing.updated_at == NOW
    assert version_numbers(metadata_store, "existing") == [1]
    # The rolled-back allocation is not a reuse: number 2 was never committed.
    assert register(metadata_store, "existing").version == 2


def alias_missing_version(store: MetadataStore) -> None:
    with store.transaction() as session:
        session.ensure_model("churn", description="", tags={}, now=NOW)
        session.set_alias("churn", "production", 1)


def test_domain_error_rolls_back_the_transaction(metadata_store: MetadataStore) -> None:
    with pytest.raises(VersionNotFoundError):
        alias_missing_version(metadata_store)
    with metadata_store.reader() as session:
        assert session.get_model("churn") is None


def test_transaction_sees_its_own_writes(metadata_store: MetadataStore) -> None:
    with metadata_store.transaction() as session:
        session.ensure_model("churn", description="", tags={}, now=NOW)
        number = session.allocate_version("churn", now=NOW)
        session.create_version(number, new_version("churn"))
        session.set_alias("churn", "production", number)
        session.set_model_tag("churn", "team", "risk", now=later(1))
        model = session.get_model("churn")
        listed = session.list_versions("churn")
    assert model is not None
    assert (model.aliases, model.tags, model.latest_version) == (
        {"production": 1},
        {"team": "risk"},
        1,
    )
    assert [version.aliases for version in listed] == [("production",)]
    with metadata_store.transaction() as session:
        session.delete_alias("churn", "production")
        session.delete_model_tag("churn", "team", now=later(2))
        session.delete_version("churn", 1)
        model = session.get_model("churn")
        assert session.list_versions("churn") == []
    assert model is not None
    assert (model.aliases, model.tags, model.latest_version) == ({}, {}, None)


def test_reader_sees_committed_data(metadata_store: MetadataStore) -> None:
    register(metadata_store, "churn", tags={"team": "risk"})
    with metadata_store.reader() as session:
        model = session.get_model("churn")
        version = session.get_version("churn", 1)
    assert model is not None
    assert model.latest_version == 1
    assert version is not None
    assert version.tags == {"team": "risk"}


# -- search


def build_catalog(store: MetadataStore) -> list[ModelVersion]:
    """Seven versions of four models with overlapping tags, metrics, params and aliases;
    returns every version as the store reports it."""
    register(
        store,
        "churn",
        created_by="alice",
        tags={"team": "risk", "env": "prod"},
        metrics={"auc": 0.85},
        params={"depth": "3"},
    )
    register(
        store,
        "churn",
        created_by="bob",
        tags={"team": "risk"},
        metrics={"auc": 0.9, "f1": 0.7},
        params={"depth": "5"},
    )
    register(
        store,
        "churn",
        flavor="xgboost",
        tags={"team": "Risk"},
        metrics={"auc": 0.95},
        params={"depth": "5", "lr": "0.1"},
    )
    register(
        store,
        "Churn-EU",
        flavor="lightgbm",
        created_by="carol",
        tags={"team": "risk_eu"},
        metrics={"auc": 0.91},
    )
    register(store, "fraud", flavor="onnx", created_by="bob")
    register(
        store,
        "fraud",
        created_by="dave",
        tags={"team": "fraud%", "path": "a\\b"},
        metrics={"auc": 0.99, "loss": -0.5},
        params={"note": "it's 100%"},
    )
    register(store, "fraud", created_by="dave")
    register(store, "a_b", flavor="pyfunc")
    with store.transaction() as session:
        session.delete_version("fraud", 3)
        session.set_version_status("churn", 1, VersionStatus.ARCHIVED)
        session.set_alias("churn", "production", 2)
        session.set_alias("churn", "champion", 3)
        session.set_alias("churn", "staging", 3)
        session.set_alias("Churn-EU", "production", 1)
    with store.reader() as session:
        return [v for model in session.list_models() for v in session.list_versions(model.name)]


@pytest.fixture(scope="module")
def catalog(shared_metadata_store: MetadataStore) -> Catalog:
    """A store holding the catalog, shared by the search tests (which only read)."""
    return shared_metadata_store, build_catalog(shared_metadata_store)


def reference_search(catalog: Catalog, query: VersionFilter, limit: int) -> list[str]:
    """What ``search_versions`` must return: ``VersionFilter.matches`` over every version."""
    versions = catalog[1]
    return [version.ref for version in sort_versions([v for v in versions if query.matches(v)])][
        :limit
    ]


def search(catalog: Catalog, query: VersionFilter, limit: int = 100) -> list[str]:
    with catalog[0].reader() as session:
        return [version.ref for version in session.search_versions(query, max_results=limit)]


def refs(*short: str) -> list[str]:
    return [f"models:/{ref}" for ref in short]


SEARCHES: list[tuple[str, list[str]]] = [
    ("", refs("Churn-EU/1", "a_b/1", "churn/3", "churn/2", "churn/1", "fraud/2", "fraud/1")),
    ("name = 'churn'", refs("churn/3", "churn/2", "churn/1")),
    ("name != 'churn'", refs("Churn-EU/1", "a_b/1", "fraud/2", "fraud/1")),
    ("name LIKE 'churn%'", refs("churn/3", "churn/2", "churn/1")),
    ("name LIKE 'Churn%'", refs("Churn-EU/1")),
    ("name LIKE 'CHURN%'", []),
    ("name ILIKE 'CHURN%'", refs("Churn-EU/1", "churn/3", "churn/2", "churn/1")),
    ("name LIKE 'a_b'", refs("a_b/1")),
    ("name LIKE '_ra%'", refs("fraud/2", "fraud/1")),
    ("name LIKE 'churn'", refs("churn/3", "churn/2", "churn/1")),
    ("name LIKE 'chur'", []),
    ("version > 2", refs("churn/3")),
    ("version >= 2 AND version < 3", refs("churn/2", "fraud/2")),
    ("version = 1", refs("Churn-EU/1", "a_b/1", "churn/1", "fraud/1")),
    ("version != 1", refs("churn/3", "churn/2", "fraud/2")),
    ("version <= 1", refs("Churn-EU/1", "a_b/1", "churn/1", "fraud/1")),
    ("status = 'archived'", refs("churn/1")),
    ("status != 'active'", refs("churn/1")),
    ("flavor = 'sklearn'", refs("churn/2", "churn/1", "fraud/2")),
    ("flavor ILIKE 'SK%'", refs("churn/2", "churn/1", "fraud/2")),
    ("flavor LIKE '%gb%'", refs("Churn-EU/1", "churn/3")),
    ("created_by = 'alice'", refs("a_b/1", "churn/3", "churn/1")),
    ("created_by != 'alice'", refs("Churn-EU/1", "churn/2", "fraud/2", "fraud/1")),
    ("tags.team = 'risk'", refs("churn/2", "churn/1")),
    ("tags.team != 'risk'", refs("Churn-EU/1", "churn/3", "fraud/2")),
    ("tags.team LIKE 'risk%'", refs("Churn-EU/1", "churn/2", "churn/1")),
    ("tags.team ILIKE 'risk'", refs("churn/3", "churn/2", "churn/1")),
    ("tags.team LIKE 'fraud%'", refs("fraud/2")),
    ("tags.env = 'prod'", refs("churn/1")),
    ("tags.`team` = 'risk' AND tags.env != 'prod'", []),  # churn/2 has no env tag
    ("tags.missing = 'x'", []),
    ("tags.missing != 'x'", []),
    ("tags.path = 'a\\\\b'", refs("fraud/2")),
    ("metrics.auc > 0.9", refs("Churn-EU/1", "churn/3", "fraud/2")),
    ("metrics.auc >= 0.9", refs("Churn-EU/1", "churn/3", "churn/2", "fraud/2")),
    ("metrics.auc = 0.9", refs("churn/2")),
    ("metrics.auc != 0.9", refs("Churn-EU/1", "churn/3", "churn/1", "fraud/2")),
    ("metrics.auc < 0.9", refs("churn/1")),
    ("metrics.auc <= 0.85", refs("churn/1")),
    ("metrics.loss < 0", refs("fraud/2")),
    ("metrics.f1 > 0.5 AND metrics.auc > 0.85", refs("churn/2")),
    ("params.depth = '5'", refs("churn/3", "churn/2")),
    ("params.depth = 5", refs("churn/3", "churn/2")),
    ("params.lr = 0.1", refs("churn/3")),
    ("params.depth != '5'", refs("churn/1")),
    ("params.note LIKE '%100\\%'", refs("fraud/2")),
    ("alias = production", refs("Churn-EU/1", "churn/2")),
    ("alias != production", refs("a_b/1", "churn/3", "churn/1", "fraud/2", "fraud/1")),
    ("alias = canary", []),
    ("stage = production", refs("Churn-EU/1", "churn/2")),
    ("stage != staging", refs("Churn-EU/1", "a_b/1", "churn/2", "churn/1", "fraud/2", "fraud/1")),
    ("alias = champion AND stage = staging", refs("churn/3")),
    # archived is a status: the stage finds every archived version, as the status does.
    ("stage = archived", refs("churn/1")),
    ("alias = archived", refs("churn/1")),
    ("stage != archived", refs("Churn-EU/1", "a_b/1", "churn/3", "churn/2", "fraud/2", "fraud/1")),
    ("name = 'churn' AND metrics.auc > 0.88 AND tags.team = 'risk'", refs("churn/2")),
    ("name ILIKE '%churn%' AND alias = production AND flavor = 'lightgbm'", refs("Churn-EU/1")),
    ("flavor = 'sklearn' AND flavor = 'onnx'", []),
]


@pytest.mark.parametrize(
    ("text", "expected"), SEARCHES, ids=[text or "(all)" for text, _ in SEARCHES]
)
def test_search_versions(catalog: Catalog, text: str, expected: list[str]) -> None:
    query = parse_filter(text)
    assert search(catalog, query) == expected
    assert reference_search(catalog, query, 100) == expected


@pytest.mark.parametrize("limit", [0, 1, 2, 6, 7, 50])
def test_search_versions_max_results(catalog: Catalog, limit: int) -> None:
    everything = reference_search(catalog, VersionFilter(), 100)
    assert search(catalog, VersionFilter(), limit) == everything[:limit]
    query = parse_filter("version = 1")
    assert search(catalog, query, limit) == reference_search(catalog, query, limit)


def test_search_returns_whole_versions(catalog: Catalog) -> None:
    store, versions = catalog
    with store.reader() as session:
        found = session.search_versions(parse_filter("alias = champion"), max_results=10)
    assert found == [v for v in versions if v.ref == "models:/churn/3"]
    assert found[0].aliases == ("champion", "staging")


def test_like_has_no_escape_character(catalog: Catalog) -> None:
    # A backslash is an ordinary character in the search syntax: 'fraud\%' needs one.
    query = VersionFilter((Condition(kind="tag", op="LIKE", value="fraud\\%", key="team"),))
    assert search(catalog, query) == reference_search(catalog, query, 100) == []
    query = VersionFilter((Condition(kind="tag", op="LIKE", value="a\\b", key="path"),))
    assert search(catalog, query) == reference_search(catalog, query, 100) == refs("fraud/2")


def test_mismatched_value_types_compare_like_the_reference(catalog: Catalog) -> None:
    conditions = [
        Condition(kind="metric", op="=", value="0.9", key="auc"),
        Condition(kind="metric", op="!=", value="0.9", key="auc"),
        Condition(kind="tag", op="=", value=1.0, key="team"),
        Condition(kind="tag", op="!=", value=1.0, key="team"),
        Condition(kind="version", op="!=", value="1"),
        Condition(kind="alias", op="!=", value=1.0),
    ]
    for condition in conditions:
        query = VersionFilter((condition,))
        assert search(catalog, query) == reference_search(catalog, query, 100), condition


# Values drawn from the catalog's own (plus near misses), so conditions often match.
FIELD_TEXTS = {
    "name": ["churn", "Churn-EU", "fraud", "a_b", "CHURN", "churn-eu"],
    "status": ["active", "archived", "Active"],
    "flavor": ["sklearn", "xgboost", "onnx", "lightgbm", "pyfunc", "SKLEARN"],
    "created_by": ["alice", "bob", "carol", "dave", "Alice"],
    "tag": ["risk", "Risk", "risk_eu", "fraud%", "prod", "a\\b", "RISK"],
    "param": ["3", "5", "0.1", "it's 100%", "100"],
}
KEYS = {
    "tag": ["team", "env", "path", "missing"],
    "metric": ["auc", "f1", "loss", "missing"],
    "param": ["depth", "lr", "note", "missing"],
}
NUMBERS = [-0.5, 0.0, 0.7, 0.85, 0.9, 0.91, 0.95, 0.99, 1.0, 2.0, 3.0]


@st.composite
def like_patterns(draw: st.DrawFn, values: list[str]) -> str:
    """A piece of a real value, its characters sometimes swapped for ``_`` or another
    case, with ``%`` or ``_`` around it."""
    value = draw(st.sampled_from(values))
    start = draw(st.integers(0, len(value)))
    end = draw(st.integers(start, len(value)))
    middle = "".join(
        draw(st.sampled_from([char, char, "_", char.upper(), char.lower()]))
        for char in value[start:end]
    )
    edges = st.sampled_from(["", "", "%", "_", "%%"])
    return draw(edges) + middle + draw(edges)


@st.composite
def conditions(draw: st.DrawFn) -> Condition:
    kind = draw(st.sampled_from([*FIELD_TEXTS, "version", "metric", "alias", "stage"]))
    key = draw(st.sampled_from(KEYS[kind])) if kind in KEYS else None
    if kind in ("alias", "stage"):
        value: str | float = draw(
            st.sampled_from(["production", "staging", "archived", "champion", "canary"])
        )
        return Condition(kind=kind, op=draw(st.sampled_from(["=", "!="])), value=value)
    if kind in ("version", "metric"):
        value = draw(st.sampled_from(NUMBERS) | st.floats(-5, 5, allow_nan=False))
        return Condition(kind=kind, op=draw(st.sampled_from(NUMERIC_OPS)), value=value, key=key)
    op = draw(st.sampled_from(TEXT_OPS))
    if op in ("LIKE", "ILIKE"):
        value = draw(like_patterns(FIELD_TEXTS[kind]))
    else:
        value = draw(st.sampled_from(FIELD_TEXTS[kind]) | st.text("abcrRisk%_", max_size=4))
    return Condition(kind=kind, op=op, value=value, key=key)


@settings(max_examples=100, deadline=None)
@given(
    query=st.lists(conditions(), max_size=3).map(lambda cs: VersionFilter(tuple(cs))),
    limit=st.integers(1, 8),
)
def test_search_agrees_with_the_reference_semantics(
    catalog: Catalog,
    query: VersionFilter,
    limit: int,
) -> None:
    assert search(catalog, query, limit) == reference_search(catalog, query, limit)


# -- SQL back ends only


def test_sql_stores_refuse_nan_metrics(sql_url: str) -> None:
    # SQLite would store NaN as NULL; both SQL back ends refuse it the same way.
    store = SqlMetadataStore(sql_url)
    try:
        with pytest.raises(InvalidArgumentError, match=r"'loss'.*NaN") as raised:
            register(store, "churn", metrics={"auc": 0.9, "loss": float("nan")})
        assert raised.value.field == "metrics.loss"
        with store.reader() as session:
            assert session.get_model("churn") is None
    finally:
        store.close()
