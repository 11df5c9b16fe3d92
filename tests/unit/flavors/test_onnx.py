"""OnnxFlavor: save / import / load of ONNX graphs, checked against scikit-learn."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from modelport.domain.signature import TensorSchema, TensorSpec
from modelport.errors import (
    CorruptModelFileError,
    InvalidArgumentError,
    InvalidInputError,
    UnsupportedOperationError,
)
from modelport.flavors.base import LoadContext, SaveContext
from modelport.flavors.onnx import OnnxFlavor

onnx = pytest.importorskip("onnx")
pytest.importorskip("onnxruntime")
skl2onnx = pytest.importorskip("skl2onnx")
helper = onnx.helper

FLAVOR = OnnxFlavor()
RNG = np.random.default_rng(0)
X = RNG.normal(size=(60, 4))
Y_CLASSES = np.array(["ant", "bee", "cat"])[RNG.integers(0, 3, size=60)]


def _round_trip(model: Any, tmp_path: Path) -> tuple[Any, Any]:
    saved = FLAVOR.save(model, tmp_path, SaveContext())
    return saved, FLAVOR.load(tmp_path, saved.spec, LoadContext())


def _convert(estimator: Any, zipmap: bool = True) -> Any:
    options = None if zipmap else {id(estimator): {"zipmap": False}}
    return skl2onnx.to_onnx(estimator, X[:1].astype(np.float32), options=options)


def _linear_graph(weights: np.ndarray, bias: np.ndarray) -> Any:
    """y = x @ W + b, written by hand with onnx.helper."""
    n_in, n_out = weights.shape
    graph = helper.make_graph(
        [
            helper.make_node("MatMul", ["x", "W"], ["xw"]),
            helper.make_node("Add", ["xw", "b"], ["y"]),
        ],
        "linear",
        [helper.make_tensor_value_info("x", onnx.TensorProto.FLOAT, ["batch", n_in])],
        [helper.make_tensor_value_info("y", onnx.TensorProto.FLOAT, ["batch", n_out])],
        initializer=[
            onnx.numpy_helper.from_array(weights.astype(np.float32), "W"),
            onnx.numpy_helper.from_array(bias.astype(np.float32), "b"),
        ],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 9
    return model


@pytest.fixture
def linear() -> tuple[Any, np.ndarray, np.ndarray]:
    weights, bias = RNG.normal(size=(4, 2)), RNG.normal(size=2)
    return _linear_graph(weights, bias), weights, bias


def test_owns_model_protos_only(linear: Any) -> None:
    assert FLAVOR.owns(linear[0])
    assert not FLAVOR.owns({"graph": 1})
    assert not FLAVOR.owns(onnx.TensorProto())


def test_describes_itself() -> None:
    assert (FLAVOR.name, FLAVOR.framework, FLAVOR.extra) == ("onnx", "onnxruntime", "onnx")
    assert FLAVOR.suffixes == (".onnx",)


@pytest.mark.parametrize("zipmap", [False, True])
def test_logistic_regression_matches_sklearn(tmp_path: Path, zipmap: bool) -> None:
    from sklearn.linear_model import LogisticRegression

    estimator = LogisticRegression().fit(X, Y_CLASSES)
    saved, predictor = _round_trip(_convert(estimator, zipmap=zipmap), tmp_path)

    assert saved.spec["label_output"] in ("label", "output_label")
    assert predictor.supports_proba
    np.testing.assert_array_equal(predictor.predict(X), estimator.predict(X))
    np.testing.assert_allclose(predictor.predict_proba(X), estimator.predict_proba(X), atol=1e-5)


def test_random_forest_with_zipmap_orders_probabilities_by_class(tmp_path: Path) -> None:
    from sklearn.ensemble import RandomForestClassifier

    y = RNG.integers(0, 3, size=60)
    estimator = RandomForestClassifier(n_estimators=5, random_state=0).fit(X, y)
    _, predictor = _round_trip(_convert(estimator), tmp_path)

    proba = predictor.predict_proba(X[:7])
    assert proba.shape == (7, 3)
    np.testing.assert_allclose(proba, estimator.predict_proba(X[:7]), atol=1e-5)
    np.testing.assert_array_equal(predictor.predict(X[:7]), estimator.predict(X[:7]))


def test_regressor_has_no_probabilities(tmp_path: Path) -> None:
    from sklearn.linear_model import LinearRegression

    estimator = LinearRegression().fit(X, X @ np.arange(4.0))
    saved, predictor = _round_trip(_convert(estimator), tmp_path)

    assert saved.spec["probability_output"] is None
    assert not predictor.supports_proba
    np.testing.assert_allclose(predictor.predict(X).ravel(), estimator.predict(X), rtol=1e-4)
    with pytest.raises(UnsupportedOperationError):
        predictor.predict_proba(X)


def test_signature_comes_from_the_graph(tmp_path: Path, linear: Any) -> None:
    saved = FLAVOR.save(linear[0], tmp_path, SaveContext())

    assert saved.libraries == ("onnxruntime",)
    assert saved.signature is not None
    assert saved.signature.inputs == TensorSchema((TensorSpec("x", "float32", (-1, 4)),))
    assert saved.signature.outputs == TensorSchema((TensorSpec("y", "float32", (-1, 2)),))
    assert saved.spec["file"] == "model.onnx"
    assert (tmp_path / "model.onnx").is_file()


def test_zipmap_output_is_described_as_a_matrix(tmp_path: Path) -> None:
    from sklearn.linear_model import LogisticRegression

    estimator = LogisticRegression().fit(X, Y_CLASSES)
    saved = FLAVOR.save(_convert(estimator), tmp_path, SaveContext())

    assert saved.signature is not None
    assert saved.signature.outputs == TensorSchema(
        (
            TensorSpec("output_label", "string", (-1,)),
            TensorSpec("output_probability", "float32", (-1, -1)),
        )
    )


def test_hand_built_graph_casts_float64_and_accepts_frames_and_dicts(
    tmp_path: Path, linear: Any
) -> None:
    model, weights, bias = linear
    _, predictor = _round_trip(model, tmp_path)
    expected = X[:5] @ weights + bias

    np.testing.assert_allclose(predictor.predict(X[:5]), expected, rtol=1e-5, atol=1e-5)
    frame = pd.DataFrame(X[:5], columns=list("abcd"))
    np.testing.assert_allclose(predictor.predict(frame), expected, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(predictor.predict({"x": X[:5]}), expected, rtol=1e-5, atol=1e-5)
    with pytest.raises(InvalidInputError, match="missing input tensor 'x'"):
        predictor.predict({"y": X[:5]})
    assert not predictor.supports_proba
    predictor.close()


def test_per_column_inputs_take_a_dataframe(tmp_path: Path) -> None:
    from sklearn.compose import ColumnTransformer
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import OneHotEncoder, StandardScaler

    frame = pd.DataFrame(
        {"colour": np.array(["red", "green", "blue"])[RNG.integers(0, 3, 60)], "size": X[:, 0]}
    )
    pipeline = Pipeline(
        [
            ("columns", ColumnTransformer(
                [("cat", OneHotEncoder(), ["colour"]), ("num", StandardScaler(), ["size"])]
            )),
            ("model", LogisticRegression()),
        ]
    ).fit(frame, Y_CLASSES)  # fmt: skip
    # float32 columns make skl2onnx emit float inputs; the float64 frame is cast at predict.
    example = frame[:1].astype({"size": np.float32})
    model = skl2onnx.to_onnx(pipeline, example, options={id(pipeline[-1]): {"zipmap": False}})
    saved, predictor = _round_trip(model, tmp_path)

    assert saved.spec["inputs"] == ["colour", "size"]
    np.testing.assert_array_equal(predictor.predict(frame), pipeline.predict(frame))
    np.testing.assert_allclose(
        predictor.predict_proba(frame), pipeline.predict_proba(frame), atol=1e-5
    )
    with pytest.raises(InvalidInputError, match="inputs 'colour', 'size'"):
        predictor.predict(X[:, :2])
    with pytest.raises(InvalidInputError, match="missing column 'size'"):
        predictor.predict(frame[["colour"]])


def test_import_file_copies_and_describes_the_model(tmp_path: Path, linear: Any) -> None:
    source = tmp_path / "linear.onnx"
    onnx.save_model(linear[0], str(source))
    target = tmp_path / "package"
    target.mkdir()

    assert FLAVOR.reads(source)
    saved = FLAVOR.import_file(source, target, SaveContext())
    predictor = FLAVOR.load(target, saved.spec, LoadContext())

    assert (target / "model.onnx").read_bytes() == source.read_bytes()
    np.testing.assert_allclose(
        predictor.predict(X[:3]), X[:3] @ linear[1] + linear[2], rtol=1e-5, atol=1e-5
    )


@pytest.mark.parametrize(
    "content", [b"", b"this is not a protobuf at all \xff\xfe", b"\x08\x07\x12\x05abc"]
)
def test_garbage_files_are_corrupt(tmp_path: Path, content: bytes) -> None:
    source = tmp_path / "broken.onnx"
    source.write_bytes(content)
    target = tmp_path / "package"
    target.mkdir()

    with pytest.raises(CorruptModelFileError, match=r"broken\.onnx"):
        FLAVOR.import_file(source, target, SaveContext())
    assert not any(target.iterdir())


def test_truncated_file_is_corrupt(tmp_path: Path, linear: Any) -> None:
    source = tmp_path / "cut.onnx"
    source.write_bytes(linear[0].SerializeToString()[:-20])

    with pytest.raises(CorruptModelFileError, match=r"cut\.onnx"):
        FLAVOR.import_file(source, tmp_path, SaveContext())


def test_external_data_is_refused(tmp_path: Path, linear: Any) -> None:
    source = tmp_path / "external.onnx"
    onnx.save_model(
        linear[0], str(source), save_as_external_data=True, location="weights.bin", size_threshold=0
    )
    target = tmp_path / "package"
    target.mkdir()

    with pytest.raises(InvalidArgumentError, match="external data"):
        FLAVOR.import_file(source, target, SaveContext())
    assert not any(target.iterdir())


def test_invalid_live_model_is_refused(tmp_path: Path) -> None:
    graph = helper.make_graph(
        [helper.make_node("NoSuchOp", ["x"], ["y"])],
        "bad",
        [helper.make_tensor_value_info("x", onnx.TensorProto.FLOAT, [1])],
        [helper.make_tensor_value_info("y", onnx.TensorProto.FLOAT, [1])],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])

    with pytest.raises(InvalidArgumentError, match="not valid"):
        FLAVOR.save(model, tmp_path, SaveContext())
