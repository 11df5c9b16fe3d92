"""The generic acceleration path: any flavor with a ``to_onnx`` hook is converted by it,
then verified and recorded the same way; a flavor without one is not accelerated."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from sklearn.linear_model import LinearRegression

from modelport.domain.predictor import ModelPredictor
from modelport.domain.signature import Signature
from modelport.flavors.base import LoadContext, SaveContext, SavedFlavor
from modelport.flavors.catalog import FlavorCatalog, default_catalog
from modelport.flavors.onnx import OnnxFlavor
from modelport.flavors.onnx_conversion import (
    GraphUnavailableError,
    OnnxGraph,
    OnnxRequest,
    open_graph,
)
from modelport.flavors.sklearn import SklearnFlavor
from modelport.package.acceleration.accelerator import accelerate, converts_to_onnx
from modelport.package.manifest import ACCELERATED_FILE
from modelport.package.options import PackageOptions
from modelport.package.reader import load_package
from modelport.package.sample_schema import infer_schema
from modelport.package.writer import build_package

onnx = pytest.importorskip("onnx")
pytest.importorskip("onnxruntime")
helper = onnx.helper

TRAIN = pd.DataFrame(np.random.default_rng(3).normal(size=(120, 3)), columns=["a", "b", "c"])
TARGET = TRAIN["a"] * 2.0 - TRAIN["c"] + 0.5


class LinearFlavor:
    """A flavor of its own for linear regressions: scikit-learn files, and an optional
    hand-written graph (x @ coef * scale + intercept) as its ONNX conversion."""

    def __init__(self) -> None:
        self._files = SklearnFlavor()

    name = "linear"
    framework = "scikit-learn"
    extra = "sklearn"
    suffixes = (".skops",)

    def owns(self, obj: Any) -> bool:
        return isinstance(obj, LinearRegression)

    def reads(self, path: Path) -> bool:
        return False

    def save(self, obj: Any, directory: Path, context: SaveContext) -> SavedFlavor:
        return self._files.save(obj, directory, context)

    def import_file(self, source: Path, directory: Path, context: SaveContext) -> SavedFlavor:
        return self._files.import_file(source, directory, context)

    def load(
        self, directory: Path, spec: Mapping[str, Any], context: LoadContext
    ) -> ModelPredictor:
        return self._files.load(directory, spec, context)


class ConvertingLinearFlavor(LinearFlavor):
    """The same, with a ``to_onnx`` hook; ``scale`` other than 1 makes a wrong graph."""

    def __init__(self, scale: float = 1.0) -> None:
        super().__init__()
        self.scale = scale
        self.requests: list[OnnxRequest] = []

    def to_onnx(self, request: OnnxRequest) -> OnnxGraph:
        self.requests.append(request)
        (matrix,) = request.inputs.inputs
        model = request.model
        weights = (model.coef_ * self.scale).reshape(-1, 1)
        graph = helper.make_graph(
            [
                helper.make_node("MatMul", [matrix.name, "W"], ["xw"]),
                helper.make_node("Add", ["xw", "b"], ["variable"]),
            ],
            "linear",
            [helper.make_tensor_value_info(matrix.name, onnx.TensorProto.DOUBLE, [None, 3])],
            [helper.make_tensor_value_info("variable", onnx.TensorProto.DOUBLE, [None, 1])],
            initializer=[
                onnx.numpy_helper.from_array(weights.astype(np.float64), "W"),
                onnx.numpy_helper.from_array(np.array([model.intercept_]), "b"),
            ],
        )
        proto = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
        proto.ir_version = 9
        return open_graph(proto.SerializeToString())


class RefusingLinearFlavor(LinearFlavor):
    def to_onnx(self, request: OnnxRequest) -> OnnxGraph:
        raise GraphUnavailableError("this regression is kept native on purpose")


def package(flavor: Any, tmp_path: Path, sample: Any = TRAIN) -> Path:
    directory = tmp_path / "pkg"
    model = LinearRegression().fit(TRAIN, TARGET)
    build_package(model, directory, FlavorCatalog([flavor]), PackageOptions(sample_input=sample))
    return directory


def test_the_built_in_flavors_with_a_hook_are_the_accelerated_ones() -> None:
    catalog = default_catalog()
    accelerated = {name for name in catalog.names if converts_to_onnx(catalog.get(name))}

    assert accelerated == {"sklearn", "xgboost", "lightgbm"}


def test_a_custom_flavor_with_a_hook_is_verified_and_served(tmp_path: Path) -> None:
    flavor = ConvertingLinearFlavor()
    directory = package(flavor, tmp_path)

    (request,) = flavor.requests
    assert request.predicts_values
    assert request.inputs.layout == "matrix"
    with load_package(directory, FlavorCatalog([flavor]), accelerate=True) as fast:
        section = fast.manifest.acceleration
        assert section is not None
        assert section.status == "verified", section.reason
        assert (section.input_names, section.output_label) == (["input"], "variable")
        assert section.prediction_dtype == "float64"
        assert section.tolerance is not None and section.max_abs_diff is not None
        assert ACCELERATED_FILE in fast.manifest.files
        assert fast.runtime == "onnxruntime"
        other = TRAIN.sample(frac=1.0, random_state=1)
        np.testing.assert_allclose(fast.predict(other), 2.0 * other["a"] - other["c"] + 0.5)


def test_a_custom_graph_that_disagrees_is_not_stored(tmp_path: Path) -> None:
    directory = package(ConvertingLinearFlavor(scale=1.01), tmp_path)

    with load_package(directory, FlavorCatalog([LinearFlavor()]), accelerate=True) as loaded:
        section = loaded.manifest.acceleration
        assert section is not None
        assert section.status == "unavailable"
        assert section.reason is not None
        assert "predictions differ from the native model's" in section.reason
        assert loaded.runtime == "linear"
    assert not (directory / "accelerated").exists()


def test_a_hook_that_refuses_gives_its_reason(tmp_path: Path) -> None:
    directory = package(RefusingLinearFlavor(), tmp_path)

    with load_package(directory, FlavorCatalog([LinearFlavor()])) as loaded:
        section = loaded.manifest.acceleration
        assert section is not None
        assert (section.status, section.reason) == (
            "unavailable",
            "this regression is kept native on purpose",
        )


def test_a_custom_hook_takes_one_numeric_matrix_by_default(tmp_path: Path) -> None:
    flavor = ConvertingLinearFlavor()
    sample = TRAIN.assign(c=np.where(TRAIN["c"] > 0, "up", "down"))
    model = LinearRegression().fit(TRAIN, TARGET)
    section = accelerate(
        model,
        flavor,
        tmp_path,
        signature=Signature(inputs=infer_schema(sample)),
        sample=sample,
        sample_predictions=model.predict(TRAIN),
        sample_probabilities=None,
    )

    assert section.status == "unavailable"
    assert section.reason == (
        "linear graphs take one numeric matrix, and this model's input has text or boolean columns"
    )
    assert flavor.requests == []


@pytest.mark.parametrize("flavor", [LinearFlavor(), OnnxFlavor()], ids=["custom", "onnx"])
def test_a_flavor_without_a_hook_is_not_accelerated(tmp_path: Path, flavor: Any) -> None:
    model = LinearRegression().fit(TRAIN, TARGET)
    section = accelerate(
        model,
        flavor,
        tmp_path,
        signature=Signature(inputs=infer_schema(TRAIN)),
        sample=TRAIN,
        sample_predictions=model.predict(TRAIN),
        sample_probabilities=None,
    )

    assert section.status == "unavailable"
    assert section.reason == (
        f"the {flavor.name} flavor does not convert its models to ONNX (no to_onnx hook)"
    )
    assert not (tmp_path / "accelerated").exists()


def test_a_package_of_a_flavor_without_a_hook_has_no_section(tmp_path: Path) -> None:
    directory = package(LinearFlavor(), tmp_path)

    with load_package(directory, FlavorCatalog([LinearFlavor()]), accelerate=True) as loaded:
        assert loaded.manifest.acceleration is None
        assert loaded.runtime == "linear"
