"""The registry end to end: register, resolve, load, aliases, stages, search, audit."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from modelport.domain.entities import VersionStatus
from modelport.errors import (
    AliasInUseError,
    AliasNotFoundError,
    InvalidArgumentError,
    InvalidNameError,
    InvalidSampleError,
    ModelNotFoundError,
    VersionNotFoundError,
)
from modelport.package.options import PackageOptions
from modelport.registry.service import RegistryService

Data = tuple[pd.DataFrame, np.ndarray]


def register(registry: RegistryService, model: Any, data: Data, **options: Any) -> Any:
    frame, _ = data
    return registry.register(model, "churn", PackageOptions(sample_input=frame, **options))


def test_register_then_load_gives_the_same_predictions(
    registry: RegistryService, churn_model: Any, churn_data: Data
) -> None:
    frame, _ = churn_data
    version = register(
        registry, churn_model, churn_data,
        metrics={"auc": 0.91}, params={"C": 1.0}, tags={"team": "risk"}, description="first",
    )  # fmt: skip
    assert (version.name, version.version, version.flavor) == ("churn", 1, "sklearn")
    assert version.metrics == {"auc": 0.91} and version.params == {"C": "1.0"}
    assert version.created_by == "alice"
    with registry.load("models:/churn/1") as loaded:
        np.testing.assert_array_equal(loaded.predict(frame), churn_model.predict(frame))
        np.testing.assert_allclose(loaded.predict_proba(frame), churn_model.predict_proba(frame))
        assert [c.name for c in loaded.signature.inputs.columns] == list(frame.columns)
        example = loaded.input_example()
        assert len(example) == 5
        assert loaded.predict(example).shape == (5,)
        stats = loaded.reference_stats()
        assert set(stats["features"]) == set(frame.columns)
        assert stats["predictions"]["outputs"]["kind"] == "categorical"
        assert set(stats["predictions"]["probabilities"]) == {"0", "1"}
        assert loaded.manifest.lineage.training_data.rows == len(frame)


def test_predict_validates_against_the_signature(
    registry: RegistryService, churn_model: Any, churn_data: Data
) -> None:
    frame, _ = churn_data
    register(registry, churn_model, churn_data)
    with registry.load("churn/latest") as loaded:
        records = frame.head(2)[list(reversed(frame.columns))].to_dict(orient="records")
        np.testing.assert_array_equal(loaded.predict(records), churn_model.predict(frame.head(2)))
        from modelport.errors import InvalidInputError

        with pytest.raises(InvalidInputError, match="missing required column 'tenure'"):
            loaded.predict(frame.drop(columns="tenure"))


def test_versions_are_numbered_and_never_reused(
    registry: RegistryService, churn_model: Any, churn_data: Data
) -> None:
    numbers = [register(registry, churn_model, churn_data).version for _ in range(3)]
    assert numbers == [1, 2, 3]
    assert [v.version for v in registry.list_versions("churn")] == [3, 2, 1]
    assert registry.resolve("churn/latest").version == 3
    registry.delete_version("churn", 3)
    assert registry.resolve("churn/latest").version == 2
    assert register(registry, churn_model, churn_data).version == 4


def test_aliases_move_and_resolve(
    registry: RegistryService, churn_model: Any, churn_data: Data
) -> None:
    register(registry, churn_model, churn_data)
    register(registry, churn_model, churn_data)
    registry.set_alias("churn", "champion", 1)
    assert registry.resolve("churn@champion").version == 1
    assert registry.version_number("churn@champion") == 1  # what the server polls
    registry.set_alias("churn", "champion", 2)
    assert registry.resolve("churn@champion").version == 2
    assert registry.version_number("churn@champion") == 2
    assert registry.version_number("churn/latest") == 2
    with pytest.raises(AliasNotFoundError, match="has no alias 'challenger'"):
        registry.version_number("churn@challenger")
    with pytest.raises(ModelNotFoundError):
        registry.version_number("ghost@champion")
    assert registry.get_version("churn", 1).aliases == ()
    assert registry.get_model("churn").aliases == {"champion": 2}
    registry.delete_alias("churn", "champion")
    with pytest.raises(AliasNotFoundError, match="has no alias 'champion'"):
        registry.resolve("churn@champion")
    with pytest.raises(AliasNotFoundError):
        registry.delete_alias("churn", "champion")
    with pytest.raises(VersionNotFoundError, match="has no version 9"):
        registry.set_alias("churn", "champion", 9)
    with pytest.raises(InvalidNameError):
        registry.set_alias("churn", "bad/alias", 1)


def test_stages_promote_and_archive(
    registry: RegistryService, churn_model: Any, churn_data: Data
) -> None:
    for _ in range(2):
        register(registry, churn_model, churn_data)
    registry.promote("churn", 1, "production")
    registry.promote("churn", 2, "staging")
    with pytest.raises(AliasInUseError, match="in production"):
        registry.archive_version("churn", 1)
    registry.promote("churn", 2, "production", archive_previous=True)
    assert registry.resolve("churn@production").version == 2
    assert registry.get_version("churn", 1).status is VersionStatus.ARCHIVED
    # Archived is a status, not a pointer at one version.
    with pytest.raises(AliasNotFoundError, match="status = archived"):
        registry.resolve("churn@archived")
    # Rolling back brings the archived version back into use.
    registry.promote("churn", 1, "production")
    assert registry.get_version("churn", 1).status is VersionStatus.ACTIVE
    assert registry.resolve("churn@production").version == 1


def test_a_stage_change_says_everything_it_did(
    registry: RegistryService, churn_model: Any, churn_data: Data
) -> None:
    for _ in range(3):
        register(registry, churn_model, churn_data)
    registry.promote("churn", 1, "production")
    registry.set_alias("churn", "champion", 1)
    registry.set_alias("churn", "baseline", 1)
    change = registry.move("churn", "production", 2, archive_previous=True)
    assert (change.alias, change.version.version, change.previous) == ("production", 2, 1)
    assert change.version.aliases == ("production",)
    assert [a.to_dict() for a in change.archived] == [
        {"version": 1, "removed_aliases": ["baseline", "champion"]}
    ]
    assert registry.get_version("churn", 1).aliases == ()

    registry.move("churn", "archived", 3)
    back = registry.move("churn", "staging", 3)
    assert (back.restored, back.previous, back.archived) == (True, None, ())

    # Archiving twice: both stay archived, and both are found by stage and by status.
    moved = registry.move("churn", "shadow", 3)
    assert (moved.alias, moved.previous, moved.archived) == ("shadow", None, ())
    assert registry.move("churn", "shadow", 2).previous == 3
    registry.move("churn", "shadow", 3)
    registry.delete_alias("churn", "staging")
    archived = registry.move("churn", "archived", 3)
    assert archived.archived[0].removed_aliases == ("shadow",)
    by_stage = [v.version for v in registry.search_versions("stage = archived")]
    by_status = [v.version for v in registry.search_versions("status = archived")]
    assert by_stage == by_status == [3, 1]
    with pytest.raises(InvalidArgumentError, match="'archived' is a status, not an alias"):
        registry.delete_alias("churn", "archived")
    with pytest.raises(InvalidArgumentError, match="applies to the stages"):
        registry.move("churn", "shadow", 2, archive_previous=True)


def test_deleting_an_aliased_version_is_refused_and_loses_nothing(
    registry: RegistryService, churn_model: Any, churn_data: Data
) -> None:
    register(registry, churn_model, churn_data)
    registry.set_alias("churn", "champion", 1)
    with pytest.raises(AliasInUseError, match="champion") as info:
        registry.delete_version("churn", 1)
    assert info.value.aliases == ("champion",)
    assert registry.load("churn/1").predict is not None
    assert len(registry.artifacts.keys()) == 1
    registry.delete_alias("churn", "champion")
    registry.delete_version("churn", 1)
    assert registry.artifacts.keys() == []
    with pytest.raises(VersionNotFoundError):
        registry.get_version("churn", 1)


def test_deleting_a_model(registry: RegistryService, churn_model: Any, churn_data: Data) -> None:
    register(registry, churn_model, churn_data)
    register(registry, churn_model, churn_data)
    registry.promote("churn", 2, "production")
    with pytest.raises(AliasInUseError, match="production"):
        registry.delete_model("churn")
    registry.delete_alias("churn", "production")
    registry.delete_model("churn")
    assert registry.list_models() == []
    assert registry.artifacts.keys() == []
    with pytest.raises(ModelNotFoundError, match="'churn' does not exist"):
        registry.get_model("churn")
    assert registry.get_audit_log("churn")[0].action == "model.delete"


def test_search_by_metric_tag_stage_and_name(
    registry: RegistryService, churn_model: Any, churn_data: Data
) -> None:
    register(registry, churn_model, churn_data, metrics={"auc": 0.85}, tags={"team": "risk"})
    register(registry, churn_model, churn_data, metrics={"auc": 0.93}, tags={"team": "growth"})
    registry.promote("churn", 2, "production")
    found = registry.search_versions
    assert [v.version for v in found("metrics.auc > 0.9")] == [2]
    assert [v.version for v in found("tags.team = 'risk'")] == [1]
    assert [v.version for v in found("stage = production")] == [2]
    assert [v.version for v in found("name = churn")] == [2, 1]
    assert [v.version for v in found("name LIKE 'ch%' AND metrics.auc >= 0.85")] == [2, 1]
    assert found("name = fraud") == []


def test_audit_trail_records_who_what_before_and_after(
    registry: RegistryService, churn_model: Any, churn_data: Data
) -> None:
    register(registry, churn_model, churn_data)
    register(registry, churn_model, churn_data)
    registry.set_alias("churn", "champion", 1)
    registry.set_alias("churn", "champion", 2)
    registry.promote("churn", 2, "production")
    entries = registry.get_audit_log("churn")
    assert [e.action for e in entries] == [
        "stage.promote", "alias.set", "alias.set", "version.create", "version.create",
        "model.create",
    ]  # fmt: skip
    moved = entries[1]
    assert (moved.actor, moved.target, moved.version) == ("alice", "champion", 2)
    assert moved.before == {"version": 1} and moved.after == {"version": 2}
    assert registry.get_audit_log("churn", limit=2)[1].action == "alias.set"


def test_lookups_of_things_that_do_not_exist(registry: RegistryService) -> None:
    with pytest.raises(ModelNotFoundError):
        registry.resolve("ghost/1")
    with pytest.raises(ModelNotFoundError):
        registry.list_versions("ghost")
    with pytest.raises(InvalidNameError):
        registry.get_model("../etc")


def test_invalid_names_and_empty_samples_register_nothing(
    registry: RegistryService, churn_model: Any, churn_data: Data
) -> None:
    frame, _ = churn_data
    with pytest.raises(InvalidNameError):
        registry.register(churn_model, "bad name", PackageOptions(sample_input=frame))
    with pytest.raises(InvalidSampleError, match="no rows"):
        registry.register(churn_model, "churn", PackageOptions(sample_input=frame.iloc[:0]))
    assert registry.list_models() == []
    assert registry.artifacts.keys() == []


def test_register_model_files(
    registry: RegistryService, churn_model: Any, churn_data: Data, tmp_path: Path
) -> None:
    import joblib

    frame, _ = churn_data
    joblib.dump(churn_model, tmp_path / "model.joblib")
    version = registry.register(
        tmp_path / "model.joblib", "churn", PackageOptions(sample_input=frame)
    )
    with registry.load(version.ref) as loaded:
        np.testing.assert_array_equal(loaded.predict(frame), churn_model.predict(frame))
