"""The XGBoost flavor: native-format round trips, imports, detection and refusals."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
import xgboost as xgb
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from flavor_checks import assert_same_predictions
from modelport.domain.predictor import ModelPredictor
from modelport.errors import (
    CorruptModelFileError,
    InvalidArgumentError,
    MissingDependencyError,
    UnknownFlavorError,
    UnsupportedOperationError,
)
from modelport.flavors import xgboost as xgboost_flavor
from modelport.flavors.base import LoadContext, SaveContext, SavedFlavor
from modelport.flavors.catalog import FlavorCatalog
from modelport.flavors.lightgbm import LightGBMFlavor
from modelport.flavors.sklearn import SklearnFlavor
from modelport.flavors.xgboost import XGBoostFlavor

FLAVOR = XGBoostFlavor()
SMALL = {"n_estimators": 4, "max_depth": 2}


def _frame(rows: int = 80) -> pd.DataFrame:
    rng = np.random.default_rng(11)
    return pd.DataFrame(rng.normal(size=(rows, 3)), columns=["tenure", "spend", "visits"])


def _binary() -> tuple[xgb.XGBClassifier, pd.DataFrame]:
    frame = _frame()
    return xgb.XGBClassifier(**SMALL).fit(frame, (frame["spend"] > 0).astype(int)), frame


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
    assert (FLAVOR.name, FLAVOR.framework, FLAVOR.extra) == ("xgboost", "xgboost", "xgboost")
    assert FLAVOR.suffixes == (".ubj", ".json")


def test_owns_xgboost_models_only() -> None:
    model, frame = _binary()
    assert FLAVOR.owns(model)
    assert FLAVOR.owns(model.get_booster())
    assert FLAVOR.owns(xgb.XGBRegressor())
    assert not FLAVOR.owns(xgb.DMatrix(frame))  # data, not a model
    assert not FLAVOR.owns(LogisticRegression())
    assert not FLAVOR.owns(make_pipeline(StandardScaler(), xgb.XGBClassifier()))


# ---------------------------------------------------------------------- round trips


def test_binary_classifier_round_trips(package: Path) -> None:
    model, frame = _binary()
    saved, predictor = _round_trip(model, package)

    assert saved.spec == {
        "file": "model.ubj",
        "format": "ubj",
        "model_class": "XGBClassifier",
        "supports_proba": True,
    }
    json.dumps(saved.spec)
    assert saved.libraries[0] == "xgboost"
    assert "scikit-learn" in saved.libraries
    assert sorted(p.name for p in package.iterdir()) == ["model.ubj"]
    assert predictor.supports_proba
    assert_same_predictions(model, predictor, frame)
    # Arrays in the fitted column order work too.
    np.testing.assert_array_equal(predictor.predict(frame.to_numpy()), model.predict(frame))


def test_multiclass_classifier_round_trips_on_arrays(package: Path) -> None:
    features = _frame().to_numpy()
    labels = np.digitize(features[:, 0], [-0.5, 0.5])
    model = xgb.XGBClassifier(**SMALL).fit(features, labels)
    _, predictor = _round_trip(model, package)

    assert_same_predictions(model, predictor, features)
    assert predictor.predict_proba(features).shape == (80, 3)


def test_regressor_round_trips_and_has_no_proba(package: Path) -> None:
    frame = _frame()
    model = xgb.XGBRegressor(**SMALL).fit(frame, frame["spend"] * 3)
    saved, predictor = _round_trip(model, package)

    assert saved.spec["model_class"] == "XGBRegressor"
    assert saved.spec["supports_proba"] is False
    assert_same_predictions(model, predictor, frame)
    assert not predictor.supports_proba
    with pytest.raises(UnsupportedOperationError, match="XGBRegressor"):
        predictor.predict_proba(frame)


def test_random_forest_and_ranker_round_trip(package: Path, tmp_path: Path) -> None:
    frame = _frame()
    forest = xgb.XGBRFClassifier(**SMALL).fit(frame, (frame["tenure"] > 0).astype(int))
    saved, predictor = _round_trip(forest, package)
    assert saved.spec["model_class"] == "XGBRFClassifier"
    assert_same_predictions(forest, predictor, frame)

    ranker = xgb.XGBRanker(**SMALL).fit(
        frame, (frame["visits"] > 0).astype(int), qid=np.repeat(np.arange(8), 10)
    )
    second = tmp_path / "second"
    second.mkdir()
    saved, predictor = _round_trip(ranker, second)
    assert saved.spec["model_class"] == "XGBRanker"
    assert not predictor.supports_proba
    assert_same_predictions(ranker, predictor, frame)


def test_booster_round_trips_without_proba(package: Path) -> None:
    frame = _frame()
    matrix = xgb.DMatrix(frame, label=(frame["spend"] > 0).astype(int))
    booster = xgb.train({"objective": "binary:logistic", "max_depth": 2}, matrix, 4)
    saved, predictor = _round_trip(booster, package)

    assert saved.spec["model_class"] == "Booster"
    assert saved.libraries == ("xgboost", "numpy", "scipy")
    expected = booster.predict(xgb.DMatrix(frame))
    np.testing.assert_array_equal(predictor.predict(frame), expected)
    np.testing.assert_array_equal(predictor.predict(frame.to_numpy()), expected)
    columns = {name: frame[name].to_numpy() for name in frame.columns}
    np.testing.assert_array_equal(predictor.predict(columns), expected)
    assert not predictor.supports_proba
    with pytest.raises(UnsupportedOperationError):
        predictor.predict_proba(frame)


def test_categorical_frame_round_trips(package: Path) -> None:
    frame = _frame()
    frame["plan"] = pd.Categorical(np.where(frame["tenure"] > 0, "gold", "basic"))
    labels = ((frame["plan"] == "gold") ^ (frame["spend"] > 1)).astype(int)
    model = xgb.XGBClassifier(**SMALL, enable_categorical=True).fit(frame, labels)
    _, predictor = _round_trip(model, package)
    assert_same_predictions(model, predictor, frame)

    booster_dir = package.parent / "booster"
    booster_dir.mkdir()
    booster = model.get_booster()
    saved = FLAVOR.save(booster, booster_dir, SaveContext())
    booster_predictor = FLAVOR.load(booster_dir, saved.spec, LoadContext())
    expected = booster.predict(xgb.DMatrix(frame, enable_categorical=True))
    np.testing.assert_array_equal(booster_predictor.predict(frame), expected)


def test_unfitted_model_cannot_be_saved(package: Path) -> None:
    with pytest.raises(InvalidArgumentError, match="XGBClassifier"):
        FLAVOR.save(xgb.XGBClassifier(), package, SaveContext())
    assert list(package.iterdir()) == []


def test_unknown_xgboost_object_cannot_be_saved(package: Path) -> None:
    with pytest.raises(InvalidArgumentError, match="DMatrix"):
        FLAVOR.save(xgb.DMatrix(_frame()), package, SaveContext())


def test_load_takes_classes_only_from_its_table(package: Path) -> None:
    model, _ = _binary()
    saved = FLAVOR.save(model, package, SaveContext())
    for forged in ("os.system", "XGBModel", "__class__", "DMatrix", None):
        with pytest.raises(CorruptModelFileError, match="model class"):
            FLAVOR.load(package, {**saved.spec, "model_class": forged}, LoadContext())
    with pytest.raises(CorruptModelFileError, match="file name"):
        FLAVOR.load(package, {**saved.spec, "file": "/etc/passwd"}, LoadContext())


# --------------------------------------------------------------------------- imports


@pytest.mark.parametrize("suffix", [".ubj", ".json"])
@pytest.mark.parametrize(
    ("kind", "model_class"),
    [("classifier", "XGBClassifier"), ("regressor", "XGBRegressor"), ("booster", "Booster")],
)
def test_import_of_files_saved_by_xgboost(
    tmp_path: Path, package: Path, suffix: str, kind: str, model_class: str
) -> None:
    frame = _frame()
    labels = (frame["spend"] > 0).astype(int)
    model: Any
    if kind == "classifier":
        model = xgb.XGBClassifier(**SMALL).fit(frame, labels)
    elif kind == "regressor":
        model = xgb.XGBRegressor(**SMALL).fit(frame, frame["spend"])
    else:
        model = xgb.train({"max_depth": 2}, xgb.DMatrix(frame, label=labels), 4)
    source = tmp_path / f"model{suffix}"
    model.save_model(source)

    assert FLAVOR.reads(source)
    saved = FLAVOR.import_file(source, package, SaveContext())
    assert saved.spec["model_class"] == model_class
    assert saved.spec["file"] == f"model{suffix}"
    assert saved.spec["format"] == suffix[1:]
    assert (package / f"model{suffix}").read_bytes() == source.read_bytes()
    predictor = FLAVOR.load(package, saved.spec, LoadContext())
    if kind == "booster":
        expected = model.predict(xgb.DMatrix(frame))
        np.testing.assert_array_equal(predictor.predict(frame), expected)
    else:
        assert_same_predictions(model, predictor, frame)


def test_import_of_a_package_saved_by_the_flavor(tmp_path: Path, package: Path) -> None:
    model, frame = _binary()
    first = tmp_path / "first"
    first.mkdir()
    FLAVOR.save(model, first, SaveContext())

    saved = FLAVOR.import_file(first / "model.ubj", package, SaveContext())
    assert saved.spec["model_class"] == "XGBClassifier"
    assert_same_predictions(model, FLAVOR.load(package, saved.spec, LoadContext()), frame)


def test_other_json_is_not_an_xgboost_model(tmp_path: Path, package: Path) -> None:
    config = tmp_path / "config.json"
    config.write_text(json.dumps({"learning_rate": 0.1}))
    listing = tmp_path / "list.json"
    listing.write_text("[1, 2, 3]")
    for source in (config, listing):
        assert not FLAVOR.reads(source)
        with pytest.raises(CorruptModelFileError, match="not an XGBoost model"):
            FLAVOR.import_file(source, package, SaveContext())
    catalog = FlavorCatalog([FLAVOR, SklearnFlavor()])
    with pytest.raises(UnknownFlavorError):
        catalog.for_file(config)


def _corrupt_files(tmp_path: Path) -> dict[str, bytes]:
    model, _ = _binary()
    model.save_model(tmp_path / "whole.ubj")
    model.save_model(tmp_path / "whole.json")
    ubj = (tmp_path / "whole.ubj").read_bytes()
    text = (tmp_path / "whole.json").read_bytes()
    return {
        "empty.ubj": b"",
        "empty.json": b"",
        "truncated.ubj": ubj[: len(ubj) // 2],
        # Cut inside a length field: XGBoost itself dies of a segmentation fault here.
        "cut-in-length.ubj": ubj[: ubj.index(b"learner{L") + 13],
        "truncated.json": text[: len(text) // 2],
        "garbage.ubj": b"{" + b"\x00\xff" * 50,
        "broken.json": b'{"learner": {"gradient_booster": 1}, "version": [3, 0, 0]}',
        "text.json": b"not json at all",
    }


def test_corrupt_files_are_reported_by_name(tmp_path: Path, package: Path) -> None:
    for name, content in _corrupt_files(tmp_path).items():
        source = tmp_path / name
        source.write_bytes(content)
        with pytest.raises(CorruptModelFileError) as caught:
            FLAVOR.import_file(source, package, SaveContext())
        assert name in str(caught.value), name
        assert list(package.iterdir()) == [], name


def test_files_that_crash_xgboost_are_tried_in_a_child_process(
    tmp_path: Path, package: Path
) -> None:
    # Loading this file in-process makes XGBoost die of a segmentation fault on some runs
    # and raise on others (it reads past the end of the buffer): either way this process
    # must survive and report the file by name.
    source = tmp_path / "cut-in-length.ubj"
    source.write_bytes(_corrupt_files(tmp_path)["cut-in-length.ubj"])
    script = f"import xgboost; xgboost.Booster(model_file={str(source)!r})"
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, check=False)
    assert result.returncode != 0, result.stderr

    with pytest.raises(CorruptModelFileError, match="cut-in-length.ubj"):
        FLAVOR.import_file(source, package, SaveContext())
    assert list(package.iterdir()) == []


def test_a_child_that_dies_of_a_signal_is_reported_as_a_crash(
    tmp_path: Path, package: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A real child process killed by SIGSEGV, as XGBoost's loader is on some damaged files.
    monkeypatch.setattr(
        xgboost_flavor, "_PROBE_SCRIPT", "import os, signal; os.kill(os.getpid(), signal.SIGSEGV)"
    )
    model, _ = _binary()
    model.save_model(tmp_path / "model.ubj")
    with pytest.raises(CorruptModelFileError, match=r"model\.ubj.*crashed.*SIGSEGV"):
        FLAVOR.import_file(tmp_path / "model.ubj", package, SaveContext())
    assert list(package.iterdir()) == []


def test_corrupt_file_in_a_package_is_reported_at_load(tmp_path: Path, package: Path) -> None:
    model, _ = _binary()
    saved = FLAVOR.save(model, package, SaveContext())
    data = (package / "model.ubj").read_bytes()
    (package / "model.ubj").write_bytes(data[: len(data) // 3])
    with pytest.raises(CorruptModelFileError, match=r"model\.ubj"):
        FLAVOR.load(package, saved.spec, LoadContext())


def test_reads_only_files_that_look_like_models(tmp_path: Path) -> None:
    files = _corrupt_files(tmp_path)
    for name, content in files.items():
        (tmp_path / name).write_bytes(content)
    assert FLAVOR.reads(tmp_path / "whole.ubj")
    assert FLAVOR.reads(tmp_path / "whole.json")
    assert FLAVOR.reads(tmp_path / "truncated.json")  # looks right; import checks content
    assert not FLAVOR.reads(tmp_path / "empty.ubj")
    assert not FLAVOR.reads(tmp_path / "text.json")
    assert not FLAVOR.reads(tmp_path / "missing.ubj")


def test_import_refuses_other_suffixes(tmp_path: Path, package: Path) -> None:
    source = tmp_path / "model.pkl"
    source.write_bytes(b"x")
    with pytest.raises(InvalidArgumentError, match=r"\.ubj"):
        FLAVOR.import_file(source, package, SaveContext())


# -------------------------------------------------------------------------- catalog


def test_catalog_prefers_xgboost_over_sklearn(tmp_path: Path) -> None:
    catalog = FlavorCatalog([XGBoostFlavor(), LightGBMFlavor(), SklearnFlavor()])
    model, frame = _binary()
    assert catalog.for_object(model).name == "xgboost"
    assert catalog.for_object(model.get_booster()).name == "xgboost"
    pipeline = make_pipeline(StandardScaler(), xgb.XGBClassifier(**SMALL))
    pipeline.fit(frame, (frame["spend"] > 0).astype(int))
    assert catalog.for_object(pipeline).name == "sklearn"
    for suffix in (".ubj", ".json"):
        model.save_model(tmp_path / f"model{suffix}")
        assert catalog.for_file(tmp_path / f"model{suffix}").name == "xgboost"


# ---------------------------------------------------------------- missing libraries


def test_missing_xgboost_names_the_extra(
    monkeypatch: pytest.MonkeyPatch, package: Path, tmp_path: Path
) -> None:
    model, _ = _binary()
    saved = FLAVOR.save(model, package, SaveContext())
    model.save_model(tmp_path / "model.json")
    monkeypatch.setitem(sys.modules, "xgboost", None)

    install = r"pip install 'modelport\[xgboost\]'"
    with pytest.raises(MissingDependencyError, match=install):
        FLAVOR.load(package, saved.spec, LoadContext())
    other = tmp_path / "other"
    other.mkdir()
    with pytest.raises(MissingDependencyError, match=install):
        FLAVOR.import_file(tmp_path / "model.json", other, SaveContext())
    with pytest.raises(MissingDependencyError, match=install):
        FLAVOR.save(model, other, SaveContext())
    assert FLAVOR.owns(model)  # detection needs no import


def test_default_catalog_routes_all_three_flavors(tmp_path: Path) -> None:
    import lightgbm as lgb

    from modelport.flavors.catalog import default_catalog

    catalog = default_catalog()
    model, frame = _binary()
    labels = (frame["spend"] > 0).astype(int)
    booster = lgb.LGBMClassifier(n_estimators=3, verbose=-1).fit(frame, labels)
    pipeline = make_pipeline(StandardScaler(), LogisticRegression()).fit(frame, labels)
    assert catalog.for_object(model).name == "xgboost"
    assert catalog.for_object(booster).name == "lightgbm"
    assert catalog.for_object(pipeline).name == "sklearn"

    model.save_model(tmp_path / "model.json")
    booster.booster_.save_model(tmp_path / "model.txt")
    SklearnFlavor().save(pipeline, tmp_path, SaveContext())
    assert catalog.for_file(tmp_path / "model.json").name == "xgboost"
    assert catalog.for_file(tmp_path / "model.txt").name == "lightgbm"
    assert catalog.for_file(tmp_path / "model.skops").name == "sklearn"
