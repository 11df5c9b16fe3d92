"""scikit-learn models as ONNX graphs, converted by skl2onnx (the sklearn flavor's hook).

Besides one numeric matrix, skl2onnx graphs take one input per column (text, boolean or
mixed tables, and ColumnTransformers that pick columns by name) and 1-D named tensors.

Number types (``onnx_conversion`` says why they matter): float64 keeps classifiers'
exact probability ties (a forest voting 50/50) resolved as scikit-learn resolves them.
Regressors, checked within a tolerance, start with float32 when float64 is known to
fail late: skl2onnx's float64 tree regressors do not load in onnxruntime (after a
conversion several times slower), and its encoders emit float32, which float64 columns
cannot be concatenated with. A model whose transformers feed trees is refused float32
inputs: values rounded to float32 and then transformed may land on the other side of a
split than in scikit-learn, which the sample cannot show. Bare trees (scikit-learn rounds
their input to float32 too) and linear models (no splits) are not affected.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from modelport.domain.signature import ColumnSchema, Signature
from modelport.flavors.dependencies import require
from modelport.flavors.onnx_conversion import (
    ACCELERATION_EXTRA,
    GraphInputs,
    OnnxGraph,
    OnnxRequest,
    TypePlan,
    all_numeric,
    column_inputs,
    convert_in_order,
    first_line,
    import_or_unavailable,
    matrix_input,
    tensor_inputs,
    type_plans,
)

_OPSET = {"": 17, "ai.onnx.ml": 3}
_TREES = ("sklearn.tree.", "sklearn.ensemble.")
_DOUBLE_FIRST = ("double", "float")
_FLOAT_FIRST = ("float", "double")


def onnx_inputs(model: Any, signature: Signature) -> GraphInputs:
    """One matrix for numeric tables, split into one input per column when the model
    selects columns by name; one input per column for other tables; the signature's
    one 2-D tensor or its 1-D tensors."""
    schema = signature.inputs
    if not isinstance(schema, ColumnSchema):
        return tensor_inputs(schema, one_dimensional=True)
    columns = column_inputs(schema.columns)
    if not all_numeric(columns):
        return GraphInputs("columns", columns)
    if _selects_columns_by_name(model):
        return GraphInputs("matrix", columns)
    return GraphInputs("matrix", (matrix_input(columns),))


def to_onnx(request: OnnxRequest) -> OnnxGraph:
    """The graph skl2onnx makes of ``request.model``, at the first precision it and
    onnxruntime accept, never rounding float64 values to float32 ahead of trees."""
    skl2onnx = import_or_unavailable("skl2onnx", ACCELERATION_EXTRA)
    types = import_or_unavailable("skl2onnx.common.data_types", ACCELERATION_EXTRA)
    model, inputs = request.model, request.inputs
    plans = type_plans(types, inputs, _precisions(model, inputs, request.prefer_float32))
    allowed = [p for p in plans if not _rounds_before_trees(model, inputs, p, types)]
    name = type(model).__name__

    def explain(failure: Exception | None) -> str:
        if len(allowed) < len(plans):
            return (
                f"skl2onnx converts this {name} with float64 inputs only as float32, whose "
                "rounding ahead of its trees can change their decisions on new data "
                f"(float64: {first_line(failure)})"
            )
        return f"skl2onnx cannot convert this {name}: {first_line(failure)}"

    def convert(initial_types: TypePlan) -> Any:
        base = require("sklearn.base", extra="sklearn", package="scikit-learn")
        # Plain label and probabilities tensors instead of ZipMap's dicts; keyed by the
        # model, which is faster than a global option that visits every sub-model.
        options = {id(model): {"zipmap": False}} if base.is_classifier(model) else None
        return skl2onnx.convert_sklearn(
            model, initial_types=initial_types, options=options, target_opset=_OPSET
        )

    return convert_in_order(convert, allowed, explain)


def _precisions(model: Any, inputs: GraphInputs, prefer_float32: bool) -> tuple[str, ...]:
    if prefer_float32:
        return _FLOAT_FIRST
    base = require("sklearn.base", extra="sklearn", package="scikit-learn")
    try:
        if base.is_classifier(model):
            return _DOUBLE_FIRST
    except Exception:  # tags of a custom estimator; the converter will say more
        return _DOUBLE_FIRST
    final = model.steps[-1][1] if hasattr(model, "steps") else model
    trees = type(final).__module__.startswith(_TREES)
    return _FLOAT_FIRST if trees or inputs.layout == "columns" else _DOUBLE_FIRST


def _rounds_before_trees(
    model: Any, inputs: GraphInputs, initial_types: TypePlan, types: Any
) -> bool:
    """Whether float64 values would be rounded to float32 and transformed before reaching
    scikit-learn trees: the trees' thresholds lie between training values, which the
    sample check then cannot show to flip, while new values can. A bare tree model is
    safe, since scikit-learn rounds its input to float32 too."""
    narrowed = any(
        spec.dtype.kind in "iuf"
        and spec.dtype.itemsize == 8
        and not isinstance(tensor, types.DoubleTensorType)
        for spec, (_, tensor) in zip(inputs.inputs, initial_types, strict=True)
    )
    if not narrowed or type(model).__module__.startswith(_TREES):
        return False
    return any(type(part).__module__.startswith(_TREES) for part in _parts(model))


def _selects_columns_by_name(model: Any) -> bool:
    """Whether a ColumnTransformer in ``model`` picks columns by name or by a selector:
    the graph then needs one input per column, named after it."""
    compose = require("sklearn.compose", extra="sklearn", package="scikit-learn")
    for part in (model, *_parts(model)):
        if isinstance(part, compose.ColumnTransformer):
            for _, _, selection in part.transformers:
                if isinstance(selection, str) or callable(selection):
                    return True
                if _lists(selection) and any(isinstance(item, str) for item in selection):
                    return True
    return False


def _lists(selection: Any) -> bool:
    import pandas as pd  # a ColumnTransformer may list its columns as an Index

    return isinstance(selection, list | tuple | np.ndarray | pd.Index)


def _parts(model: Any) -> list[Any]:
    """The estimators and other parameters ``model`` is made of."""
    try:
        return list(model.get_params(deep=True).values())
    except Exception:  # a custom estimator's get_params may fail; nothing to find then
        return []
