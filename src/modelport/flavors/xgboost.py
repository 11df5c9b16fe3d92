"""The XGBoost flavor: boosters and their scikit-learn wrappers, in XGBoost's own formats.

Models are stored with ``save_model`` as UBJSON (``.ubj``) or JSON, never pickled, so a
model file carries trees and parameters only. The class to rebuild comes from a fixed
table of names; a spec cannot name any other class.

XGBoost's loader can crash the process on a damaged file (a UBJSON file cut inside a
length field is enough), so a file brought from outside is first loaded, and predicted
with, in a child process. Files in a package are then loaded in-process: the package
layer verifies them against the digests recorded when they passed that check.
"""

from __future__ import annotations

import json
import shutil
import signal
import subprocess
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from modelport.domain.predictor import Batch, ModelPredictor
from modelport.errors import CorruptModelFileError, InvalidArgumentError, UnsupportedOperationError
from modelport.flavors.base import LoadContext, SaveContext, SavedFlavor, mro_modules
from modelport.flavors.booster_onnx import ONNXMLTOOLS_OPSET, booster_graph
from modelport.flavors.dependencies import require
from modelport.flavors.frames import is_frame
from modelport.flavors.onnx_conversion import OnnxGraph, OnnxRequest, TypePlan

# The wrappers are scikit-learn estimators, so their predictor is the scikit-learn one
# (a sibling import, needed to share one predictor; that module imports no framework).
from modelport.flavors.sklearn import SklearnPredictor

_FORMATS = {".ubj": "ubj", ".json": "json"}
_WRAPPERS = ("XGBClassifier", "XGBRegressor", "XGBRanker", "XGBRFClassifier", "XGBRFRegressor")
_CLASSIFIERS = frozenset({"XGBClassifier", "XGBRFClassifier"})
_ESTIMATOR_TYPES = {
    "classifier": "XGBClassifier",
    "regressor": "XGBRegressor",
    "ranker": "XGBRanker",
}
_HEAD_BYTES = 4096
_PROBE_SECONDS = 300
_PROBE_MARK = "modelport-scikit-learn-attribute: "
_PROBE_SCRIPT = f"""
import json, sys
import numpy as np
import xgboost
booster = xgboost.Booster(model_file=sys.argv[1])
rows = xgboost.DMatrix(np.zeros((2, booster.num_features())))
booster.predict(rows, validate_features=False)
print({_PROBE_MARK!r} + json.dumps(booster.attr("scikit_learn")))
"""


class XGBoostBoosterPredictor:
    """Predicts with a bare ``xgboost.Booster``: its raw ``predict`` output, no
    probabilities API (a booster does not know whether it is a classifier)."""

    def __init__(self, booster: Any) -> None:
        self._booster = booster
        self._xgboost = require("xgboost", extra="xgboost")

    @property
    def supports_proba(self) -> bool:
        """Always False."""
        return False

    @property
    def classes(self) -> list[Any] | None:
        """Always None: a booster has no class labels."""
        return None

    def predict(self, batch: Batch) -> Batch:
        """``Booster.predict`` on a ``DMatrix`` built from ``batch``."""
        return self._booster.predict(self._matrix(batch))

    def predict_proba(self, batch: Batch) -> Batch:
        """Not available for a bare booster."""
        raise UnsupportedOperationError(
            "an xgboost Booster gives raw predictions only; predict() returns what the "
            "objective produces (probabilities for binary:logistic)"
        )

    def close(self) -> None:
        """Nothing to release: the booster is freed with this object."""

    def _matrix(self, batch: Batch) -> Any:
        if isinstance(batch, dict):
            import pandas as pd

            batch = pd.DataFrame(batch)
        if is_frame(batch):
            return self._xgboost.DMatrix(batch, enable_categorical=True)
        names = self._booster.feature_names
        # A model fitted on a DataFrame checks feature names; an array of the same
        # width is taken to be in the fitted column order.
        if (
            isinstance(batch, np.ndarray)
            and names
            and batch.ndim == 2
            and batch.shape[1] == len(names)
        ):
            types = self._booster.feature_types
            return self._xgboost.DMatrix(batch, feature_names=names, feature_types=types)
        return self._xgboost.DMatrix(batch)


class XGBoostFlavor:
    """XGBoost boosters and scikit-learn wrappers, stored in XGBoost's native formats."""

    @property
    def name(self) -> str:
        """``xgboost``."""
        return "xgboost"

    @property
    def framework(self) -> str:
        """``xgboost``."""
        return "xgboost"

    @property
    def extra(self) -> str:
        """``xgboost``."""
        return "xgboost"

    @property
    def suffixes(self) -> tuple[str, ...]:
        """UBJSON and JSON model files."""
        return tuple(_FORMATS)

    def owns(self, obj: Any) -> bool:
        """An XGBoost model object (a class from ``xgboost`` with ``predict``)."""
        return "xgboost" in mro_modules(obj) and callable(getattr(obj, "predict", None))

    def reads(self, path: Path) -> bool:
        """A file that starts like an XGBoost model: an object with a ``learner`` key
        near its start (other JSON files are left to other flavors)."""
        if path.suffix.lower() not in _FORMATS or not path.is_file():
            return False
        with path.open("rb") as handle:
            head = handle.read(_HEAD_BYTES).lstrip()
        return head.startswith(b"{") and b"learner" in head

    def save(self, obj: Any, directory: Path, context: SaveContext) -> SavedFlavor:
        """Write ``obj`` with ``save_model`` to ``model.ubj``."""
        xgb = _xgboost()
        model_class = _class_name(obj, xgb)
        path = directory / "model.ubj"
        try:
            obj.save_model(path)
        except ValueError as exc:  # XGBoostError and NotFittedError are ValueErrors
            path.unlink(missing_ok=True)
            raise InvalidArgumentError(
                f"cannot save this {model_class}: {exc}; fit it first", field="model"
            ) from None
        return _saved_flavor(path, model_class)

    def import_file(self, source: Path, directory: Path, context: SaveContext) -> SavedFlavor:
        """Validate an XGBoost ``.ubj`` or ``.json`` model file and copy it into ``directory``."""
        fmt = _FORMATS.get(source.suffix.lower())
        if fmt is None:
            raise InvalidArgumentError(
                f"{source.name}: XGBoost models are files ending in {', '.join(_FORMATS)}",
                field="source",
            )
        if not source.is_file():
            raise InvalidArgumentError(f"no such file: {source}", field="source")
        _xgboost()
        if fmt == "json":
            _check_json(source)
        attribute = _probe(source)
        target = directory / f"model.{fmt}"
        shutil.copyfile(source, target)
        return _saved_flavor(target, _wrapper_class(attribute))

    def load(
        self, directory: Path, spec: Mapping[str, Any], context: LoadContext
    ) -> ModelPredictor:
        """Rebuild the model class named in the spec (from a fixed table) and load the file."""
        xgb = _xgboost()
        file = _spec_file(spec)
        factory = _factories(xgb).get(str(spec.get("model_class")))
        if factory is None:
            raise CorruptModelFileError(
                f"unknown XGBoost model class {spec.get('model_class')!r}; expected one of "
                f"{', '.join(_factories(xgb))}",
                field="model_class",
            )
        model = _load(factory(), directory / file)
        if isinstance(model, xgb.Booster):
            return XGBoostBoosterPredictor(model)
        return SklearnPredictor(model)

    def to_onnx(self, request: OnnxRequest) -> OnnxGraph:
        """The model as an ONNX graph, converted by onnxmltools with float32 inputs:
        XGBoost itself computes in float32, so no split can go another way."""
        return booster_graph(request, extra="xgboost", precisions=("float32",), convert=_convert)


def _convert(tools: Any, model: Any, initial_types: TypePlan) -> Any:
    return tools.convert_xgboost(
        _plain_booster(model), initial_types=initial_types, target_opset=ONNXMLTOOLS_OPSET
    )


def _plain_booster(model: Any) -> Any:
    """A copy of the model's booster without feature names: onnxmltools reads features as
    ``f0, f1, ...``, and a model fitted on a DataFrame names them after its columns.
    A classifier's labels are 0..n-1 in XGBoost, so the booster's graph gives them too."""
    booster = model.get_booster() if hasattr(model, "get_booster") else model
    plain = booster.copy()
    plain.feature_names = None
    plain.feature_types = None
    return plain


def _spec_file(spec: Mapping[str, Any]) -> str:
    file = spec.get("file")
    if not isinstance(file, str) or not file or Path(file).name != file:
        raise CorruptModelFileError(f"invalid model file name {file!r} in the spec", field="file")
    return file


def _xgboost() -> Any:
    return require("xgboost", extra="xgboost")


def _factories(xgb: Any) -> dict[str, Any]:
    """The only classes a spec may name, by their public names."""
    return {
        "XGBClassifier": xgb.XGBClassifier,
        "XGBRegressor": xgb.XGBRegressor,
        "XGBRanker": xgb.XGBRanker,
        "XGBRFClassifier": xgb.XGBRFClassifier,
        "XGBRFRegressor": xgb.XGBRFRegressor,
        "Booster": xgb.Booster,
    }


def _class_name(obj: Any, xgb: Any) -> str:
    """The nearest class in the table that ``obj`` is an instance of (user subclasses
    of a wrapper are stored as that wrapper)."""
    known = {cls: name for name, cls in _factories(xgb).items()}
    for cls in type(obj).__mro__:
        if cls in known:
            return known[cls]
    raise InvalidArgumentError(
        f"cannot save a {type(obj).__module__}.{type(obj).__qualname__}: the xgboost flavor "
        f"stores {', '.join(known.values())}",
        field="model",
    )


def _load(model: Any, path: Path) -> Any:
    try:
        model.load_model(path)
    except ValueError as exc:  # XGBoostError is a ValueError
        first_line = str(exc).strip().splitlines()[0] if str(exc).strip() else repr(exc)
        raise CorruptModelFileError(
            f"{path.name} is not a valid XGBoost model: {first_line}", field=path.name
        ) from None
    return model


def _probe(path: Path) -> str:
    """Load the file and predict with it in a child process; return the booster's
    ``scikit_learn`` attribute (JSON).

    XGBoost's loader trusts the file: some truncated or damaged models make it crash the
    process (segmentation fault, heap corruption) instead of raising. So a file from
    outside is never loaded in this process before a child has survived loading it.
    """
    try:
        # The command is this interpreter and a fixed script; the path is an argument.
        result = subprocess.run(  # noqa: S603
            [sys.executable, "-c", _PROBE_SCRIPT, str(path)],
            capture_output=True,
            text=True,
            timeout=_PROBE_SECONDS,
            check=False,
        )
    except subprocess.TimeoutExpired:
        raise CorruptModelFileError(
            f"{path.name}: XGBoost did not finish loading it within {_PROBE_SECONDS} seconds",
            field=path.name,
        ) from None
    if result.returncode < 0:
        number = -result.returncode
        name = signal.Signals(number).name if number in signal.valid_signals() else number
        cause = f"XGBoost crashed reading it (signal {name})"
    elif result.returncode > 0:
        cause = (result.stderr.strip().splitlines() or ["XGBoost could not read it"])[-1]
    else:
        marked = [line for line in result.stdout.splitlines() if line.startswith(_PROBE_MARK)]
        return marked[-1][len(_PROBE_MARK) :] if marked else "null"
    raise CorruptModelFileError(
        f"{path.name} is not a valid XGBoost model: {cause[:300]}", field=path.name
    )


def _check_json(path: Path) -> None:
    try:
        document = json.loads(path.read_bytes())
    except (ValueError, UnicodeDecodeError) as exc:
        raise CorruptModelFileError(
            f"{path.name} is not valid JSON: {exc}", field=path.name
        ) from None
    if not isinstance(document, dict) or "learner" not in document:
        raise CorruptModelFileError(
            f"{path.name} is JSON but not an XGBoost model (no 'learner' object)",
            field=path.name,
        )


def _wrapper_class(probed: str) -> str:
    """The wrapper recorded in the booster's ``scikit_learn`` attribute, else Booster."""
    try:
        attribute = json.loads(json.loads(probed) or "{}")
    except (ValueError, TypeError):
        return "Booster"
    kind = attribute.get("_estimator_type") if isinstance(attribute, dict) else None
    return _ESTIMATOR_TYPES.get(kind, "Booster") if isinstance(kind, str) else "Booster"


def _saved_flavor(path: Path, model_class: str) -> SavedFlavor:
    spec = {
        "file": path.name,
        "format": path.suffix.lstrip("."),
        "model_class": model_class,
        "supports_proba": model_class in _CLASSIFIERS,
    }
    # The wrappers need scikit-learn as well; a bare booster does not.
    wrapper = ("scikit-learn",) if model_class in _WRAPPERS else ()
    return SavedFlavor(spec=spec, libraries=("xgboost", "numpy", "scipy", *wrapper))
