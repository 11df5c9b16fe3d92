"""Automatic acceleration: models that convert to ONNX are verified, stored and served
by onnxruntime; the others keep their native runtime, with the reason recorded."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from sklearn.compose import ColumnTransformer
from sklearn.ensemble import RandomForestClassifier, RandomForestRegressor
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import Pipeline, make_pipeline
from sklearn.preprocessing import (
    FunctionTransformer,
    MinMaxScaler,
    OneHotEncoder,
    StandardScaler,
)

from modelport.errors import IntegrityError, InvalidInputError
from modelport.flavors.catalog import FlavorCatalog, default_catalog
from modelport.package.acceleration import verification
from modelport.package.manifest import ACCELERATED_FILE, Manifest, read_manifest
from modelport.package.options import PackageOptions
from modelport.package.reader import load_package
from modelport.package.writer import build_package

pytest.importorskip("skl2onnx")
pytest.importorskip("onnxruntime")

RNG = np.random.default_rng(7)


@pytest.fixture(scope="module")
def catalog() -> FlavorCatalog:
    return default_catalog()


def numeric_frame(rows: int, columns: int = 20, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    return pd.DataFrame(rng.normal(size=(rows, columns)), columns=[f"f{i}" for i in range(columns)])


def binary_target(frame: pd.DataFrame) -> np.ndarray:
    values = frame.to_numpy()
    return (values[:, 0] + values[:, 1] > 0).astype(np.int64)


def package(
    model: Any, tmp_path: Path, catalog: FlavorCatalog, sample: Any, **options: Any
) -> tuple[Path, Manifest]:
    directory = tmp_path / "pkg"
    manifest = build_package(
        model, directory, catalog, PackageOptions(sample_input=sample, **options)
    )
    return directory, manifest


def assert_verified(manifest: Manifest, layout: str) -> None:
    section = manifest.acceleration
    assert section is not None
    assert section.status == "verified", section.reason
    assert section.input_layout == layout
    assert section.file == ACCELERATED_FILE
    assert ACCELERATED_FILE in manifest.files


def assert_same_as_native(
    directory: Path, catalog: FlavorCatalog, batch: Any, *, proba: bool = True
) -> None:
    """The accelerated model answers like the native one on data it was not verified on."""
    with (
        load_package(directory, catalog, accelerate=True) as fast,
        load_package(directory, catalog) as native,
    ):
        assert fast.runtime == "onnxruntime"
        assert native.runtime == native.flavor
        expected = np.asarray(native.predict(batch))
        got = np.asarray(fast.predict(batch))
        assert got.dtype == expected.dtype or (got.dtype == object and expected.dtype.kind == "U")
        if expected.dtype.kind == "f":
            np.testing.assert_allclose(got, expected, rtol=1e-4, atol=1e-5)
        else:
            np.testing.assert_array_equal(got, expected)
        if proba:
            probabilities = fast.predict_proba(batch)
            assert probabilities.dtype == np.float64
            np.testing.assert_allclose(
                probabilities, native.predict_proba(batch), atol=verification.PROBABILITY_ATOL
            )


# ---------------------------------------------------------------------- scikit-learn


def test_a_random_forest_is_verified_and_served_from_a_matrix(
    tmp_path: Path, catalog: FlavorCatalog
) -> None:
    train = numeric_frame(400)
    model = RandomForestClassifier(n_estimators=100, random_state=0).fit(
        train, binary_target(train)
    )
    directory, manifest = package(model, tmp_path, catalog, train)

    assert_verified(manifest, "matrix")
    section = manifest.acceleration
    assert section is not None
    assert section.input_names == ["input"]
    assert (section.output_label, section.output_probabilities) == ("label", "probabilities")
    assert section.rows_checked == 400
    assert section.max_abs_diff is not None and section.max_abs_diff <= 1e-4
    assert section.tolerance == verification.PROBABILITY_ATOL
    assert read_manifest(directory).acceleration == section  # round-trips through YAML

    other = numeric_frame(300, seed=1)
    assert_same_as_native(directory, catalog, other)
    # What the server passes: one 2-D array in signature column order.
    with load_package(directory, catalog, accelerate=True) as fast:
        labels = fast.predictor.predict(other.to_numpy())
        assert labels.dtype == np.int64
        np.testing.assert_array_equal(labels, model.predict(other))
        np.testing.assert_allclose(
            fast.predictor.predict_proba(other.to_numpy()), model.predict_proba(other), atol=1e-4
        )


def test_the_quickstart_pipeline_is_verified(tmp_path: Path, catalog: FlavorCatalog) -> None:
    train = numeric_frame(300, columns=4)
    model = make_pipeline(StandardScaler(), LogisticRegression()).fit(train, binary_target(train))
    directory, manifest = package(model, tmp_path, catalog, train)

    assert_verified(manifest, "matrix")
    assert_same_as_native(directory, catalog, numeric_frame(50, columns=4, seed=3))


def test_string_labels_come_back_as_text(tmp_path: Path, catalog: FlavorCatalog) -> None:
    train = numeric_frame(200, columns=3)
    labels = np.array(["no", "yes"])[binary_target(train)]
    model = LogisticRegression().fit(train, labels)
    directory, manifest = package(model, tmp_path, catalog, train)

    assert_verified(manifest, "matrix")
    assert manifest.acceleration is not None
    assert manifest.acceleration.prediction_dtype == "object"
    with load_package(directory, catalog, accelerate=True) as fast:
        predicted = fast.predict(train.head(20))
    assert predicted.dtype == object
    assert predicted.tolist() == model.predict(train.head(20)).tolist()


def mixed_frame(rows: int, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    return pd.DataFrame(
        {
            "city": rng.choice(["paris", "rome", "oslo"], rows),
            "age": rng.integers(18, 90, rows),
            "income": rng.normal(50.0, 10.0, rows),
        }
    )


def test_text_columns_are_fed_one_input_per_column(tmp_path: Path, catalog: FlavorCatalog) -> None:
    train = mixed_frame(300)
    target = ((train["age"] > 50) ^ (train["city"] == "rome")).astype(int)
    encode = ColumnTransformer(
        [
            ("city", OneHotEncoder(handle_unknown="ignore"), ["city"]),
            ("numbers", StandardScaler(), ["age", "income"]),
        ]
    )
    model = make_pipeline(encode, LogisticRegression()).fit(train, target)
    directory, manifest = package(model, tmp_path, catalog, train)

    assert_verified(manifest, "columns")
    assert manifest.acceleration is not None
    assert manifest.acceleration.input_names == ["city", "age", "income"]
    other = mixed_frame(100, seed=5)
    assert_same_as_native(directory, catalog, other)
    # What the server passes: one 1-D array per column.
    columns = {name: other[name].to_numpy() for name in other.columns}
    columns["city"] = columns["city"].astype(object)
    with load_package(directory, catalog, accelerate=True) as fast:
        np.testing.assert_array_equal(fast.predictor.predict(columns), model.predict(other))
        del columns["age"]
        with pytest.raises(InvalidInputError, match="'age'"):
            fast.predictor.predict(columns)


def test_a_matrix_is_split_for_a_column_transformer_that_selects_by_name(
    tmp_path: Path, catalog: FlavorCatalog
) -> None:
    train = numeric_frame(200, columns=3)
    encode = ColumnTransformer(
        [("scaled", StandardScaler(), ["f0", "f1"]), ("ranged", MinMaxScaler(), ["f2"])]
    )
    model = make_pipeline(encode, LogisticRegression()).fit(train, binary_target(train))
    directory, manifest = package(model, tmp_path, catalog, train)

    assert_verified(manifest, "matrix")
    assert manifest.acceleration is not None
    assert manifest.acceleration.input_names == ["f0", "f1", "f2"]
    other = numeric_frame(40, columns=3, seed=2)
    with load_package(directory, catalog, accelerate=True) as fast:
        np.testing.assert_array_equal(
            fast.predictor.predict(other.to_numpy()), model.predict(other)
        )
    assert_same_as_native(directory, catalog, other)


def test_a_regressor_is_verified_within_its_tolerance(
    tmp_path: Path, catalog: FlavorCatalog
) -> None:
    train = numeric_frame(300, columns=5)
    target = train["f0"] * 3.0 + np.sin(train["f1"]) * 10.0
    model = RandomForestRegressor(n_estimators=30, random_state=0).fit(train, target)
    directory, manifest = package(model, tmp_path, catalog, train)

    assert_verified(manifest, "matrix")
    section = manifest.acceleration
    assert section is not None
    assert section.output_probabilities is None
    assert section.prediction_dtype == "float64"
    assert section.max_abs_diff is not None and section.tolerance is not None
    assert_same_as_native(directory, catalog, numeric_frame(50, columns=5, seed=4), proba=False)


def test_a_numpy_sample_gives_a_tensor_input(tmp_path: Path, catalog: FlavorCatalog) -> None:
    train = RNG.normal(size=(200, 6))
    model = LogisticRegression().fit(train, (train[:, 0] > 0).astype(int))
    directory, manifest = package(model, tmp_path, catalog, train)

    assert_verified(manifest, "tensors")
    assert manifest.acceleration is not None
    assert manifest.acceleration.input_names == ["input"]
    assert_same_as_native(directory, catalog, RNG.normal(size=(30, 6)))


def double(values: Any) -> Any:
    return values * 2


def test_a_model_that_does_not_convert_keeps_the_native_runtime(
    tmp_path: Path, catalog: FlavorCatalog
) -> None:
    train = numeric_frame(100, columns=3)
    model = make_pipeline(FunctionTransformer(double), LogisticRegression()).fit(
        train, binary_target(train)
    )
    directory, manifest = package(model, tmp_path, catalog, train, trust=[f"{__name__}.double"])

    section = manifest.acceleration
    assert section is not None
    assert section.status == "unavailable"
    assert section.reason is not None and "skl2onnx cannot convert" in section.reason
    assert "FunctionTransformer" in section.reason
    assert not (directory / "accelerated").exists()
    with load_package(directory, catalog, accelerate=True) as loaded:
        assert loaded.runtime == "sklearn"
        np.testing.assert_array_equal(loaded.predict(train), model.predict(train))


def test_no_sample_means_nothing_to_verify_against(tmp_path: Path, catalog: FlavorCatalog) -> None:
    train = numeric_frame(50, columns=3)
    model = LogisticRegression().fit(train, binary_target(train))
    _, manifest = package(model, tmp_path, catalog, None)

    assert manifest.acceleration is not None
    assert manifest.acceleration.status == "unavailable"
    assert manifest.acceleration.reason == "no sample input to verify against"


def test_turning_it_off_writes_no_section(tmp_path: Path, catalog: FlavorCatalog) -> None:
    train = numeric_frame(50, columns=3)
    model = LogisticRegression().fit(train, binary_target(train))
    directory, manifest = package(model, tmp_path, catalog, train, accelerate=False)

    assert manifest.acceleration is None
    assert "acceleration" not in (directory / "modelport.yaml").read_text()
    assert not (directory / "accelerated").exists()
    with load_package(directory, catalog, accelerate=True) as loaded:  # old packages too
        assert loaded.runtime == "sklearn"


def test_a_missing_converter_is_the_reason(
    tmp_path: Path, catalog: FlavorCatalog, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(sys.modules, "skl2onnx", None)  # import skl2onnx now fails
    train = numeric_frame(50, columns=3)
    model = LogisticRegression().fit(train, binary_target(train))
    _, manifest = package(model, tmp_path, catalog, train)

    assert manifest.acceleration is not None
    assert manifest.acceleration.status == "unavailable"
    assert manifest.acceleration.reason is not None
    assert manifest.acceleration.reason.startswith("skl2onnx is not installed")


def test_without_onnxruntime_at_load_the_native_model_serves(
    tmp_path: Path, catalog: FlavorCatalog, monkeypatch: pytest.MonkeyPatch
) -> None:
    train = numeric_frame(50, columns=3)
    model = LogisticRegression().fit(train, binary_target(train))
    directory, manifest = package(model, tmp_path, catalog, train)
    assert_verified(manifest, "matrix")

    monkeypatch.setitem(sys.modules, "onnxruntime", None)
    with load_package(directory, catalog, accelerate=True) as loaded:
        assert loaded.runtime == "sklearn"
        np.testing.assert_array_equal(loaded.predict(train), model.predict(train))


def test_a_tampered_graph_is_caught_by_the_digests(tmp_path: Path, catalog: FlavorCatalog) -> None:
    train = numeric_frame(50, columns=3)
    model = LogisticRegression().fit(train, binary_target(train))
    directory, _ = package(model, tmp_path, catalog, train)
    graph = directory / ACCELERATED_FILE
    graph.write_bytes(graph.read_bytes() + b"\0")

    with pytest.raises(IntegrityError, match=ACCELERATED_FILE) as caught:
        load_package(directory, catalog, accelerate=True)
    assert caught.value.field == ACCELERATED_FILE


def test_accelerated_and_onnx_flavor_sessions_come_from_one_factory(
    tmp_path: Path, catalog: FlavorCatalog, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Both the accelerated graph and a user's .onnx model run one thread per call."""
    import onnxruntime
    import skl2onnx

    train = numeric_frame(50, columns=3)
    model = LogisticRegression().fit(train, binary_target(train))
    directory, _ = package(model, tmp_path, catalog, train)
    user_graph = skl2onnx.to_onnx(model, train.to_numpy(dtype=np.float32)[:1])
    onnx_directory = tmp_path / "onnx"
    build_package(user_graph, onnx_directory, catalog, PackageOptions())
    opened: list[Any] = []
    real = onnxruntime.InferenceSession

    def spy(*args: Any, **kwargs: Any) -> Any:
        opened.append(real(*args, **kwargs))
        return opened[-1]

    monkeypatch.setattr(onnxruntime, "InferenceSession", spy)
    with (
        load_package(directory, catalog, accelerate=True) as fast,
        load_package(onnx_directory, catalog, accelerate=True) as user,
    ):
        assert (fast.runtime, user.runtime) == ("onnxruntime", "onnx")
    assert len(opened) == 2
    for session in opened:
        options = session.get_session_options()
        assert options.intra_op_num_threads == 1
        assert options.get_session_config_entry("session.intra_op.allow_spinning") == "0"


# ------------------------------------------------------------------ XGBoost, LightGBM


def numeric_samples() -> list[Any]:
    frame = numeric_frame(300, columns=6)
    return [frame.to_numpy(dtype=np.float32), frame]


@pytest.mark.parametrize("as_frame", [False, True], ids=["numpy-float32", "dataframe"])
def test_an_xgboost_classifier_is_verified(
    tmp_path: Path, catalog: FlavorCatalog, as_frame: bool
) -> None:
    xgb = pytest.importorskip("xgboost")
    pytest.importorskip("onnxmltools")
    train = numeric_samples()[int(as_frame)]
    target = binary_target(pd.DataFrame(train))
    model = xgb.XGBClassifier(n_estimators=30, max_depth=3).fit(train, target)
    directory, manifest = package(model, tmp_path, catalog, train)

    assert_verified(manifest, "matrix" if as_frame else "tensors")
    assert_same_as_native(directory, catalog, train[:40])


@pytest.mark.parametrize("as_frame", [False, True], ids=["numpy-float32", "dataframe"])
def test_a_lightgbm_classifier_is_verified(
    tmp_path: Path, catalog: FlavorCatalog, as_frame: bool
) -> None:
    lgb = pytest.importorskip("lightgbm")
    pytest.importorskip("onnxmltools")
    train = numeric_samples()[int(as_frame)]
    target = np.digitize(np.asarray(train)[:, 0], [-0.5, 0.5])  # three classes
    model = lgb.LGBMClassifier(n_estimators=30, verbose=-1).fit(train, target)
    directory, manifest = package(model, tmp_path, catalog, train)

    assert_verified(manifest, "matrix" if as_frame else "tensors")
    assert_same_as_native(directory, catalog, train[:40])


def test_an_xgboost_regressor_is_verified(tmp_path: Path, catalog: FlavorCatalog) -> None:
    xgb = pytest.importorskip("xgboost")
    pytest.importorskip("onnxmltools")
    train = numeric_frame(300, columns=6)
    model = xgb.XGBRegressor(n_estimators=30).fit(train, train["f0"] * 2.0 + 1.0)
    directory, manifest = package(model, tmp_path, catalog, train)

    assert_verified(manifest, "matrix")
    assert manifest.acceleration is not None
    assert manifest.acceleration.prediction_dtype == "float32"
    assert_same_as_native(directory, catalog, numeric_frame(40, columns=6, seed=9), proba=False)


def test_a_bare_booster_classifier_is_explained(tmp_path: Path, catalog: FlavorCatalog) -> None:
    xgb = pytest.importorskip("xgboost")
    pytest.importorskip("onnxmltools")
    train = numeric_frame(200, columns=4).to_numpy()
    booster = xgb.train(
        {"objective": "binary:logistic"},
        xgb.DMatrix(train, label=(train[:, 0] > 0).astype(int)),
        num_boost_round=5,
    )
    _, manifest = package(booster, tmp_path, catalog, train)

    assert manifest.acceleration is not None
    assert manifest.acceleration.status == "unavailable"
    assert manifest.acceleration.reason is not None
    assert "bare Booster" in manifest.acceleration.reason


def test_a_graph_that_disagrees_is_not_stored(tmp_path: Path, catalog: FlavorCatalog) -> None:
    """onnxmltools mis-converts multi-class XGBoost random forests; verification says so."""
    xgb = pytest.importorskip("xgboost")
    pytest.importorskip("onnxmltools")
    train = numeric_frame(500, columns=6)
    target = np.digitize(train["f0"], [-0.5, 0.5])
    model = xgb.XGBRFClassifier(n_estimators=20).fit(train, target)
    directory, manifest = package(model, tmp_path, catalog, train)

    section = manifest.acceleration
    assert section is not None
    assert section.status == "unavailable"
    assert section.reason is not None
    assert "differ from the native model's" in section.reason
    assert not (directory / "accelerated").exists()
    assert ACCELERATED_FILE not in manifest.files


def test_a_pipeline_around_lightgbm_records_why(tmp_path: Path, catalog: FlavorCatalog) -> None:
    """skl2onnx knows no LightGBM step unless its converter is registered with it."""
    lgb = pytest.importorskip("lightgbm")
    train = numeric_frame(200, columns=4)
    model = Pipeline(
        [("scale", StandardScaler()), ("boost", lgb.LGBMClassifier(n_estimators=5, verbose=-1))]
    ).fit(train, binary_target(train))
    directory, manifest = package(model, tmp_path, catalog, train)

    section = manifest.acceleration
    assert section is not None
    assert section.status == "unavailable"
    assert section.reason is not None
    assert section.reason.startswith("skl2onnx cannot convert this Pipeline")
    assert "LGBMClassifier" in section.reason
    with load_package(directory, catalog, accelerate=True) as loaded:
        assert loaded.runtime == "sklearn"


def test_float32_rounding_ahead_of_trees_is_refused(tmp_path: Path, catalog: FlavorCatalog) -> None:
    """skl2onnx converts scaled trees only in float32; new values near a split could then
    go the other way than in scikit-learn, which no sample of training rows can show."""
    train = numeric_frame(200, columns=4)
    model = make_pipeline(StandardScaler(), RandomForestRegressor(n_estimators=5)).fit(
        train, train["f0"] * 2.0
    )
    _, manifest = package(model, tmp_path, catalog, train)

    section = manifest.acceleration
    assert section is not None
    assert section.status == "unavailable"
    assert section.reason is not None and "float32" in section.reason
