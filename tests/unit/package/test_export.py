"""``modelport.export``: a package's model as one ONNX file that onnxruntime runs on its
own and answers like the native model; quantized where the graph has weights for it,
refused (or written with a warning) beyond the accuracy tolerance, and carrying its
signature in the graph's metadata."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

import modelport
from modelport.errors import (
    AccuracyLossError,
    AccuracyLossWarning,
    InvalidArgumentError,
    QuantizationSkippedWarning,
    UnsupportedOperationError,
)
from modelport.flavors.pyfunc import PythonModel

ort = pytest.importorskip("onnxruntime")
pytest.importorskip("skl2onnx")

COLUMNS = [f"f{i}" for i in range(8)]


def frame(rows: int, seed: int) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    return pd.DataFrame(rng.normal(size=(rows, len(COLUMNS))), columns=COLUMNS)


def target(data: pd.DataFrame) -> np.ndarray:
    return (data["f0"] + data["f1"] - data["f2"] > 0).to_numpy().astype(np.int64)


TRAIN, FRESH = frame(400, 0), frame(300, 1)


def saved(model: Any, tmp_path: Path, **options: Any) -> Path:
    """``model`` fitted on TRAIN and saved as a package."""
    model.fit(TRAIN, target(TRAIN))
    directory = tmp_path / "package"
    modelport.save(model, directory, sample_input=TRAIN, **options)
    return directory


def session(path: Path) -> Any:
    return ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])


def run_matrix(path: Path, data: pd.DataFrame) -> list[np.ndarray]:
    """The exported graph run by onnxruntime alone, fed as its metadata says: one matrix
    of the columns in ``modelport.columns`` order, in the input's own type."""
    graph = session(path)
    meta = graph.get_modelmeta().custom_metadata_map
    assert meta["modelport.input_layout"] == "matrix"
    (port,) = json.loads(meta["modelport.inputs"])
    dtype = np.dtype(port["type"])
    matrix = data[json.loads(meta["modelport.columns"])].to_numpy(dtype=dtype)
    outputs = [meta["modelport.label_output"], meta["modelport.probabilities_output"]]
    return list(graph.run(outputs, {port["name"]: matrix}))


def test_a_logistic_regression_exports_the_packages_verified_graph(tmp_path: Path) -> None:
    from sklearn.linear_model import LogisticRegression

    model = LogisticRegression()
    directory = saved(model, tmp_path)
    out = tmp_path / "churn.onnx"

    result = modelport.export(directory, out)

    assert result.path == out and out.stat().st_size == result.size_bytes
    assert result.graph == "package" and result.quantization is None
    labels, probabilities = run_matrix(out, FRESH)
    np.testing.assert_array_equal(labels, model.predict(FRESH))
    np.testing.assert_allclose(probabilities, model.predict_proba(FRESH), atol=1e-6)
    accuracy = result.accuracy
    assert (accuracy.example_rows, accuracy.reference_rows) == (5, 256)
    assert accuracy.label_agreement == 1.0 and accuracy.within_tolerance


def test_the_signature_and_ports_are_in_the_graphs_metadata(tmp_path: Path) -> None:
    from sklearn.linear_model import LogisticRegression

    directory = saved(LogisticRegression(), tmp_path)
    result = modelport.export(directory, tmp_path / "model.onnx")

    meta = session(result.path).get_modelmeta().custom_metadata_map
    signature = json.loads(meta["modelport.signature"])
    assert [c["name"] for c in signature["inputs"]["columns"]] == COLUMNS
    assert json.loads(meta["modelport.columns"]) == COLUMNS
    assert json.loads(meta["modelport.inputs"]) == [
        {"name": "input", "type": "float64", "shape": [None, 8]}
    ]
    assert json.loads(meta["modelport.inputs"]) == result.inputs
    assert {o["name"] for o in json.loads(meta["modelport.outputs"])} == {"label", "probabilities"}
    assert meta["modelport.flavor"] == "sklearn"
    assert meta["modelport.quantization"] == "none"
    assert meta["modelport.source"] == str(directory)
    assert "modelport.model" not in meta  # a directory, not a registered version


def test_a_forest_without_a_stored_graph_is_converted_and_verified_now(tmp_path: Path) -> None:
    from sklearn.ensemble import RandomForestClassifier

    # An odd number of trees: no 50/50 votes, whose ties graphs may break otherwise.
    model = RandomForestClassifier(n_estimators=25, max_depth=6, random_state=0)
    directory = saved(model, tmp_path, accelerate=False)

    result = modelport.export(directory, tmp_path / "forest.onnx")

    assert result.graph == "converted"
    labels, probabilities = run_matrix(result.path, FRESH)
    np.testing.assert_array_equal(labels, model.predict(FRESH))
    np.testing.assert_allclose(probabilities, model.predict_proba(FRESH), atol=1e-5)


def test_quantizing_a_forest_says_there_is_nothing_to_quantize(tmp_path: Path) -> None:
    from sklearn.ensemble import RandomForestClassifier

    model = RandomForestClassifier(n_estimators=25, max_depth=6, random_state=0)
    directory = saved(model, tmp_path)

    with pytest.warns(QuantizationSkippedWarning, match="tree ensemble"):
        result = modelport.export(directory, tmp_path / "forest.onnx", quantize="int8")

    quantization = result.quantization
    assert quantization is not None and not quantization.applied
    assert quantization.quantized_weights == 0
    assert "nothing to quantize" in (quantization.note or "")
    assert quantization.note in result.notes
    meta = session(result.path).get_modelmeta().custom_metadata_map
    assert meta["modelport.quantization"] == "none"
    labels, _ = run_matrix(result.path, FRESH)
    np.testing.assert_array_equal(labels, model.predict(FRESH))


def mlp() -> Any:
    from sklearn.neural_network import MLPClassifier

    # Converged (tol reached well before max_iter): no ConvergenceWarning.
    return MLPClassifier(hidden_layer_sizes=(64, 32), max_iter=2000, random_state=0)


def test_an_mlp_quantizes_to_int8_within_the_tolerance(tmp_path: Path) -> None:
    model = mlp()
    directory = saved(model, tmp_path)

    result = modelport.export(directory, tmp_path / "mlp.onnx", quantize="int8", tolerance=0.15)

    quantization = result.quantization
    assert quantization is not None and quantization.applied
    assert quantization.quantized_weights == 3  # one weight matrix per layer
    assert quantization.bytes_after < quantization.bytes_before
    assert result.graph == "converted"  # float32 weights: the stored graph has float64 ones
    ops = {node.op_type for node in __import__("onnx").load(str(result.path)).graph.node}
    assert "MatMulInteger" in ops
    accuracy = result.accuracy
    assert accuracy.within_tolerance and accuracy.label_agreement is not None
    assert accuracy.label_agreement >= 0.99 and accuracy.max_abs_diff is not None
    assert 0 < accuracy.max_abs_diff <= 0.15
    labels, probabilities = run_matrix(result.path, FRESH)
    assert np.mean(labels == model.predict(FRESH)) >= 0.97
    assert np.abs(probabilities - model.predict_proba(FRESH)).max() <= 0.2
    meta = session(result.path).get_modelmeta().custom_metadata_map
    assert meta["modelport.quantization"] == "int8-dynamic"


def test_beyond_the_tolerance_the_export_is_refused_with_the_numbers(tmp_path: Path) -> None:
    directory = saved(mlp(), tmp_path)
    out = tmp_path / "mlp.onnx"

    with pytest.raises(AccuracyLossError) as caught:
        modelport.export(directory, out, quantize="int8", tolerance=1e-9)

    message = str(caught.value)
    assert "probabilities differ by up to" in message and "tolerance 1e-09" in message
    assert "--allow-accuracy-loss" in message
    assert caught.value.accuracy["max_abs_diff"] > 1e-9
    assert caught.value.to_dict()["code"] == "ACCURACY_LOSS"
    assert not out.exists() and list(tmp_path.glob(".mlp.onnx*")) == []


def test_allowing_the_accuracy_loss_writes_the_graph_with_a_warning(tmp_path: Path) -> None:
    directory = saved(mlp(), tmp_path)

    with pytest.warns(AccuracyLossWarning, match="written anyway"):
        result = modelport.export(
            directory, tmp_path / "mlp.onnx", quantize="int8", tolerance=1e-9,
            allow_accuracy_loss=True,
        )  # fmt: skip

    assert not result.accuracy.within_tolerance
    assert result.path.exists()
    assert session(result.path).get_modelmeta().custom_metadata_map["modelport.quantization"] == (
        "int8-dynamic"
    )


class RowSum(PythonModel):
    """A custom model: no converter knows it."""

    def predict(self, batch: Any) -> np.ndarray:
        return np.asarray(batch, dtype=float).sum(axis=1)


def test_a_model_that_cannot_be_converted_fails_with_the_reason(tmp_path: Path) -> None:
    directory = tmp_path / "package"
    modelport.save(RowSum(), directory, sample_input=TRAIN)
    out = tmp_path / "custom.onnx"

    with pytest.raises(UnsupportedOperationError, match="does not convert its models to ONNX"):
        modelport.export(directory, out)

    assert not out.exists()


def test_a_regressor_is_compared_on_its_values(tmp_path: Path) -> None:
    from sklearn.linear_model import Ridge

    model = Ridge().fit(TRAIN, TRAIN["f0"] * 100 + 3)
    directory = tmp_path / "package"
    modelport.save(model, directory, sample_input=TRAIN)

    result = modelport.export(directory, tmp_path / "ridge.onnx")

    assert result.accuracy.label_agreement is None
    assert result.accuracy.to_dict()["compared"] == "predictions"
    graph = session(result.path)
    (values,) = graph.run(None, {"input": FRESH.to_numpy()})[:1]
    np.testing.assert_allclose(np.ravel(values), model.predict(FRESH), rtol=1e-6)


def test_an_existing_file_is_kept_unless_overwrite(tmp_path: Path) -> None:
    from sklearn.linear_model import LogisticRegression

    directory = saved(LogisticRegression(), tmp_path)
    out = tmp_path / "model.onnx"
    out.write_bytes(b"keep me")

    with pytest.raises(InvalidArgumentError, match="already exists"):
        modelport.export(directory, out)
    assert out.read_bytes() == b"keep me"

    modelport.export(directory, out, overwrite=True)
    assert session(out).get_inputs()[0].name == "input"


@pytest.mark.parametrize("library", ["xgboost", "lightgbm"])
def test_boosted_trees_export_and_answer_like_the_native_model(
    library: str, tmp_path: Path
) -> None:
    pytest.importorskip(library)
    pytest.importorskip("onnxmltools")
    if library == "xgboost":
        from xgboost import XGBClassifier

        model: Any = XGBClassifier(n_estimators=20, max_depth=3)
    else:
        from lightgbm import LGBMClassifier

        model = LGBMClassifier(n_estimators=20, num_leaves=8, verbose=-1)
    directory = saved(model, tmp_path)

    result = modelport.export(directory, tmp_path / f"{library}.onnx")

    labels, probabilities = run_matrix(result.path, FRESH)
    np.testing.assert_array_equal(labels, model.predict(FRESH))
    np.testing.assert_allclose(probabilities, model.predict_proba(FRESH), atol=1e-5)


def test_an_onnx_model_is_its_own_graph_and_quantizes(tmp_path: Path) -> None:
    from skl2onnx import convert_sklearn
    from skl2onnx.common.data_types import FloatTensorType

    model = mlp().fit(TRAIN, target(TRAIN))
    graph = convert_sklearn(
        model, initial_types=[("x", FloatTensorType([None, 8]))],
        options={id(model): {"zipmap": False}}, target_opset={"": 17, "ai.onnx.ml": 3},
    )  # fmt: skip
    directory = tmp_path / "package"
    sample = TRAIN.to_numpy(dtype=np.float32)
    modelport.save(graph, directory, sample_input=sample)

    result = modelport.export(directory, tmp_path / "mlp.onnx", quantize="int8", tolerance=0.2)

    assert result.graph == "onnx-model" and result.input_layout is None
    assert result.quantization is not None and result.quantization.quantized_weights == 3
    meta = session(result.path).get_modelmeta().custom_metadata_map
    assert meta["modelport.flavor"] == "onnx" and meta["modelport.label_output"] == "label"
    (labels,) = session(result.path).run(["label"], {"x": FRESH.to_numpy(dtype=np.float32)})
    assert np.mean(labels == model.predict(FRESH)) >= 0.97
