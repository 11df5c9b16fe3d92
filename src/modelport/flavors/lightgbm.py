"""The LightGBM flavor: boosters and their scikit-learn wrappers, in LightGBM's text format.

Models are stored as LightGBM's model text (never pickled). A classifier's labels are
kept in the spec, so predictions come back with the values and dtype of the original
``LGBMClassifier.predict``.

LightGBM aborts the whole process (``std::terminate``), instead of raising, on some
malformed model texts such as a file cut off inside a tree, so every file is checked
structurally in Python before LightGBM parses it.
"""

from __future__ import annotations

import shutil
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from modelport.domain.predictor import Batch, ModelPredictor
from modelport.errors import CorruptModelFileError, InvalidArgumentError, UnsupportedOperationError
from modelport.flavors.base import LoadContext, SaveContext, SavedFlavor, mro_modules
from modelport.flavors.booster_onnx import ONNXMLTOOLS_OPSET, booster_graph
from modelport.flavors.dependencies import require
from modelport.flavors.lightgbm_text import check_model_text
from modelport.flavors.onnx_conversion import OnnxGraph, OnnxRequest, TypePlan

_FILE = "model.txt"
_WRAPPERS = ("LGBMClassifier", "LGBMRegressor", "LGBMRanker")
_JSON_SCALARS = (str, int, float, bool)


class LightGBMPredictor:
    """Predicts with a ``lightgbm.Booster``; given class labels, it reproduces
    ``LGBMClassifier.predict`` and ``predict_proba`` exactly."""

    def __init__(self, booster: Any, classes: np.ndarray | None = None) -> None:
        self._booster = booster
        self._classes = classes

    @property
    def supports_proba(self) -> bool:
        """Whether the model is a classifier."""
        return self._classes is not None

    @property
    def classes(self) -> list[Any] | None:
        """The class labels of a classifier, as Python values; None for other models."""
        return None if self._classes is None else self._classes.tolist()

    def predict(self, batch: Batch) -> Batch:
        """Class labels for a classifier, else the booster's predictions."""
        if self._classes is None:
            return self._booster.predict(_frame(batch))
        return self._classes[np.argmax(self.predict_proba(batch), axis=1)]

    def predict_proba(self, batch: Batch) -> Batch:
        """Class probabilities, one row per input row (two columns for binary models)."""
        if self._classes is None:
            raise UnsupportedOperationError(
                "this LightGBM model is not a classifier; it gives no class probabilities"
            )
        result = self._booster.predict(_frame(batch))
        if result.ndim == 1:  # binary: the booster gives P(class 1) only
            return np.vstack((1.0 - result, result)).transpose()
        return result

    def close(self) -> None:
        """Nothing to release: the booster is freed with this object."""


class LightGBMFlavor:
    """LightGBM boosters and scikit-learn wrappers, stored as LightGBM model text."""

    @property
    def name(self) -> str:
        """``lightgbm``."""
        return "lightgbm"

    @property
    def framework(self) -> str:
        """``lightgbm``."""
        return "lightgbm"

    @property
    def extra(self) -> str:
        """``lightgbm``."""
        return "lightgbm"

    @property
    def suffixes(self) -> tuple[str, ...]:
        """LightGBM's text model files."""
        return (".txt",)

    def owns(self, obj: Any) -> bool:
        """A LightGBM model object (a class from ``lightgbm`` with ``predict``)."""
        return "lightgbm" in mro_modules(obj) and callable(getattr(obj, "predict", None))

    def reads(self, path: Path) -> bool:
        """A ``.txt`` file whose first line is ``tree``."""
        if path.suffix.lower() != ".txt" or not path.is_file():
            return False
        with path.open("rb") as handle:
            head = handle.read(8)
        return head.startswith((b"tree\n", b"tree\r\n"))

    def save(self, obj: Any, directory: Path, context: SaveContext) -> SavedFlavor:
        """Write the model's booster to ``model.txt``; keep a classifier's labels in the spec."""
        lgb = _lightgbm()
        model_class = _class_name(obj, lgb)
        if model_class == "LGBMClassifier" and callable(getattr(obj, "objective", None)):
            raise InvalidArgumentError(
                "cannot save an LGBMClassifier with a custom objective function: LightGBM's "
                "model text cannot hold it; wrap the model in a modelport.PythonModel",
                field="model",
            )
        try:
            booster = obj if model_class == "Booster" else obj.booster_
        except (AttributeError, ValueError) as exc:  # NotFittedError / LightGBMError
            raise InvalidArgumentError(
                f"cannot save this {model_class}: {exc}", field="model"
            ) from None
        spec: dict[str, Any] = {"file": _FILE, "model_class": model_class}
        if model_class == "LGBMClassifier":
            spec.update(_classes_spec(np.asarray(obj.classes_)))
        booster.save_model(directory / _FILE)
        return _saved_flavor(spec)

    def import_file(self, source: Path, directory: Path, context: SaveContext) -> SavedFlavor:
        """Validate a LightGBM model text file and copy it into ``directory``."""
        if source.suffix.lower() != ".txt":
            raise InvalidArgumentError(
                f"{source.name}: LightGBM models are text files ending in .txt", field="source"
            )
        if not source.is_file():
            raise InvalidArgumentError(f"no such file: {source}", field="source")
        _load_booster(_lightgbm(), source)
        shutil.copyfile(source, directory / _FILE)
        return _saved_flavor({"file": _FILE, "model_class": "Booster"})

    def load(
        self, directory: Path, spec: Mapping[str, Any], context: LoadContext
    ) -> ModelPredictor:
        """Load the booster and, for a classifier, its labels from the spec."""
        lgb = _lightgbm()
        model_class = spec.get("model_class")
        if model_class not in (*_WRAPPERS, "Booster"):
            raise CorruptModelFileError(
                f"unknown LightGBM model class {model_class!r}", field="model_class"
            )
        booster = _load_booster(lgb, directory / _spec_file(spec))
        classes = _spec_classes(spec) if model_class == "LGBMClassifier" else None
        return LightGBMPredictor(booster, classes)

    def to_onnx(self, request: OnnxRequest) -> OnnxGraph:
        """The model as an ONNX graph, converted by onnxmltools with float64 inputs.
        Classifiers convert with float32 inputs only; as LightGBM splits float64 values,
        a value within float32 rounding of one of their splits may then go the other way
        (none did in 100,000 random rows of a 200-tree model)."""
        return booster_graph(
            request, extra="lightgbm", precisions=("double", "float32"), convert=_convert
        )


def _convert(tools: Any, model: Any, initial_types: TypePlan) -> Any:
    return tools.convert_lightgbm(
        model, initial_types=initial_types, target_opset=ONNXMLTOOLS_OPSET, zipmap=False
    )


def _lightgbm() -> Any:
    return require("lightgbm", extra="lightgbm")


def _frame(batch: Batch) -> Batch:
    if not isinstance(batch, dict):
        return batch
    import pandas as pd

    return pd.DataFrame(batch)


def _class_name(obj: Any, lgb: Any) -> str:
    """The nearest LightGBM class in ``obj``'s MRO (user subclasses are stored as it)."""
    known = {
        lgb.LGBMClassifier: "LGBMClassifier",
        lgb.LGBMRegressor: "LGBMRegressor",
        lgb.LGBMRanker: "LGBMRanker",
        lgb.Booster: "Booster",
    }
    for cls in type(obj).__mro__:
        if cls in known:
            return known[cls]
    raise InvalidArgumentError(
        f"cannot save a {type(obj).__module__}.{type(obj).__qualname__}: the lightgbm flavor "
        f"stores {', '.join(known.values())}",
        field="model",
    )


def _saved_flavor(spec: dict[str, Any]) -> SavedFlavor:
    spec["supports_proba"] = spec["model_class"] == "LGBMClassifier"
    wrapper = ("scikit-learn",) if spec["model_class"] in _WRAPPERS else ()
    return SavedFlavor(spec=spec, libraries=("lightgbm", "numpy", "scipy", *wrapper))


def _classes_spec(classes: np.ndarray) -> dict[str, Any]:
    """The labels as JSON values plus their dtype, to rebuild the same array at load."""
    labels = [item.item() if isinstance(item, np.generic) else item for item in classes]
    if not all(isinstance(label, _JSON_SCALARS) for label in labels):
        raise InvalidArgumentError(
            "the flavor stores class labels that are strings, numbers or booleans; "
            f"this classifier has {classes.dtype} labels {labels[:5]!r}",
            field="model",
        )
    return {"classes": labels, "classes_dtype": str(classes.dtype)}


def _spec_classes(spec: Mapping[str, Any]) -> np.ndarray:
    labels, dtype = spec.get("classes"), spec.get("classes_dtype")
    try:
        if not isinstance(labels, list) or not isinstance(dtype, str):
            raise TypeError("classes must be a list and classes_dtype a string")
        return np.asarray(labels, dtype=np.dtype(dtype))
    except (TypeError, ValueError) as exc:
        raise CorruptModelFileError(
            f"invalid classifier labels in the spec: {exc}", field="classes"
        ) from None


def _spec_file(spec: Mapping[str, Any]) -> str:
    file = spec.get("file")
    if not isinstance(file, str) or not file or Path(file).name != file:
        raise CorruptModelFileError(f"invalid model file name {file!r} in the spec", field="file")
    return file


def _load_booster(lgb: Any, path: Path) -> Any:
    check_model_text(path)
    try:
        return lgb.Booster(model_file=path)
    except (lgb.basic.LightGBMError, ValueError, OSError) as exc:
        raise CorruptModelFileError(
            f"{path.name} is not a valid LightGBM model: {exc}", field=path.name
        ) from None
