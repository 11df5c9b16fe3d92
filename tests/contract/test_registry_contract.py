"""The registry contract: what ``RegistryService``'s public API does, asserted the same
way against (a) the local registry over SQLite, (b) the HTTP client against a live
``modelport ui`` over SQLite and (c) the same over the real PostgreSQL server.

One registry (and one control plane process) serves the whole module; each test works
on models of its own name. Every registry records the actor ``alice`` (the local user,
and the server's user when it runs without keys, on loopback).
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from sklearn.dummy import DummyClassifier
from sklearn.linear_model import LogisticRegression

from modelport.bootstrap import build_registry
from modelport.client import RegistryClient
from modelport.config import Settings
from modelport.domain.entities import VersionStatus
from modelport.errors import (
    AliasInUseError,
    AliasNotFoundError,
    GateFailedError,
    InvalidArgumentError,
    InvalidFilterError,
    InvalidNameError,
    InvalidReferenceError,
    MissingSignatureError,
    MissingSignatureWarning,
    ModelNotFoundError,
    VersionNotFoundError,
)
from modelport.package.options import PackageOptions
from modelport.registry.service import RegistryService
from testing_control_plane import control_plane
from testing_databases import fresh_postgres_schema, reachable_postgres_url

Registry = RegistryService | RegistryClient
BACKENDS = ["local", "http", pytest.param("http-postgres", marks=pytest.mark.postgres)]


def _data() -> tuple[pd.DataFrame, np.ndarray]:
    rng = np.random.default_rng(5)
    frame = pd.DataFrame({"a": rng.normal(size=300), "b": rng.normal(size=300)})
    return frame, (frame["a"] - frame["b"] > 0).to_numpy().astype(int)


@pytest.fixture(scope="module")
def data() -> tuple[pd.DataFrame, np.ndarray]:
    return _data()


@pytest.fixture(scope="module")
def holdout(tmp_path_factory: pytest.TempPathFactory) -> Path:
    frame, y = _data()
    path = tmp_path_factory.mktemp("holdout") / "test.parquet"
    frame.assign(y=y).to_parquet(path)
    return path


@pytest.fixture(scope="module", params=BACKENDS)
def registry(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory, holdout: Path
) -> Iterator[Registry]:
    """The registry under test, with the holdout gate guarding production."""
    home = tmp_path_factory.mktemp("registry") / "home"
    gates = {"MODELPORT_GATES__HOLDOUT": str(holdout), "MODELPORT_GATES__LABEL": "y"}
    if request.param == "local":
        settings = Settings(home=home, user="alice", gates={"holdout": str(holdout), "label": "y"})
        with build_registry(settings) as local:
            yield local
        return
    with fresh_postgres_schema(reachable_postgres_url()) as url:
        database = {"MODELPORT_DATABASE_URL": url} if request.param == "http-postgres" else {}
        with control_plane(home, MODELPORT_USER="alice", **gates, **database) as server:
            cache = tmp_path_factory.mktemp("cache")
            with RegistryClient(server.url, cache_dir=cache) as client:
                yield client


@pytest.fixture
def name() -> str:
    """A model name no other test uses."""
    return f"churn-{uuid.uuid4().hex[:8]}"


def good(registry: Registry, name: str, data: Any, **options: Any) -> Any:
    frame, y = data
    model = LogisticRegression().fit(frame, y)
    opts = PackageOptions(sample_input=frame, accelerate=False, **options)
    return registry.register(model, name, opts)


def dummy(registry: Registry, name: str, data: Any) -> Any:
    frame, y = data
    opts = PackageOptions(sample_input=frame, accelerate=False)
    return registry.register(DummyClassifier().fit(frame, y), name, opts)


def test_register_get_resolve_and_load(registry: Registry, name: str, data: Any) -> None:
    frame, y = data
    version = good(registry, name, data, metrics={"auc": 0.91}, params={"C": 1.0},
                   tags={"team": "risk"}, description="first")  # fmt: skip
    assert (version.name, version.version, version.flavor) == (name, 1, "sklearn")
    assert version.metrics == {"auc": 0.91} and version.params == {"C": "1.0"}
    assert version.tags == {"team": "risk"} and version.description == "first"
    assert version.created_by == "alice" and version.status is VersionStatus.ACTIVE
    assert registry.get_version(name, 1) == version
    assert registry.resolve(f"models:/{name}/1") == version
    assert registry.resolve(f"{name}/latest") == version
    assert registry.list_versions(name) == [version]
    model = registry.get_model(name)
    assert (model.name, model.latest_version, dict(model.aliases)) == (name, 1, {})
    assert name in [m.name for m in registry.list_models()]
    assert registry.get_manifest(version).flavor.name == "sklearn"
    with registry.load(f"{name}/1") as loaded:
        expected = LogisticRegression().fit(frame, y).predict(frame)
        np.testing.assert_array_equal(loaded.predict(frame), expected)
        assert loaded.version == version


def test_versions_are_numbered_and_listed_newest_first(
    registry: Registry, name: str, data: Any
) -> None:
    good(registry, name, data)
    second = good(registry, name, data)
    assert second.version == 2
    assert [v.version for v in registry.list_versions(name)] == [2, 1]
    assert registry.get_model(name).latest_version == 2


def test_aliases_move_resolve_and_delete(registry: Registry, name: str, data: Any) -> None:
    good(registry, name, data)
    good(registry, name, data)
    assert registry.set_alias(name, "champion", 1).aliases == ("champion",)
    assert registry.resolve(f"{name}@champion").version == 1
    move = registry.move(name, "champion", 2)
    assert (move.alias, move.previous, move.version.version) == ("champion", 1, 2)
    assert registry.get_model(name).aliases == {"champion": 2}
    registry.delete_alias(name, "champion")
    with pytest.raises(AliasNotFoundError) as missing:
        registry.resolve(f"{name}@champion")
    assert missing.value.model == name
    with pytest.raises(AliasNotFoundError):
        registry.delete_alias(name, "champion")


def test_promotion_runs_the_gates_and_a_skip_needs_a_reason(
    registry: Registry, name: str, data: Any
) -> None:
    good(registry, name, data)
    dummy(registry, name, data)
    assert registry.promote(name, 1, "production").aliases == ("production",)
    assert registry.promote(name, 2, "staging").aliases == ("staging",)
    with pytest.raises(GateFailedError, match="holdout: accuracy") as refused:
        registry.promote(name, 2, "production")
    assert (refused.value.model, refused.value.version) == (name, 2)
    results = {r["gate"]: r for r in refused.value.report["results"]}
    assert results["holdout"]["outcome"] == "failed"
    assert registry.get_model(name).aliases["production"] == 1
    with pytest.raises(InvalidArgumentError, match="needs a reason"):
        registry.promote(name, 2, "production", skip_gates=" ")
    registry.promote(name, 2, "production", skip_gates="hotfix approved by Bea",
                     archive_previous=True)  # fmt: skip
    entry = registry.get_audit_log(name, limit=1)[0]
    assert (entry.action, entry.target, entry.version, entry.actor) == (
        "stage.promote", "production", 2, "alice")  # fmt: skip
    assert entry.after is not None and entry.after["skip_gates"] == "hotfix approved by Bea"
    assert registry.get_version(name, 1).status is VersionStatus.ARCHIVED


def test_a_version_without_a_signature_warns_then_needs_force_for_production(
    registry: Registry, name: str, data: Any
) -> None:
    frame, y = data
    registry.register(LogisticRegression().fit(frame, y), name, PackageOptions(accelerate=False))
    with pytest.warns(MissingSignatureWarning, match="has no signature"):
        registry.set_alias(name, "champion", 1)
    with pytest.raises(MissingSignatureError) as refused:
        registry.promote(name, 1, "production", skip_gates="no holdout yet")
    assert (refused.value.model, refused.value.version) == (name, 1)
    registry.promote(name, 1, "production", force=True, skip_gates="no holdout yet")
    entry = registry.get_audit_log(name, limit=1)[0]
    assert entry.after is not None and entry.after["forced"] == ["signature"]


def test_tags_and_descriptions(registry: Registry, name: str, data: Any) -> None:
    good(registry, name, data, tags={"team": "risk"})
    updated = registry.set_version_tags(name, 1, {"reviewed": "yes", "team": "fraud"})
    assert updated.tags == {"team": "fraud", "reviewed": "yes"}
    assert registry.delete_version_tags(name, 1, ["team", "absent"]).tags == {"reviewed": "yes"}
    assert registry.set_model_tags(name, {"owner": "bea"}).tags == {"owner": "bea"}
    assert registry.update_model(name, description="churn model").description == "churn model"
    assert registry.get_model(name).description == "churn model"


def test_search_with_the_filter_syntax(registry: Registry, name: str, data: Any) -> None:
    good(registry, name, data, metrics={"auc": 0.8})
    good(registry, name, data, metrics={"auc": 0.95})
    found = registry.search_versions(f"name = '{name}' AND metrics.auc > 0.9")
    assert [(v.name, v.version) for v in found] == [(name, 2)]
    assert len(registry.search_versions(f"name = '{name}'", max_results=1)) == 1
    with pytest.raises(InvalidFilterError):
        registry.search_versions("metrics.auc >> 1")
    with pytest.raises(InvalidArgumentError):
        registry.search_versions(None, max_results=0)


def test_archive_and_delete(registry: Registry, name: str, data: Any) -> None:
    good(registry, name, data)
    good(registry, name, data)
    registry.set_alias(name, "champion", 1)
    with pytest.raises(AliasInUseError) as in_use:
        registry.delete_version(name, 1)
    assert in_use.value.aliases == ("champion",) and in_use.value.version == 1
    archived = registry.archive_version(name, 1)
    assert archived.status is VersionStatus.ARCHIVED and archived.aliases == ()
    assert [
        v.version for v in registry.search_versions(f"name = '{name}' AND status = archived")
    ] == [1]
    registry.delete_version(name, 1)
    with pytest.raises(VersionNotFoundError):
        registry.get_version(name, 1)
    registry.delete_model(name)
    with pytest.raises(ModelNotFoundError) as gone:
        registry.get_model(name)
    assert gone.value.model == name


def test_the_audit_trail_records_every_change(registry: Registry, name: str, data: Any) -> None:
    before = datetime.now(UTC) - timedelta(seconds=1)
    good(registry, name, data)
    registry.set_alias(name, "champion", 1)
    registry.delete_alias(name, "champion")
    entries = registry.get_audit_log(name)
    assert [e.action for e in entries][:2] == ["alias.delete", "alias.set"]
    assert {e.actor for e in entries} == {"alice"}
    assert {e.model for e in entries} == {name}
    assert [e.id for e in entries] == sorted((e.id for e in entries), reverse=True)
    assert len(registry.get_audit_log(name, since=before, limit=2)) == 2
    assert registry.get_audit_log(name, since=datetime.now(UTC) + timedelta(hours=1)) == []


def test_errors_are_the_same_classes(registry: Registry, name: str, data: Any) -> None:
    with pytest.raises(ModelNotFoundError):
        registry.get_model(name)
    with pytest.raises(ModelNotFoundError):
        registry.list_versions(name)
    with pytest.raises(InvalidReferenceError):
        registry.resolve("churn@")
    with pytest.raises(InvalidNameError):
        good(registry, "not a name!", data)
    good(registry, name, data)
    with pytest.raises(VersionNotFoundError) as missing:
        registry.get_version(name, 9)
    assert (missing.value.model, missing.value.version) == (name, 9)
    with pytest.raises(InvalidArgumentError):
        registry.get_audit_log(name, limit=0)
    assert registry.list_models() == sorted(registry.list_models(), key=lambda m: m.name)
