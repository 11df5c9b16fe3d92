"""The scikit-learn flavor: save/load round trips, imports, detection and refusals."""

from __future__ import annotations

import importlib
import io
import json
import os
import pickle
import re
import subprocess
import sys
import zipfile
from pathlib import Path
from typing import Any

import joblib
import numpy as np
import pandas as pd
import pytest
import skops.io as sio
from sklearn.compose import ColumnTransformer
from sklearn.ensemble import RandomForestClassifier
from sklearn.linear_model import LinearRegression, LogisticRegression
from sklearn.pipeline import Pipeline, make_pipeline
from sklearn.preprocessing import FunctionTransformer, OneHotEncoder, StandardScaler
from sklearn.svm import SVC

from flavor_checks import assert_same_predictions
from modelport.domain.predictor import ModelPredictor
from modelport.errors import (
    CorruptModelFileError,
    InvalidArgumentError,
    MissingDependencyError,
    UnsafeModelError,
    UnsupportedOperationError,
)
from modelport.flavors.base import LoadContext, SaveContext, SavedFlavor
from modelport.flavors.catalog import FlavorCatalog
from modelport.flavors.sklearn import SklearnFlavor, SklearnPredictor

FLAVOR = SklearnFlavor()
RNG = np.random.default_rng(7)


# ------------------------------------------------------------------------- fixtures


def _customers(rows: int = 60) -> pd.DataFrame:
    rng = np.random.default_rng(3)
    return pd.DataFrame(
        {
            "city": rng.choice(["paris", "oslo", "lima"], rows),
            "age": rng.integers(18, 80, rows).astype(float),
            "income": rng.normal(50.0, 10.0, rows),
        }
    )


def _churn_pipeline() -> tuple[Pipeline, pd.DataFrame]:
    frame = _customers()
    labels = np.where((frame["age"] > 45) ^ (frame["city"] == "oslo"), "churn", "stay")
    columns = ColumnTransformer(
        [
            ("city", OneHotEncoder(handle_unknown="ignore"), ["city"]),
            ("numbers", StandardScaler(), ["age", "income"]),
        ]
    )
    return make_pipeline(columns, LogisticRegression()).fit(frame, labels), frame


def _numbers(rows: int = 60) -> np.ndarray:
    return np.random.default_rng(5).normal(size=(rows, 4))


@pytest.fixture
def package(tmp_path: Path) -> Path:
    directory = tmp_path / "package"
    directory.mkdir()
    return directory


def _round_trip(
    model: Any, directory: Path, trust: tuple[str, ...] = ()
) -> tuple[SavedFlavor, SklearnPredictor]:
    saved = FLAVOR.save(model, directory, SaveContext(trust=trust))
    predictor = FLAVOR.load(directory, saved.spec, LoadContext(trust=saved.trusted))
    assert isinstance(predictor, SklearnPredictor)
    return saved, predictor


# ----------------------------------------------------------------------- properties


def test_flavor_identity() -> None:
    assert (FLAVOR.name, FLAVOR.framework, FLAVOR.extra) == ("sklearn", "scikit-learn", "sklearn")
    assert FLAVOR.suffixes == (".skops", ".joblib", ".pkl", ".pickle")


def test_owns_estimators_with_predict_only() -> None:
    pipeline, _ = _churn_pipeline()
    assert FLAVOR.owns(pipeline)
    assert FLAVOR.owns(LogisticRegression())  # unfitted still belongs to the flavor
    assert not FLAVOR.owns(StandardScaler())  # a transformer cannot predict
    assert not FLAVOR.owns(object())
    assert not FLAVOR.owns({"predict": print})


def test_owns_decides_without_importing_sklearn(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "sklearn", None)
    lookalike = type("Model", (), {"__module__": "sklearn.fake", "predict": lambda self, x: x})
    stranger = type("Model", (), {"__module__": "mypkg.models", "predict": lambda self, x: x})
    assert FLAVOR.owns(lookalike())
    assert not FLAVOR.owns(stranger())


# ---------------------------------------------------------------------- round trips


def test_pipeline_with_string_columns_round_trips_through_skops(package: Path) -> None:
    pipeline, frame = _churn_pipeline()
    saved, predictor = _round_trip(pipeline, package)

    assert saved.spec == {
        "format": "skops",
        "file": "model.skops",
        "model_class": "sklearn.pipeline.Pipeline",
        "supports_proba": True,
        "trusted_types": [],
    }
    assert sorted(p.name for p in package.iterdir()) == ["model.skops"]
    assert saved.libraries[:4] == ("scikit-learn", "numpy", "scipy", "skops")
    assert saved.trusted == ()
    json.dumps(saved.spec)  # stored in the manifest: plain data only
    assert_same_predictions(pipeline, predictor, frame)
    assert predictor.classes == ["churn", "stay"]
    assert predictor.supports_proba
    assert isinstance(predictor, ModelPredictor)


def test_model_fitted_on_a_frame_accepts_arrays_and_dicts(package: Path) -> None:
    frame = _customers()[["age", "income"]]
    model = LogisticRegression().fit(frame, frame["age"] > 40)
    _, predictor = _round_trip(model, package)

    expected = model.predict(frame)
    np.testing.assert_array_equal(predictor.predict(frame.to_numpy()), expected)
    columns = {name: frame[name].to_numpy() for name in frame.columns}
    np.testing.assert_array_equal(predictor.predict(columns), expected)
    np.testing.assert_allclose(
        predictor.predict_proba(frame.to_numpy()), model.predict_proba(frame)
    )


def test_multiclass_on_arrays_round_trips(package: Path) -> None:
    features = _numbers()
    labels = np.digitize(features[:, 0], [-0.5, 0.5])  # three classes 0, 1, 2
    model = RandomForestClassifier(n_estimators=5, random_state=0).fit(features, labels)
    _, predictor = _round_trip(model, package)

    assert_same_predictions(model, predictor, features)
    assert predictor.predict_proba(features).shape == (60, 3)
    assert predictor.classes == [0, 1, 2]
    assert all(type(label) is int for label in predictor.classes)


def test_multiclass_string_labels_round_trip(package: Path) -> None:
    features = _numbers()
    labels = np.array(["low", "mid", "high"])[np.digitize(features[:, 1], [-0.5, 0.5])]
    model = LogisticRegression().fit(features, labels)
    _, predictor = _round_trip(model, package)

    assert_same_predictions(model, predictor, features)
    assert predictor.classes == ["high", "low", "mid"]


def test_regressor_round_trips_and_refuses_probabilities(package: Path) -> None:
    frame = _customers()[["age", "income"]]
    model = LinearRegression().fit(frame, frame["income"] * 2 + 1)
    saved, predictor = _round_trip(model, package)

    assert_same_predictions(model, predictor, frame)
    np.testing.assert_array_equal(predictor.predict(frame.to_numpy()), model.predict(frame))
    assert saved.spec["supports_proba"] is False
    assert not predictor.supports_proba
    assert predictor.classes is None
    with pytest.raises(UnsupportedOperationError, match="LinearRegression"):
        predictor.predict_proba(frame)


def test_svc_without_probability_has_no_proba(package: Path) -> None:
    features = _numbers()
    model = SVC().fit(features, features[:, 0] > 0)
    saved, predictor = _round_trip(model, package)

    assert saved.spec["supports_proba"] is False
    assert not predictor.supports_proba
    with pytest.raises(UnsupportedOperationError, match="SVC"):
        predictor.predict_proba(features)
    np.testing.assert_array_equal(predictor.predict(features), model.predict(features))


def test_pipeline_ending_in_xgboost_lists_xgboost(package: Path) -> None:
    xgboost = pytest.importorskip("xgboost")
    features = _numbers()
    model = make_pipeline(StandardScaler(), xgboost.XGBClassifier(n_estimators=3, max_depth=2))
    model.fit(features, (features[:, 0] > 0).astype(int))
    saved, predictor = _round_trip(model, package)

    assert saved.trusted == ()  # XGBoost classes are on the allow-list
    assert "xgboost.sklearn.XGBClassifier" in saved.spec["trusted_types"]
    assert "xgboost" in saved.libraries
    assert saved.libraries[0] == "scikit-learn"
    assert_same_predictions(model, predictor, features)


# ------------------------------------------------------------------ joblib fallback


def test_model_skops_cannot_store_falls_back_to_joblib(package: Path) -> None:
    frame = _customers()[["age", "income"]]
    model = LogisticRegression().fit(frame, frame["age"] > 40)
    # A DataFrame attached to a model is common (training summaries); skops cannot
    # store one, pickle can, and the allow-list admits it.
    model.training_summary_ = frame.describe()
    saved, predictor = _round_trip(model, package)

    assert saved.spec["format"] == "joblib"
    assert saved.spec["file"] == "model.joblib"
    assert "trusted_types" not in saved.spec
    assert sorted(p.name for p in package.iterdir()) == ["model.joblib"]
    assert "joblib" in saved.libraries
    assert "skops" not in saved.libraries
    assert_same_predictions(model, predictor, frame)


def test_lambda_cannot_be_saved_and_says_why(package: Path) -> None:
    features = _numbers()
    model = make_pipeline(FunctionTransformer(lambda x: x * 2), LogisticRegression())
    model.fit(features, features[:, 0] > 0)

    with pytest.raises(InvalidArgumentError, match="module level") as caught:
        FLAVOR.save(model, package, SaveContext())
    assert "Lambdas" in str(caught.value)
    assert list(package.iterdir()) == []


# ----------------------------------------------------------- user classes and trust

CUSTOM_MODULE = '''
import numpy as np
from sklearn.base import BaseEstimator, TransformerMixin


class Doubler(TransformerMixin, BaseEstimator):
    """Multiplies every feature by two."""

    def fit(self, X, y=None):
        return self

    def transform(self, X):
        return np.asarray(X) * 2.0
'''


@pytest.fixture
def custom_steps(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Any:
    """A user's own module, importable as ``modelport_test_steps``."""
    source = tmp_path / "code"
    source.mkdir()
    (source / "modelport_test_steps.py").write_text(CUSTOM_MODULE)
    monkeypatch.syspath_prepend(str(source))
    monkeypatch.delitem(sys.modules, "modelport_test_steps", raising=False)
    module = importlib.import_module("modelport_test_steps")
    # Let monkeypatch remove the module again after the test.
    monkeypatch.setitem(sys.modules, "modelport_test_steps", module)
    return module


def _custom_pipeline(custom_steps: Any) -> tuple[Pipeline, np.ndarray]:
    features = _numbers()
    model = make_pipeline(custom_steps.Doubler(), LogisticRegression())
    return model.fit(features, features[:, 0] > 0), features


def test_user_class_is_refused_without_trust(custom_steps: Any, package: Path) -> None:
    model, _ = _custom_pipeline(custom_steps)
    with pytest.raises(UnsafeModelError) as caught:
        FLAVOR.save(model, package, SaveContext())
    assert caught.value.offending == ("modelport_test_steps.Doubler",)
    assert "modelport_test_steps.Doubler" in str(caught.value)
    assert "trust=" in str(caught.value)
    assert list(package.iterdir()) == []


def test_user_class_is_accepted_with_trust_and_recorded(custom_steps: Any, package: Path) -> None:
    model, features = _custom_pipeline(custom_steps)
    saved, predictor = _round_trip(model, package, trust=("modelport_test_steps.*",))

    assert saved.spec["format"] == "skops"
    assert saved.trusted == ("modelport_test_steps.Doubler",)
    assert saved.spec["trusted_types"] == ["modelport_test_steps.Doubler"]
    assert_same_predictions(model, predictor, features)


def test_load_checks_the_file_not_the_spec(custom_steps: Any, package: Path) -> None:
    model, _ = _custom_pipeline(custom_steps)
    saved = FLAVOR.save(model, package, SaveContext(trust=("modelport_test_steps.*",)))
    # The spec lists the type, but the caller trusts nothing at load.
    with pytest.raises(UnsafeModelError, match=r"modelport_test_steps\.Doubler"):
        FLAVOR.load(package, saved.spec, LoadContext())


@pytest.mark.parametrize("suffix", [".joblib", ".pkl"])
def test_imported_pickle_with_user_class_needs_trust(
    custom_steps: Any, package: Path, tmp_path: Path, suffix: str
) -> None:
    model, features = _custom_pipeline(custom_steps)
    source = tmp_path / f"custom{suffix}"
    if suffix == ".joblib":
        joblib.dump(model, source)
    else:
        source.write_bytes(pickle.dumps(model))

    with pytest.raises(UnsafeModelError, match=r"modelport_test_steps\.Doubler"):
        FLAVOR.import_file(source, package, SaveContext())
    assert list(package.iterdir()) == []

    saved = FLAVOR.import_file(source, package, SaveContext(trust=("modelport_test_steps.*",)))
    assert saved.trusted == ("modelport_test_steps.Doubler",)
    predictor = FLAVOR.load(package, saved.spec, LoadContext(trust=saved.trusted))
    assert_same_predictions(model, predictor, features)


# --------------------------------------------------------------------------- imports


def _write_model_file(model: Any, path: Path, **options: Any) -> None:
    if path.suffix == ".skops":
        sio.dump(model, path)
    elif path.suffix == ".joblib":
        joblib.dump(model, path, **options)
    else:
        path.write_bytes(pickle.dumps(model, **options))


@pytest.mark.parametrize(
    ("name", "options", "fmt", "stored"),
    [
        ("model.skops", {}, "skops", "model.skops"),
        ("model.joblib", {}, "joblib", "model.joblib"),
        ("model.joblib", {"compress": 3}, "joblib", "model.joblib"),
        ("model.pkl", {"protocol": 2}, "pickle", "model.pkl"),
        ("model.pkl", {"protocol": 5}, "pickle", "model.pkl"),
        ("model.pickle", {}, "pickle", "model.pkl"),
    ],
)
def test_import_of_files_made_by_the_libraries(
    tmp_path: Path, package: Path, name: str, options: dict[str, Any], fmt: str, stored: str
) -> None:
    pipeline, frame = _churn_pipeline()
    source = tmp_path / name
    _write_model_file(pipeline, source, **options)

    assert FLAVOR.reads(source)
    saved = FLAVOR.import_file(source, package, SaveContext())
    assert saved.spec["format"] == fmt
    assert saved.spec["file"] == stored
    assert saved.spec["model_class"] == "sklearn.pipeline.Pipeline"
    assert (package / stored).read_bytes() == source.read_bytes()
    predictor = FLAVOR.load(package, saved.spec, LoadContext())
    assert_same_predictions(pipeline, predictor, frame)


def test_import_of_a_package_saved_by_the_flavor(tmp_path: Path, package: Path) -> None:
    pipeline, frame = _churn_pipeline()
    first = tmp_path / "first"
    first.mkdir()
    FLAVOR.save(pipeline, first, SaveContext())

    saved = FLAVOR.import_file(first / "model.skops", package, SaveContext())
    assert_same_predictions(pipeline, FLAVOR.load(package, saved.spec, LoadContext()), frame)


@pytest.mark.parametrize("name", ["scaler.skops", "scaler.joblib", "scaler.pkl"])
def test_import_of_something_that_cannot_predict(tmp_path: Path, package: Path, name: str) -> None:
    source = tmp_path / name
    _write_model_file(StandardScaler().fit(_numbers()), source)
    with pytest.raises(InvalidArgumentError, match=r"StandardScaler.* predict"):
        FLAVOR.import_file(source, package, SaveContext())
    assert list(package.iterdir()) == []


def _corrupt_files(tmp_path: Path) -> dict[str, bytes]:
    pipeline, _ = _churn_pipeline()
    made = tmp_path / "made"
    made.mkdir()
    for name in ("m.skops", "m.joblib", "m.pkl"):
        _write_model_file(pipeline, made / name)
    skops_bytes = (made / "m.skops").read_bytes()
    no_schema = io.BytesIO()
    with zipfile.ZipFile(no_schema, "w") as archive:
        archive.writestr("other.json", "{}")
    bad_schema = io.BytesIO()
    with zipfile.ZipFile(bad_schema, "w") as archive:
        archive.writestr("schema.json", "{not json")
    return {
        "empty.skops": b"",
        "truncated.skops": skops_bytes[: len(skops_bytes) // 2],
        "text.skops": b"this is not a zip archive",
        "no-schema.skops": no_schema.getvalue(),
        "bad-schema.skops": bad_schema.getvalue(),
        "empty.joblib": b"",
        "truncated.joblib": (made / "m.joblib").read_bytes()[:300],
        "garbage.joblib": b"\x00\x01garbage" * 10,
        "empty.pkl": b"",
        "truncated.pkl": (made / "m.pkl").read_bytes()[:300],
        "text.pkl": b"hello, I am not a pickle",
    }


def test_corrupt_files_are_reported_by_name(tmp_path: Path, package: Path) -> None:
    for name, content in _corrupt_files(tmp_path).items():
        source = tmp_path / name
        source.write_bytes(content)
        with pytest.raises(CorruptModelFileError) as caught:
            FLAVOR.import_file(source, package, SaveContext())
        assert name in str(caught.value), name
        assert list(package.iterdir()) == [], name


@pytest.mark.parametrize("cut", [0.1, 0.5, 0.9, 0.99])
def test_truncated_joblib_files_are_corrupt(tmp_path: Path, package: Path, cut: float) -> None:
    pipeline, _ = _churn_pipeline()
    whole = tmp_path / "whole.joblib"
    joblib.dump(pipeline, whole)
    data = whole.read_bytes()
    source = tmp_path / "cut.joblib"
    source.write_bytes(data[: int(len(data) * cut)])
    with pytest.raises(CorruptModelFileError, match=r"cut\.joblib"):
        FLAVOR.import_file(source, package, SaveContext())


def test_reads_recognises_its_files(tmp_path: Path) -> None:
    files = _corrupt_files(tmp_path)
    for name, content in files.items():
        (tmp_path / name).write_bytes(content)
    pipeline, _ = _churn_pipeline()
    _write_model_file(pipeline, tmp_path / "good.skops")

    assert FLAVOR.reads(tmp_path / "good.skops")
    assert FLAVOR.reads(tmp_path / "no-schema.skops")  # a zip; content is checked on import
    assert not FLAVOR.reads(tmp_path / "text.skops")
    assert not FLAVOR.reads(tmp_path / "empty.skops")
    assert not FLAVOR.reads(tmp_path / "empty.pkl")
    assert FLAVOR.reads(tmp_path / "text.pkl")
    assert not FLAVOR.reads(tmp_path / "missing.pkl")


def test_import_refuses_other_suffixes(tmp_path: Path, package: Path) -> None:
    source = tmp_path / "model.onnx"
    source.write_bytes(b"x")
    with pytest.raises(InvalidArgumentError, match=r"\.skops"):
        FLAVOR.import_file(source, package, SaveContext())


def test_load_refuses_a_bad_spec(package: Path) -> None:
    pipeline, _ = _churn_pipeline()
    saved = FLAVOR.save(pipeline, package, SaveContext())
    with pytest.raises(CorruptModelFileError, match="format"):
        FLAVOR.load(package, {**saved.spec, "format": "cloudpickle"}, LoadContext())
    with pytest.raises(CorruptModelFileError, match="file name"):
        FLAVOR.load(package, {**saved.spec, "file": "../model.skops"}, LoadContext())


# -------------------------------------------------------------------------- catalog


def test_catalog_finds_the_flavor_for_objects_and_files(tmp_path: Path) -> None:
    catalog = FlavorCatalog([SklearnFlavor()])
    pipeline, _ = _churn_pipeline()
    assert catalog.for_object(pipeline).name == "sklearn"
    for name in ("m.skops", "m.joblib", "m.pkl"):
        _write_model_file(pipeline, tmp_path / name)
        assert catalog.for_file(tmp_path / name).name == "sklearn"


# ---------------------------------------------------------------- missing libraries


def test_missing_sklearn_names_the_extra(
    monkeypatch: pytest.MonkeyPatch, package: Path, tmp_path: Path
) -> None:
    pipeline, _ = _churn_pipeline()
    saved = FLAVOR.save(pipeline, package, SaveContext())
    monkeypatch.setitem(sys.modules, "sklearn", None)
    with pytest.raises(MissingDependencyError, match=r"pip install 'modelport\[sklearn\]'"):
        FLAVOR.load(package, saved.spec, LoadContext())
    with pytest.raises(MissingDependencyError, match="scikit-learn"):
        FLAVOR.save(pipeline, tmp_path, SaveContext())


def test_missing_skops_names_the_extra(monkeypatch: pytest.MonkeyPatch, package: Path) -> None:
    pipeline, _ = _churn_pipeline()
    saved = FLAVOR.save(pipeline, package, SaveContext())
    monkeypatch.setitem(sys.modules, "skops.io", None)
    with pytest.raises(MissingDependencyError, match=r"pip install 'modelport\[sklearn\]'"):
        FLAVOR.load(package, saved.spec, LoadContext())


# ------------------------------------------------------------------ malicious files


class _Payload:
    """Pickles as a call to ``function(argument)``."""

    def __init__(self, function: Any, argument: Any) -> None:
        self.function = function
        self.argument = argument

    def __reduce__(self) -> tuple[Any, tuple[Any, ...]]:
        return self.function, (self.argument,)


def _payloads(marker: Path) -> dict[str, _Payload]:
    """Each payload creates ``marker`` if it runs."""
    statement = f"open({str(marker)!r}, 'w').close()"
    return {
        "posix.system": _Payload(os.system, f"touch {marker}"),
        "builtins.exec": _Payload(exec, statement),
        "builtins.eval": _Payload(eval, statement),
        "subprocess.Popen": _Payload(subprocess.Popen, ["touch", str(marker)]),
    }


PAYLOAD_NAMES = ["posix.system", "builtins.exec", "builtins.eval", "subprocess.Popen"]


def test_payloads_do_run_when_unpickled_naively(tmp_path: Path) -> None:
    # The control for the refusal tests below: the marker proves execution.
    marker = tmp_path / "ran"
    pickle.loads(pickle.dumps(_payloads(marker)["builtins.exec"]))
    assert marker.exists()


def _assert_refused(source: Path, package: Path, offending: str, marker: Path) -> None:
    with pytest.raises(UnsafeModelError) as caught:
        FLAVOR.import_file(source, package, SaveContext())
    assert offending in caught.value.offending
    assert offending in str(caught.value)
    assert not marker.exists()
    assert list(package.iterdir()) == []


@pytest.mark.parametrize("protocol", [0, 2, 5])
@pytest.mark.parametrize("offending", PAYLOAD_NAMES)
def test_malicious_pickle_is_refused(
    tmp_path: Path, package: Path, protocol: int, offending: str
) -> None:
    marker = tmp_path / "ran"
    source = tmp_path / "model.pkl"
    source.write_bytes(pickle.dumps(_payloads(marker)[offending], protocol=protocol))
    with pytest.raises(UnsafeModelError):
        FLAVOR.import_file(source, package, SaveContext())
    assert not marker.exists()
    assert list(package.iterdir()) == []


@pytest.mark.parametrize("protocol", [0, 2, 5])
@pytest.mark.parametrize("offending", PAYLOAD_NAMES)
def test_refused_pickle_names_the_python3_global(
    tmp_path: Path, package: Path, protocol: int, offending: str
) -> None:
    marker = tmp_path / "ran"
    source = tmp_path / "model.pkl"
    source.write_bytes(pickle.dumps(_payloads(marker)[offending], protocol=protocol))
    _assert_refused(source, package, offending, marker)


@pytest.mark.parametrize("compress", [0, 3, ("gzip", 3)])
@pytest.mark.parametrize("offending", PAYLOAD_NAMES)
def test_malicious_joblib_is_refused(
    tmp_path: Path, package: Path, compress: Any, offending: str
) -> None:
    marker = tmp_path / "ran"
    source = tmp_path / "model.joblib"
    joblib.dump(_payloads(marker)[offending], source, compress=compress)
    _assert_refused(source, package, offending, marker)


@pytest.mark.parametrize("compress", [0, 3])
def test_payload_inside_an_object_array_is_refused(
    tmp_path: Path, package: Path, compress: int
) -> None:
    marker = tmp_path / "ran"
    weights = np.empty(2, dtype=object)
    weights[0], weights[1] = 1.0, _payloads(marker)["posix.system"]
    pipeline, _ = _churn_pipeline()
    pipeline.extra_weights_ = weights
    source = tmp_path / "model.joblib"
    joblib.dump(pipeline, source, compress=compress)
    _assert_refused(source, package, "posix.system", marker)


def _rewrite_skops(source: Path, target: Path, change: Any) -> None:
    """Copy a skops archive, passing each member's bytes through ``change(name, data)``."""
    with zipfile.ZipFile(source) as archive:
        entries = {info.filename: archive.read(info) for info in archive.infolist()}
    with zipfile.ZipFile(target, "w") as archive:
        for filename, content in entries.items():
            archive.writestr(filename, change(filename, content))


def _redirect_function(node: Any, module: str, name: str) -> Any:
    """The schema with every FunctionNode pointing at ``module.name``."""
    if isinstance(node, dict):
        if node.get("__loader__") == "FunctionNode":
            return {**node, "__module__": module, "__class__": name}
        return {key: _redirect_function(value, module, name) for key, value in node.items()}
    if isinstance(node, list):
        return [_redirect_function(value, module, name) for value in node]
    return node


def _skops_with_function(tmp_path: Path, module: str, name: str) -> Path:
    """A skops archive whose FunctionTransformer calls ``module.name``."""
    features = np.abs(_numbers())
    model = make_pipeline(FunctionTransformer(np.log1p), LogisticRegression())
    model.fit(features, features[:, 0] > 1)
    clean, crafted = tmp_path / "clean.skops", tmp_path / "crafted.skops"
    sio.dump(model, clean)

    def change(filename: str, data: bytes) -> bytes:
        if filename != "schema.json":
            return data
        return json.dumps(_redirect_function(json.loads(data), module, name)).encode()

    _rewrite_skops(clean, crafted, change)
    assert sio.get_untrusted_types(file=crafted) == [f"{module}.{name}"]
    return crafted


@pytest.mark.parametrize(("module", "name"), [("posix", "system"), ("builtins", "eval")])
def test_skops_file_naming_a_dangerous_function_is_refused(
    tmp_path: Path, package: Path, module: str, name: str
) -> None:
    source = _skops_with_function(tmp_path, module, name)
    with pytest.raises(UnsafeModelError) as caught:
        FLAVOR.import_file(source, package, SaveContext())
    assert caught.value.offending == (f"{module}.{name}",)
    assert "crafted.skops" in str(caught.value)
    assert list(package.iterdir()) == []


def test_skops_file_with_a_pickled_array_is_refused(tmp_path: Path, package: Path) -> None:
    marker = tmp_path / "ran"
    pipeline, _ = _churn_pipeline()
    clean, crafted = tmp_path / "clean.skops", tmp_path / "crafted.skops"
    sio.dump(pipeline, clean)
    payload = io.BytesIO()
    np.save(payload, np.array([_payloads(marker)["posix.system"]], dtype=object))

    def change(filename: str, data: bytes) -> bytes:
        return payload.getvalue() if filename.endswith(".npy") else data

    _rewrite_skops(clean, crafted, change)
    with pytest.raises(CorruptModelFileError, match=r"crafted\.skops"):
        FLAVOR.import_file(crafted, package, SaveContext())
    assert not marker.exists()
    assert list(package.iterdir()) == []


def test_pickle_disguised_as_skops_is_refused(tmp_path: Path, package: Path) -> None:
    marker = tmp_path / "ran"
    source = tmp_path / "model.skops"
    source.write_bytes(pickle.dumps(_payloads(marker)["posix.system"]))
    assert not FLAVOR.reads(source)
    with pytest.raises(CorruptModelFileError, match=r"model\.skops"):
        FLAVOR.import_file(source, package, SaveContext())
    assert not marker.exists()


def test_malicious_file_in_a_package_is_refused_at_load(tmp_path: Path, package: Path) -> None:
    marker = tmp_path / "ran"
    (package / "model.joblib").write_bytes(b"")
    joblib.dump(_payloads(marker)["posix.system"], package / "model.joblib")
    spec = {"format": "joblib", "file": "model.joblib", "model_class": "x", "supports_proba": False}
    with pytest.raises(UnsafeModelError, match=r"posix\.system"):
        FLAVOR.load(package, spec, LoadContext())
    assert not marker.exists()


def test_loading_a_skops_model_does_not_import_torch(package: Path) -> None:
    # skops walks every scikit-learn subpackage; torch's adapter among them would
    # import torch (~190 MB per serving worker) for a model that never uses it.
    pytest.importorskip("torch")
    pipeline, _ = _churn_pipeline()
    saved = FLAVOR.save(pipeline, package, SaveContext())
    assert saved.spec["format"] == "skops"
    script = (
        "import json, sys\n"
        "from pathlib import Path\n"
        "from modelport.flavors.base import LoadContext\n"
        "from modelport.flavors.sklearn import SklearnFlavor\n"
        "SklearnFlavor().load(Path(sys.argv[1]), json.loads(sys.argv[2]), LoadContext())\n"
        "after_load = 'torch' in sys.modules\n"
        "import sklearn.externals.array_api_compat.torch  # still importable afterwards\n"
        "print(after_load, 'torch' in sys.modules)\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", script, str(package), json.dumps(saved.spec)],
        capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["False", "True"]


@pytest.mark.parametrize(
    ("columns", "message"),
    [
        (["Unnamed: 0", "a", "b"], "columns the model was not fitted on: 'Unnamed: 0'"),
        (["a", "b", "target"], "columns the model was not fitted on: 'target'"),
        (["a"], "no column for the features 'b'"),
        (["b", "a"], "in another order than the model was fitted on ('a', 'b')"),
    ],
)
def test_a_sample_with_other_columns_than_the_model_is_refused_by_name(
    tmp_path: Path, columns: list[str], message: str
) -> None:
    import modelport
    from modelport.errors import InvalidSampleError

    frame = pd.DataFrame({"a": [0.0, 1.0, 2.0, 3.0], "b": [1.0, 0.0, 1.0, 0.0]})
    model = LogisticRegression().fit(frame, [0, 1, 0, 1])
    sample = pd.DataFrame({name: frame.get(name, pd.Series(range(4))) for name in columns})
    with pytest.raises(InvalidSampleError, match=re.escape(message)) as raised:
        modelport.save(model, tmp_path / "package", sample_input=sample)
    if columns[0].startswith("Unnamed"):
        assert "to_csv(..., index=False)" in str(raised.value)
    assert not (tmp_path / "package").exists() or not any((tmp_path / "package").iterdir())


def test_a_distribution_installed_after_a_registration_is_still_listed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The module-to-distribution map is kept between registrations (it costs half a
    # second to build), so it must notice a distribution installed since.
    from modelport.flavors.sklearn_components import component_distributions

    site = tmp_path / "site"
    site.mkdir()
    monkeypatch.syspath_prepend(str(site))
    model = LogisticRegression()
    assert "scikit-learn" in component_distributions(model)
    (site / "latecomer").mkdir()
    (site / "latecomer" / "__init__.py").write_text(
        "class Scaler:\n    def get_params(self, deep=True):\n        return {}\n"
    )
    info = site / "latecomer-1.0.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: latecomer\nVersion: 1.0\n")
    (info / "top_level.txt").write_text("latecomer\n")
    importlib.invalidate_caches()
    late = importlib.import_module("latecomer")
    try:
        assert "latecomer" in component_distributions(make_pipeline(late.Scaler(), model))
    finally:
        sys.modules.pop("latecomer", None)
