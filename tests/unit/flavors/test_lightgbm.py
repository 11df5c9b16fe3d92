"""The LightGBM flavor: text-format round trips, imports, detection and refusals."""

from __future__ import annotations

import json
import re
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import lightgbm as lgb
import numpy as np
import pandas as pd
import pytest
from sklearn.linear_model import LogisticRegression

from flavor_checks import assert_same_predictions
from modelport.domain.predictor import ModelPredictor
from modelport.errors import (
    CorruptModelFileError,
    InvalidArgumentError,
    MissingDependencyError,
    UnknownFlavorError,
    UnsupportedOperationError,
)
from modelport.flavors.base import LoadContext, SaveContext, SavedFlavor
from modelport.flavors.catalog import FlavorCatalog
from modelport.flavors.lightgbm import LightGBMFlavor
from modelport.flavors.lightgbm_text import check_model_text
from modelport.flavors.sklearn import SklearnFlavor
from modelport.flavors.xgboost import XGBoostFlavor

FLAVOR = LightGBMFlavor()
SMALL = {"n_estimators": 5, "num_leaves": 5, "min_child_samples": 3, "verbose": -1}


def _frame(rows: int = 120) -> pd.DataFrame:
    rng = np.random.default_rng(21)
    frame = pd.DataFrame(rng.normal(size=(rows, 3)), columns=["tenure", "spend", "visits"])
    frame["plan"] = pd.Categorical(rng.choice(["basic", "gold", "team"], rows))
    return frame


def _numeric(frame: pd.DataFrame) -> pd.DataFrame:
    return frame[["tenure", "spend", "visits"]]


@pytest.fixture
def package(tmp_path: Path) -> Path:
    directory = tmp_path / "package"
    directory.mkdir()
    return directory


def _round_trip(model: Any, directory: Path) -> tuple[SavedFlavor, ModelPredictor]:
    saved = FLAVOR.save(model, directory, SaveContext())
    return saved, FLAVOR.load(directory, saved.spec, LoadContext())


# ----------------------------------------------------------------------- properties


def test_flavor_identity() -> None:
    assert (FLAVOR.name, FLAVOR.framework, FLAVOR.extra) == ("lightgbm", "lightgbm", "lightgbm")
    assert FLAVOR.suffixes == (".txt",)


def test_owns_lightgbm_models_only() -> None:
    frame = _frame()
    model = lgb.LGBMRegressor(**SMALL).fit(_numeric(frame), frame["spend"])
    assert FLAVOR.owns(model)
    assert FLAVOR.owns(model.booster_)
    assert not FLAVOR.owns(lgb.Dataset(_numeric(frame)))  # data, not a model
    assert not FLAVOR.owns(LogisticRegression())


# ---------------------------------------------------------------------- round trips


def test_binary_classifier_with_string_labels_and_categories(package: Path) -> None:
    frame = _frame()
    labels = pd.Series(np.where((frame["plan"] == "gold") | (frame["spend"] > 1), "yes", "no"))
    model = lgb.LGBMClassifier(**SMALL).fit(frame, labels)
    saved, predictor = _round_trip(model, package)

    assert saved.spec["model_class"] == "LGBMClassifier"
    assert saved.spec["file"] == "model.txt"
    assert saved.spec["supports_proba"] is True
    assert saved.spec["classes"] == ["no", "yes"]
    assert saved.spec["classes_dtype"] == str(model.classes_.dtype)
    json.dumps(saved.spec)
    assert saved.libraries[0] == "lightgbm"
    assert sorted(p.name for p in package.iterdir()) == ["model.txt"]
    assert "pandas_categorical" in (package / "model.txt").read_text()
    assert_same_predictions(model, predictor, frame, exact_proba=True)
    assert predictor.predict_proba(frame).shape == (120, 2)


def test_multiclass_integer_labels_on_arrays(package: Path) -> None:
    frame = _numeric(_frame())
    features = frame.to_numpy()
    labels = np.array([3, 5, 9])[np.digitize(features[:, 0], [-0.5, 0.5])]
    model = lgb.LGBMClassifier(**SMALL).fit(features, labels)
    saved, predictor = _round_trip(model, package)

    assert saved.spec["classes"] == [3, 5, 9]
    assert all(type(label) is int for label in saved.spec["classes"])
    assert_same_predictions(model, predictor, features, exact_proba=True)
    assert predictor.predict_proba(features).shape == (120, 3)


def test_multiclass_string_labels_on_frames(package: Path) -> None:
    frame = _frame()
    labels = np.array(["low", "mid", "high"])[np.digitize(frame["visits"], [-0.5, 0.5])]
    model = lgb.LGBMClassifier(**SMALL).fit(frame, labels)
    _, predictor = _round_trip(model, package)

    assert_same_predictions(model, predictor, frame, exact_proba=True)
    assert predictor.predict(frame).dtype.kind == "U"


def test_classifier_fitted_on_a_frame_accepts_arrays(package: Path) -> None:
    frame = _numeric(_frame())
    model = lgb.LGBMClassifier(**SMALL).fit(frame, frame["spend"] > 0)
    _, predictor = _round_trip(model, package)

    np.testing.assert_array_equal(predictor.predict(frame.to_numpy()), model.predict(frame))
    columns = {name: frame[name].to_numpy() for name in frame.columns}
    np.testing.assert_array_equal(predictor.predict(columns), model.predict(frame))


def test_regressor_round_trips_and_has_no_proba(package: Path) -> None:
    frame = _frame()
    model = lgb.LGBMRegressor(**SMALL).fit(frame, frame["spend"] * 2)
    saved, predictor = _round_trip(model, package)

    assert saved.spec == {
        "file": "model.txt",
        "model_class": "LGBMRegressor",
        "supports_proba": False,
    }
    assert_same_predictions(model, predictor, frame, exact_proba=True)
    assert not predictor.supports_proba
    with pytest.raises(UnsupportedOperationError, match="not a classifier"):
        predictor.predict_proba(frame)


def test_ranker_and_booster_round_trip(package: Path, tmp_path: Path) -> None:
    frame = _numeric(_frame())
    ranker = lgb.LGBMRanker(**SMALL).fit(frame, (frame["visits"] > 0).astype(int), group=[12] * 10)
    saved, predictor = _round_trip(ranker, package)
    assert saved.spec["model_class"] == "LGBMRanker"
    assert_same_predictions(ranker, predictor, frame, exact_proba=True)

    booster = lgb.train(
        {"objective": "binary", "verbose": -1, "num_leaves": 5},
        lgb.Dataset(frame, label=(frame["spend"] > 0).astype(int)),
        num_boost_round=4,
    )
    second = tmp_path / "second"
    second.mkdir()
    saved, predictor = _round_trip(booster, second)
    assert saved.spec["model_class"] == "Booster"
    assert saved.libraries == ("lightgbm", "numpy", "scipy")
    assert_same_predictions(booster, predictor, frame, exact_proba=True)
    assert not predictor.supports_proba


def test_early_stopped_model_keeps_its_best_iteration(package: Path) -> None:
    frame = _numeric(_frame())
    labels = (frame["spend"] + frame["visits"] > 0).astype(int)
    model = lgb.LGBMClassifier(**{**SMALL, "n_estimators": 60}).fit(
        frame[:80],
        labels[:80],
        eval_X=(frame[80:],),
        eval_y=(labels[80:],),
        callbacks=[lgb.early_stopping(3, verbose=False)],
    )
    assert 0 < model.best_iteration_ < 60
    _, predictor = _round_trip(model, package)
    assert_same_predictions(model, predictor, frame, exact_proba=True)


def test_custom_objective_classifier_is_refused(package: Path) -> None:
    def logloss(labels: np.ndarray, scores: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        probability = 1.0 / (1.0 + np.exp(-scores))
        return probability - labels, probability * (1.0 - probability)

    frame = _numeric(_frame())
    model = lgb.LGBMClassifier(**SMALL, objective=logloss).fit(frame, frame["spend"] > 0)
    with pytest.raises(InvalidArgumentError, match="custom objective"):
        FLAVOR.save(model, package, SaveContext())


def test_unfitted_model_cannot_be_saved(package: Path) -> None:
    with pytest.raises(InvalidArgumentError, match="LGBMClassifier"):
        FLAVOR.save(lgb.LGBMClassifier(), package, SaveContext())
    assert list(package.iterdir()) == []


def test_load_refuses_a_bad_spec(package: Path) -> None:
    frame = _numeric(_frame())
    model = lgb.LGBMClassifier(**SMALL).fit(frame, frame["spend"] > 0)
    saved = FLAVOR.save(model, package, SaveContext())
    with pytest.raises(CorruptModelFileError, match="model class"):
        FLAVOR.load(package, {**saved.spec, "model_class": "os.system"}, LoadContext())
    with pytest.raises(CorruptModelFileError, match="labels"):
        FLAVOR.load(package, {**saved.spec, "classes_dtype": "no-such-dtype"}, LoadContext())
    with pytest.raises(CorruptModelFileError, match="file name"):
        FLAVOR.load(package, {**saved.spec, "file": "../model.txt"}, LoadContext())


# --------------------------------------------------------------------------- imports


def test_import_of_a_file_saved_by_lightgbm(tmp_path: Path, package: Path) -> None:
    frame = _frame()
    model = lgb.LGBMRegressor(**SMALL).fit(frame, frame["spend"])
    source = tmp_path / "exported.txt"
    model.booster_.save_model(source)

    assert FLAVOR.reads(source)
    saved = FLAVOR.import_file(source, package, SaveContext())
    assert saved.spec == {"file": "model.txt", "model_class": "Booster", "supports_proba": False}
    assert (package / "model.txt").read_bytes() == source.read_bytes()
    predictor = FLAVOR.load(package, saved.spec, LoadContext())
    assert_same_predictions(model, predictor, frame, exact_proba=True)


def test_import_of_a_package_saved_by_the_flavor(tmp_path: Path, package: Path) -> None:
    frame = _frame()
    model = lgb.LGBMClassifier(**SMALL).fit(frame, frame["spend"] > 0)
    first = tmp_path / "first"
    first.mkdir()
    FLAVOR.save(model, first, SaveContext())

    saved = FLAVOR.import_file(first / "model.txt", package, SaveContext())
    predictor = FLAVOR.load(package, saved.spec, LoadContext())
    # Imported files carry no labels: the booster's raw output is P(class 1).
    np.testing.assert_array_equal(predictor.predict(frame), model.predict_proba(frame)[:, 1])


def _model_text(tmp_path: Path) -> str:
    frame = _frame()
    labels = np.array(["a", "b", "c"])[np.digitize(frame["visits"], [-0.5, 0.5])]
    model = lgb.LGBMClassifier(**SMALL).fit(frame, labels)
    model.booster_.save_model(tmp_path / "whole.txt")
    return (tmp_path / "whole.txt").read_text()


def _corrupt_texts(text: str) -> dict[str, str]:
    """Damaged model texts; several of them make LightGBM itself abort the process."""
    first_tree = text.index("Tree=0")
    tree_cut = text.index("leaf_value=", text.index("Tree=3")) + 20
    return {
        "empty.txt": "",
        "header-only.txt": text[:first_tree],
        "cut-in-tree.txt": text[:tree_cut],
        "cut-in-parameters.txt": text[: text.index("[boosting: ") + 3],
        "no-final-newline.txt": text[: text.index("end of parameters") + 17],
        "short-array.txt": re.sub(r"(left_child=\S+) \S+", r"\1", text, count=1),
        "child-out-of-range.txt": re.sub(r"left_child=-?\d+", "left_child=999", text, count=1),
        "child-is-root.txt": re.sub(r"right_child=\S+", "right_child=0", text, count=1),
        "feature-out-of-range.txt": re.sub(r"split_feature=\d+", "split_feature=77", text, count=1),
        "not-a-number.txt": text.replace("leaf_value=", "leaf_value=x", 1),
        "overflow.txt": re.sub(r"leaf_value=\S+", "leaf_value=1e999", text, count=1),
        "extra-equals.txt": re.sub(r"internal_value=(\S+)", r"internal_value=\1=2", text, count=1),
        "crlf.txt": text.replace("\n", "\r\n"),
        "bad-tree-sizes.txt": re.sub(r"tree_sizes=(\d+)", r"tree_sizes=1\1", text, count=1),
        "no-tree-per-iteration.txt": text.replace(
            "num_tree_per_iteration=3", "num_tree_per_iteration="
        ),
        "empty-objective.txt": re.sub(r"objective=.*", "objective=", text, count=1),
        "bad-parameter.txt": text.replace("[boosting: gbdt]", "[boosting", 1),
    }


def test_damaged_model_texts_are_refused_by_name(tmp_path: Path, package: Path) -> None:
    for name, content in _corrupt_texts(_model_text(tmp_path)).items():
        source = tmp_path / name
        source.write_bytes(content.encode())
        with pytest.raises(CorruptModelFileError) as caught:
            FLAVOR.import_file(source, package, SaveContext())
        assert name in str(caught.value), name
        assert list(package.iterdir()) == [], name


@pytest.mark.parametrize(
    ("params", "feature"),
    [
        ({"objective": "regression"}, "num_cat=0"),
        ({"objective": "regression", "linear_tree": True}, "is_linear=1"),
        ({"objective": "regression", "min_data_in_leaf": 200}, "num_leaves=1\n"),
        ({"objective": "multiclass", "num_class": 3}, "num_class=3"),
        ({"objective": "binary"}, "num_cat=1"),  # a categorical split
    ],
)
def test_check_accepts_what_lightgbm_writes(
    tmp_path: Path, params: dict[str, Any], feature: str
) -> None:
    frame = _numeric(_frame()) if params.get("linear_tree") else _frame()
    labels = (frame["spend"] > 0).astype(int) + (frame["visits"] > 1)
    if params["objective"] == "binary":
        labels = (frame["plan"] == "gold").astype(int)
    dataset = lgb.Dataset(frame, label=labels, params={"verbose": -1})
    booster = lgb.train({"verbose": -1, "min_data_in_leaf": 3, **params}, dataset, 3)
    source = tmp_path / "model.txt"
    booster.save_model(source)
    assert feature in source.read_text()

    check_model_text(source)
    (tmp_path / "package").mkdir()
    saved = FLAVOR.import_file(source, tmp_path / "package", SaveContext())
    predictor = FLAVOR.load(tmp_path / "package", saved.spec, LoadContext())
    np.testing.assert_array_equal(predictor.predict(frame), booster.predict(frame))


def test_damaged_files_would_crash_lightgbm_itself(tmp_path: Path) -> None:
    # The control for the structural check: LightGBM kills the process on this file.
    text = _model_text(tmp_path)
    source = tmp_path / "cut.txt"
    source.write_text(_corrupt_texts(text)["cut-in-tree.txt"])
    script = f"import lightgbm; lightgbm.Booster(model_file={str(source)!r})"
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, check=False)
    assert result.returncode < 0 or result.returncode > 1, result.stderr


def test_reads_only_model_texts(tmp_path: Path) -> None:
    text = _model_text(tmp_path)
    notes = tmp_path / "notes.txt"
    notes.write_text("some notes\ntree\n")
    damaged = tmp_path / "damaged.txt"
    damaged.write_text(_corrupt_texts(text)["cut-in-tree.txt"])
    empty = tmp_path / "empty.txt"
    empty.write_text("")

    assert FLAVOR.reads(tmp_path / "whole.txt")
    assert FLAVOR.reads(damaged)  # starts right; import checks the rest
    assert not FLAVOR.reads(notes)
    assert not FLAVOR.reads(empty)
    assert not FLAVOR.reads(tmp_path / "missing.txt")
    with pytest.raises(UnknownFlavorError):
        FlavorCatalog([FLAVOR]).for_file(notes)


def test_import_refuses_other_suffixes(tmp_path: Path, package: Path) -> None:
    source = tmp_path / "model.json"
    source.write_text("{}")
    with pytest.raises(InvalidArgumentError, match=r"\.txt"):
        FLAVOR.import_file(source, package, SaveContext())


# -------------------------------------------------------------------------- catalog


def test_catalog_prefers_lightgbm_over_sklearn(tmp_path: Path) -> None:
    catalog = FlavorCatalog([XGBoostFlavor(), LightGBMFlavor(), SklearnFlavor()])
    frame = _numeric(_frame())
    model = lgb.LGBMClassifier(**SMALL).fit(frame, frame["spend"] > 0)
    assert catalog.for_object(model).name == "lightgbm"
    assert catalog.for_object(model.booster_).name == "lightgbm"
    model.booster_.save_model(tmp_path / "model.txt")
    assert catalog.for_file(tmp_path / "model.txt").name == "lightgbm"


# ---------------------------------------------------------------- missing libraries


def test_missing_lightgbm_names_the_extra(
    monkeypatch: pytest.MonkeyPatch, package: Path, tmp_path: Path
) -> None:
    frame = _numeric(_frame())
    model = lgb.LGBMClassifier(**SMALL).fit(frame, frame["spend"] > 0)
    saved = FLAVOR.save(model, package, SaveContext())
    monkeypatch.setitem(sys.modules, "lightgbm", None)

    install = r"pip install 'modelport\[lightgbm\]'"
    with pytest.raises(MissingDependencyError, match=install):
        FLAVOR.load(package, saved.spec, LoadContext())
    other = tmp_path / "other"
    other.mkdir()
    with pytest.raises(MissingDependencyError, match=install):
        FLAVOR.import_file(package / "model.txt", other, SaveContext())
    with pytest.raises(MissingDependencyError, match=install):
        FLAVOR.save(model, other, SaveContext())
    assert FLAVOR.owns(model)


def test_module_imports_no_framework() -> None:
    code = textwrap.dedent(
        """
        import sys
        import modelport.flavors.lightgbm, modelport.flavors.xgboost, modelport.flavors.sklearn
        heavy = {"lightgbm", "xgboost", "sklearn", "skops", "joblib"} & set(sys.modules)
        assert not heavy, heavy
        """
    )
    subprocess.run([sys.executable, "-c", code], check=True)
