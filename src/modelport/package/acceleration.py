"""Automatic acceleration: an ONNX graph that serves a model in place of the native one.

When a scikit-learn, XGBoost or LightGBM model converts to ONNX (skl2onnx, onnxmltools),
the graph is stored as ``accelerated/model.onnx``, but only after its outputs on the
sample rows the native predictions were computed on (at most 10,000) match them:

* labels exactly, once the graph's labels are cast to the native dtype;
* class probabilities within ``PROBABILITY_ATOL`` (absolute: probabilities are in [0, 1]);
* regression values within ``REGRESSION_RTOL * |native| + REGRESSION_ATOL * max(1, scale)``,
  ``scale`` being the largest native prediction in magnitude, since float32 rounding in
  the graph grows with the magnitude of the sums it computes.

Otherwise the file is not written, the native model serves, and the manifest says why.

The graph takes what the server passes (``serving.interface``): a ``matrix`` (every column
numeric) is one input ``input`` of shape [None, n_columns], or one [None, 1] input per
column when a ColumnTransformer selects columns by name (the predictor splits the
matrix); ``columns`` are one [None, 1] input per column, named after it; ``tensors`` are
the signature's tensors. The predictor casts what it is given to the graph's input types:
float64 where the converter handles it, else float32 (see ``_PRECISIONS``).

The sample is usually training data, which never lies near a tree's split (splits fall
between training values), so a graph that rounds differently ahead of the trees could
pass the check and still decide new rows differently. Such graphs are not built: a
scikit-learn model whose transformers feed trees is refused float32 inputs. Bare trees
(scikit-learn rounds their input to float32 too), XGBoost (float32 itself) and linear
models (no splits) are not affected. LightGBM, which splits float64 values, converts its
classifiers only with float32 inputs: a value within float32 rounding of one of their
splits may go the other way (none did in 100,000 random rows of a 200-tree model).
"""

from __future__ import annotations

import logging
import shutil
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np
import pandas as pd

from modelport.domain.signature import ColumnSchema, ColumnSpec, Signature, TensorSchema
from modelport.errors import InvalidInputError, MissingDependencyError
from modelport.flavors.base import Sample
from modelport.flavors.dependencies import require
from modelport.package.accelerated import (
    MATRIX_INPUT,
    AcceleratedPredictor,
    column_names,
    new_session,
)
from modelport.package.batch_validation import validate_batch
from modelport.package.manifest import ACCELERATED_FILE, AccelerationSection

logger = logging.getLogger(__name__)

ACCELERATED_FLAVORS = frozenset({"sklearn", "xgboost", "lightgbm"})
PROBABILITY_ATOL = 1e-4
REGRESSION_RTOL = 1e-4
REGRESSION_ATOL = 1e-6
_MAX_ROWS = 10_000
_SKLEARN_OPSET = {"": 17, "ai.onnx.ml": 3}
_ONNXMLTOOLS_OPSET = 15  # the highest onnxmltools 1.16 converts to
# Number types a converter is tried with, in order: "double" (float64), "float" (float32,
# integers as int64), "float32" (every number as float32). float64 keeps classifiers'
# exact probability ties (a forest voting 50/50) resolved as scikit-learn resolves them.
# Regressors, checked within a tolerance, start with float32 when float64 is known to
# fail late: skl2onnx's float64 tree regressors do not load in onnxruntime (after a
# conversion several times slower), and its encoders emit float32, which float64
# columns cannot be concatenated with.
_SKLEARN_TREES = ("sklearn.tree.", "sklearn.ensemble.")
_PRECISIONS = {
    "sklearn": ("double", "float"),
    "sklearn-float": ("float", "double"),
    "lightgbm": ("double", "float32"),  # its classifiers convert in float32 only
    "xgboost": ("float32",),  # XGBoost itself computes in float32
}


LayoutKind = Literal["matrix", "columns", "tensors"]


class _UnavailableError(Exception):
    """Why the graph cannot serve; becomes the section's reason."""


@dataclass(frozen=True)
class _Input:
    """One graph input: its name, the numpy dtype of its values and its width."""

    name: str
    dtype: np.dtype[Any]
    width: int | None


@dataclass(frozen=True)
class _Layout:
    kind: LayoutKind  # how the server lays out batches
    inputs: tuple[_Input, ...]


def native_model(source: Any, predictor: Any) -> Any:
    """The model object to convert: the live model, or the one the flavor loaded from a
    file (the scikit-learn predictor's ``model``; the booster predictors keep theirs in
    ``_booster``, read here so the file is not loaded twice)."""
    if not isinstance(source, str | Path):
        return source
    model = getattr(predictor, "model", None)
    return model if model is not None else getattr(predictor, "_booster", None)


def accelerate(
    model: Any,
    flavor: str,
    destination: Path,
    *,
    signature: Signature | None,
    sample: Sample | None,
    sample_predictions: Any,
    sample_probabilities: Any,
) -> AccelerationSection:
    """Convert ``model``, check the graph against the native model's predictions (and
    probabilities) on ``sample`` and write it to ``destination / accelerated/model.onnx``.

    Never raises for a model that cannot be accelerated: the section is then
    ``unavailable``, with the reason, and no file is left behind.
    """
    target = destination / ACCELERATED_FILE
    try:
        if sample is None or sample_predictions is None:
            raise _UnavailableError("no sample input to verify against")
        if signature is None:
            raise _UnavailableError("the package has no signature to lay out the graph's inputs")
        native = np.asarray(sample_predictions)
        rows = min(len(native), _MAX_ROWS)
        reference = _Reference(
            signature,
            _head(sample, rows),
            native[:rows],
            None if sample_probabilities is None else np.asarray(sample_probabilities)[:rows],
        )
        return _verified(model, flavor, reference, target)
    except _UnavailableError as exc:
        shutil.rmtree(target.parent, ignore_errors=True)
        logger.info("no accelerated graph: %s", exc)
        return AccelerationSection(status="unavailable", reason=str(exc))


@dataclass(frozen=True)
class _Reference:
    """The sample rows and what the native model answered on them."""

    signature: Signature
    sample: Sample
    predictions: np.ndarray
    probabilities: np.ndarray | None


def _verified(model: Any, flavor: str, reference: _Reference, target: Path) -> AccelerationSection:
    if model is None:
        raise _UnavailableError("the native model object is not available to convert")
    native = reference.predictions
    layout = _layout(reference.signature, flavor, model)
    batch = _server_batch(layout, reference.signature, reference.sample)
    data, session = _convert(model, flavor, layout)
    label, probability = _outputs(session, flavor, native, reference.probabilities)
    section = AccelerationSection(
        status="verified",
        file=ACCELERATED_FILE,
        input_layout=layout.kind,
        input_names=[spec.name for spec in layout.inputs],
        output_label=label,
        output_probabilities=probability,
        prediction_dtype="object" if native.dtype.kind in "OUS" else native.dtype.name,
        rows_checked=len(native),
    )
    predictor = AcceleratedPredictor(session, section, column_names(reference.signature))
    difference, tolerance = _compare(predictor, batch, native, reference.probabilities)
    try:
        target.parent.mkdir(exist_ok=True)
        target.write_bytes(data)
    except OSError as exc:
        raise _UnavailableError(f"cannot write {ACCELERATED_FILE}: {exc}") from None
    return section.model_copy(update={"max_abs_diff": difference, "tolerance": tolerance})


# ------------------------------------------------------------------------------ layout


def _layout(signature: Signature, flavor: str, model: Any) -> _Layout:
    schema = signature.inputs
    if isinstance(schema, ColumnSchema):
        return _tabular(schema.columns, flavor, model)
    return _tensors(schema, flavor)


def _tabular(columns: Sequence[ColumnSpec], flavor: str, model: Any) -> _Layout:
    dates = [c.name for c in columns if c.dtype == "datetime"]
    if dates:
        raise _UnavailableError(f"column {dates[0]!r} holds dates, which ONNX graphs do not take")
    dtypes = [_column_dtype(c) for c in columns]
    per_column = tuple(_Input(c.name, d, 1) for c, d in zip(columns, dtypes, strict=True))
    if all(d.kind in "iuf" for d in dtypes):
        if flavor == "sklearn" and _selects_columns_by_name(model):
            return _Layout("matrix", per_column)
        return _Layout("matrix", (_Input(MATRIX_INPUT, np.result_type(*dtypes), len(dtypes)),))
    if flavor != "sklearn":
        raise _UnavailableError(
            f"{flavor} graphs take one numeric matrix, and this model's input has text or "
            "boolean columns"
        )
    return _Layout("columns", per_column)


def _column_dtype(column: ColumnSpec) -> np.dtype[Any]:
    if column.dtype in ("string", "category"):
        return np.dtype(object)
    dtype = np.dtype(column.dtype)
    # Missing values in an integer column arrive as NaN.
    return np.dtype(np.float64) if dtype.kind in "iu" and column.nullable else dtype


def _tensors(schema: TensorSchema, flavor: str) -> _Layout:
    tensors = schema.tensors
    dtypes = [np.dtype(object if t.dtype == "string" else t.dtype) for t in tensors]
    if len(tensors) == 1 and len(tensors[0].shape) == 2:
        width = tensors[0].shape[1]
        return _Layout("tensors", (_Input(tensors[0].name, dtypes[0], max(width, 0) or None),))
    if flavor == "sklearn" and all(len(t.shape) == 1 for t in tensors):
        return _Layout(
            "tensors", tuple(_Input(t.name, d, 1) for t, d in zip(tensors, dtypes, strict=True))
        )
    shapes = ", ".join(f"{t.name} {list(t.shape)}" for t in tensors)
    raise _UnavailableError(
        f"the converters take one 2-D input (rows, features), or 1-D named inputs for "
        f"scikit-learn; this model takes {shapes}"
    )


def _selects_columns_by_name(model: Any) -> bool:
    """Whether a ColumnTransformer in ``model`` picks columns by name or by a selector:
    the graph then needs one input per column, named after it."""
    compose = require("sklearn.compose", extra="sklearn", package="scikit-learn")
    for part in (model, *_parts(model)):
        if isinstance(part, compose.ColumnTransformer):
            for _, _, selection in part.transformers:
                if isinstance(selection, str) or callable(selection):
                    return True
                listed = isinstance(selection, list | tuple | np.ndarray | pd.Index)
                if listed and any(isinstance(item, str) for item in selection):
                    return True
    return False


def _head(sample: Sample, rows: int) -> Sample:
    if isinstance(sample, dict):
        return {name: array[:rows] for name, array in sample.items()}
    return sample.iloc[:rows] if isinstance(sample, pd.DataFrame) else sample[:rows]


def _server_batch(layout: _Layout, signature: Signature, sample: Sample) -> Any:
    """The sample as the server passes it: a matrix, a dict of columns, or tensors."""
    try:
        validated = validate_batch(signature.inputs, sample)
        if not isinstance(validated, pd.DataFrame):
            return validated
        if layout.kind == "matrix":  # one dtype all columns fit in, as the server's
            return validated.to_numpy(dtype=np.result_type(*validated.dtypes))
        return {str(name): validated[name].to_numpy() for name in validated.columns}
    except (InvalidInputError, ValueError, TypeError) as exc:
        raise _UnavailableError(f"the sample does not fit the signature: {exc}") from None


# -------------------------------------------------------------------------- conversion


def _convert(model: Any, flavor: str, layout: _Layout) -> tuple[bytes, Any]:
    """The serialized graph and an onnxruntime session on it, from the first number
    types the converter and onnxruntime both accept."""
    ort = _require("onnxruntime", "accelerate")
    types, convert = _converter(model, flavor)
    failure: Exception | None = None
    refused = False
    for initial_types in _type_plans(types, model, flavor, layout):
        if _rounds_before_trees(model, flavor, layout, initial_types, types):
            refused = True
            continue
        try:
            # The converters warn about their own internals (opsets, deprecations); the
            # graph is verified below, so the warnings tell the user nothing.
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                data: bytes = convert(initial_types).SerializeToString()
            return data, new_session(ort, data)
        except Exception as exc:  # the converters and onnxruntime raise untyped errors
            failure = failure or exc
    library = "skl2onnx" if flavor == "sklearn" else "onnxmltools"
    name = type(model).__name__
    if refused:
        raise _UnavailableError(
            f"{library} converts this {name} with float64 inputs only as float32, whose "
            "rounding ahead of its trees can change their decisions on new data "
            f"(float64: {_first_line(failure)})"
        )
    raise _UnavailableError(f"{library} cannot convert this {name}: {_first_line(failure)}")


def _rounds_before_trees(
    model: Any, flavor: str, layout: _Layout, initial_types: Any, types: Any
) -> bool:
    """Whether float64 values would be rounded to float32 and transformed before reaching
    scikit-learn trees: the trees' thresholds lie between training values, which the
    sample check then cannot show to flip, while new values can. A bare tree model is
    safe, since scikit-learn rounds its input to float32 too."""
    if flavor != "sklearn":
        return False
    narrowed = any(
        spec.dtype.kind in "iuf"
        and spec.dtype.itemsize == 8
        and not isinstance(tensor, types.DoubleTensorType)
        for spec, (_, tensor) in zip(layout.inputs, initial_types, strict=True)
    )
    if not narrowed or type(model).__module__.startswith(_SKLEARN_TREES):
        return False
    return any(type(part).__module__.startswith(_SKLEARN_TREES) for part in _parts(model))


def _parts(model: Any) -> list[Any]:
    """The estimators and other parameters ``model`` is made of."""
    try:
        return list(model.get_params(deep=True).values())
    except Exception:  # a custom estimator's get_params may fail; nothing to find then
        return []


def _converter(model: Any, flavor: str) -> tuple[Any, Callable[[Any], Any]]:
    """The converter's data types module, and a function converting ``model`` given the
    initial types (everything that touches the model runs in it, under ``_convert``'s
    error handling)."""
    if flavor == "sklearn":
        skl2onnx = _require("skl2onnx", "accelerate")

        def convert_sklearn(initial_types: Any) -> Any:
            base = require("sklearn.base", extra="sklearn", package="scikit-learn")
            # Plain label and probabilities tensors instead of ZipMap's dicts; keyed by the
            # model, which is faster than a global option that visits every sub-model.
            options = {id(model): {"zipmap": False}} if base.is_classifier(model) else None
            return skl2onnx.convert_sklearn(
                model, initial_types=initial_types, options=options, target_opset=_SKLEARN_OPSET
            )

        return _require("skl2onnx.common.data_types", "accelerate"), convert_sklearn
    tools = _require("onnxmltools", flavor)

    def convert_boosted(initial_types: Any) -> Any:
        if flavor == "xgboost":
            return tools.convert_xgboost(
                _plain_booster(model), initial_types=initial_types, target_opset=_ONNXMLTOOLS_OPSET
            )
        return tools.convert_lightgbm(
            model, initial_types=initial_types, target_opset=_ONNXMLTOOLS_OPSET, zipmap=False
        )

    return _require("onnxmltools.convert.common.data_types", flavor), convert_boosted


def _plain_booster(model: Any) -> Any:
    """A copy of the model's booster without feature names: onnxmltools reads features as
    ``f0, f1, ...``, and a model fitted on a DataFrame names them after its columns.
    A classifier's labels are 0..n-1 in XGBoost, so the booster's graph gives them too."""
    booster = model.get_booster() if hasattr(model, "get_booster") else model
    plain = booster.copy()
    plain.feature_names = None
    plain.feature_types = None
    return plain


def _type_plans(
    types: Any, model: Any, flavor: str, layout: _Layout
) -> list[list[tuple[str, Any]]]:
    plans: list[list[tuple[str, Any]]] = []
    for precision in _PRECISIONS[_precisions(model, flavor, layout)]:
        plan = [
            (i.name, _tensor_type(types, i.dtype, precision)([None, i.width]))
            for i in layout.inputs
        ]
        if all(str(plan) != str(earlier) for earlier in plans):
            plans.append(plan)
    return plans


def _precisions(model: Any, flavor: str, layout: _Layout) -> str:
    if flavor != "sklearn":
        return flavor
    base = require("sklearn.base", extra="sklearn", package="scikit-learn")
    try:
        if base.is_classifier(model):
            return "sklearn"
    except Exception:  # tags of a custom estimator; the converter will say more
        return "sklearn"
    final = model.steps[-1][1] if hasattr(model, "steps") else model
    trees = type(final).__module__.startswith(_SKLEARN_TREES)
    return "sklearn-float" if trees or layout.kind == "columns" else "sklearn"


def _tensor_type(types: Any, dtype: np.dtype[Any], precision: str) -> Any:
    if dtype.kind in "OUS":
        return types.StringTensorType
    if dtype.kind == "b":
        return types.BooleanTensorType
    if precision == "double" and (dtype.kind in "iu" or dtype.itemsize == 8):
        return types.DoubleTensorType
    if precision == "float" and dtype.kind in "iu":
        return types.Int64TensorType
    return types.FloatTensorType


def _require(module: str, extra: str) -> Any:
    try:
        return require(module, extra=extra)
    except MissingDependencyError as exc:
        raise _UnavailableError(str(exc)) from None
    except ImportError as exc:  # installed but broken
        raise _UnavailableError(f"{module} cannot be imported: {exc}") from None


def _first_line(exc: BaseException | None) -> str:
    """The start of an error message (converters put whole node dumps in theirs)."""
    text = str(exc).strip()
    if not text:
        return type(exc).__name__
    line = text.splitlines()[0]
    return line if len(line) <= 160 else line[:160].rstrip() + "..."


# ------------------------------------------------------------------------ verification


def _outputs(
    session: Any, flavor: str, native: np.ndarray, probabilities: np.ndarray | None
) -> tuple[str, str | None]:
    """The graph's prediction output and its probabilities output (when the native
    model gives probabilities)."""
    names = [output.name for output in session.get_outputs()]
    label = "label" if "label" in names else names[0]
    if probabilities is not None:
        if "probabilities" not in names:
            raise _UnavailableError("the graph has no probabilities output")
        return label, "probabilities"
    if flavor != "sklearn" and "probabilities" in names and native.dtype.kind == "f":
        raise _UnavailableError(
            "the model is a bare Booster whose predictions are probabilities, while its "
            "graph predicts labels; save the XGBClassifier or LGBMClassifier to accelerate it"
        )
    return label, None


def _compare(
    predictor: AcceleratedPredictor,
    batch: Any,
    native: np.ndarray,
    probabilities: np.ndarray | None,
) -> tuple[float, float | None]:
    """(largest absolute difference, tolerance) once the graph's outputs on ``batch``
    are shown to match the native ones."""
    try:
        predicted = np.asarray(predictor.predict(batch))
        proba = predictor.predict_proba(batch) if probabilities is not None else None
    except Exception as exc:  # onnxruntime raises untyped errors
        raise _UnavailableError(f"onnxruntime failed on the sample: {_first_line(exc)}") from None
    if predicted.shape != native.shape:
        raise _UnavailableError(
            f"the graph's predictions have shape {list(predicted.shape)}, the native "
            f"model's {list(native.shape)}"
        )
    if probabilities is None and native.dtype.kind == "f":
        return _check_values(predicted, native)
    _check_labels(predicted, native)
    if proba is None or probabilities is None:
        return 0.0, None
    return _check_probabilities(np.asarray(proba), probabilities)


def _check_labels(predicted: np.ndarray, native: np.ndarray) -> None:
    differ = np.asarray(predicted != native).reshape(len(native), -1).any(axis=1)
    count = int(np.count_nonzero(differ))
    if count:
        raise _UnavailableError(
            f"{count} of {len(native)} labels differ from the native model's on the sample"
        )


def _check_values(predicted: np.ndarray, native: np.ndarray) -> tuple[float, float]:
    expected = native.astype(np.float64)
    finite = np.abs(expected[np.isfinite(expected)])
    atol = REGRESSION_ATOL * max(1.0, float(finite.max()) if finite.size else 1.0)
    both_missing = np.isnan(expected) & np.isnan(predicted.astype(np.float64))
    diff = np.where(both_missing, 0.0, np.abs(predicted.astype(np.float64) - expected))
    bad = ~(diff <= atol + REGRESSION_RTOL * np.abs(expected))
    worst = float(np.max(diff)) if diff.size else 0.0
    if bad.any():
        raise _UnavailableError(
            f"{int(np.count_nonzero(bad))} of {len(native)} predictions differ from the "
            f"native model's by more than rtol {REGRESSION_RTOL:g} + atol {atol:.3g} "
            f"(largest difference {worst:.3g})"
        )
    return worst, atol


def _check_probabilities(proba: np.ndarray, expected: np.ndarray) -> tuple[float, float]:
    if proba.shape != expected.shape:
        raise _UnavailableError(
            f"the graph's probabilities have shape {list(proba.shape)}, the native model's "
            f"{list(expected.shape)}"
        )
    diff = np.abs(proba - expected.astype(np.float64))
    worst = float(np.max(diff)) if diff.size else 0.0
    if not worst <= PROBABILITY_ATOL:
        raise _UnavailableError(
            f"probabilities differ from the native model's by up to {worst:.3g} "
            f"(tolerance {PROBABILITY_ATOL:g})"
        )
    return worst, PROBABILITY_ATOL
