"""Converting a flavor's models to ONNX: what a flavor's ``to_onnx`` hook takes and
returns (``flavors.base.OnnxConvertible``), and the pieces the built-in converters share.

A hook only converts. The package layer (``package.acceleration``) asks the flavor for
the graph's inputs, calls the hook, checks the graph's outputs against the native
model's on the sample, and stores the graph only when they match.

**Inputs.** A graph takes what the server passes (``serving.interface``): a ``matrix``
(every column numeric) is one input ``MATRIX_INPUT`` of shape [None, n_columns], or one
[None, 1] input per column when the model selects columns by name (the predictor splits
the matrix); ``columns`` are one [None, 1] input per column, named after it; ``tensors``
are the signature's tensors. ``default_inputs`` gives what every converter takes (one
numeric matrix, one 2-D tensor); a flavor whose graphs take more defines
``onnx_inputs``. The predictor casts what it is given to the graph's input types.

**Number types.** Converters are tried with *precisions*, in the order the flavor
chooses, until one converts and loads in onnxruntime (``convert_in_order``): ``double``
(float64), ``float`` (float32, integers as int64), ``float32`` (every number as float32).
The sample a graph is checked on is usually training data, which never lies near a
tree's split (splits fall between training values), so a graph that rounds differently
ahead of its trees could pass the check and still decide new rows differently. Each
flavor's precisions say how it avoids that (``flavors.sklearn_onnx``, ``flavors.xgboost``,
``flavors.lightgbm``).
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np

from modelport.domain.layout import MATRIX_INPUT
from modelport.domain.signature import ColumnSchema, ColumnSpec, Signature, TensorSchema
from modelport.errors import MissingDependencyError
from modelport.flavors.dependencies import require
from modelport.flavors.onnx_runtime import import_onnxruntime, new_session

# The extra that installs the converters' common part and onnxruntime for graphs.
ACCELERATION_EXTRA = "accelerate"

InputLayout = Literal["matrix", "columns", "tensors"]
TypePlan = list[tuple[str, Any]]
"""A converter's initial types: (input name, tensor type) for every graph input."""


class GraphUnavailableError(Exception):
    """Why no ONNX graph can serve a model; its message becomes the acceleration
    section's reason. Raised by ``to_onnx`` hooks for a model they cannot convert, and
    by the checks around them; it never reaches users (the native model serves)."""


@dataclass(frozen=True)
class GraphInput:
    """One graph input: its name, the numpy dtype of its values and its width."""

    name: str
    dtype: np.dtype[Any]
    width: int | None


@dataclass(frozen=True)
class GraphInputs:
    """The graph's inputs and the layout of the batches the server passes them in."""

    layout: InputLayout
    inputs: tuple[GraphInput, ...]


@dataclass(frozen=True)
class OnnxRequest:
    """What a ``to_onnx`` hook converts: the native ``model``, the graph ``inputs`` to
    give it, and whether the native predictions are float values without class
    probabilities (``predicts_values``: checked within a tolerance) rather than labels.
    ``prefer_float32`` asks for float32 numbers first where the flavor would start with
    float64 (an export to be quantized: int8 quantization rewrites float32 weights only);
    a flavor's rules against rounding ahead of trees still hold."""

    model: Any
    inputs: GraphInputs
    predicts_values: bool
    prefer_float32: bool = False


@dataclass(frozen=True)
class OnnxGraph:
    """A converted graph: its serialized bytes and an onnxruntime session on them."""

    data: bytes
    session: Any


def open_graph(data: bytes) -> OnnxGraph:
    """``data`` with a session from the shared factory; onnxruntime's errors propagate."""
    return OnnxGraph(data, new_session(import_onnxruntime(ACCELERATION_EXTRA), data))


# --------------------------------------------------------------------------- inputs


def default_inputs(signature: Signature, flavor: str) -> GraphInputs:
    """One numeric matrix for a table, or one 2-D tensor: what every converter takes."""
    schema = signature.inputs
    if not isinstance(schema, ColumnSchema):
        return tensor_inputs(schema, one_dimensional=False)
    columns = column_inputs(schema.columns)
    if not all_numeric(columns):
        raise GraphUnavailableError(
            f"{flavor} graphs take one numeric matrix, and this model's input has text or "
            "boolean columns"
        )
    return GraphInputs("matrix", (matrix_input(columns),))


def column_inputs(columns: Sequence[ColumnSpec]) -> tuple[GraphInput, ...]:
    """One [None, 1] input per column, named after it (dates are refused)."""
    dates = [c.name for c in columns if c.dtype == "datetime"]
    if dates:
        raise GraphUnavailableError(
            f"column {dates[0]!r} holds dates, which ONNX graphs do not take"
        )
    return tuple(GraphInput(c.name, _column_dtype(c), 1) for c in columns)


def all_numeric(inputs: Sequence[GraphInput]) -> bool:
    """Whether every input holds integers or floats."""
    return all(i.dtype.kind in "iuf" for i in inputs)


def matrix_input(columns: Sequence[GraphInput]) -> GraphInput:
    """The one ``MATRIX_INPUT`` holding numeric ``columns``, in a dtype all of them fit."""
    dtype = np.result_type(*(c.dtype for c in columns))
    return GraphInput(MATRIX_INPUT, dtype, len(columns))


def tensor_inputs(schema: TensorSchema, *, one_dimensional: bool) -> GraphInputs:
    """The signature's one 2-D tensor; or, with ``one_dimensional``, its 1-D tensors."""
    tensors = schema.tensors
    dtypes = [np.dtype(object if t.dtype == "string" else t.dtype) for t in tensors]
    if len(tensors) == 1 and len(tensors[0].shape) == 2:
        width = tensors[0].shape[1]
        return GraphInputs(
            "tensors", (GraphInput(tensors[0].name, dtypes[0], max(width, 0) or None),)
        )
    if one_dimensional and all(len(t.shape) == 1 for t in tensors):
        return GraphInputs(
            "tensors", tuple(GraphInput(t.name, d, 1) for t, d in zip(tensors, dtypes, strict=True))
        )
    shapes = ", ".join(f"{t.name} {list(t.shape)}" for t in tensors)
    raise GraphUnavailableError(
        f"the converters take one 2-D input (rows, features), or 1-D named inputs for "
        f"scikit-learn; this model takes {shapes}"
    )


def _column_dtype(column: ColumnSpec) -> np.dtype[Any]:
    if column.dtype in ("string", "category"):
        return np.dtype(object)
    dtype = np.dtype(column.dtype)
    # Missing values in an integer column arrive as NaN.
    return np.dtype(np.float64) if dtype.kind in "iu" and column.nullable else dtype


# ----------------------------------------------------------------------- conversion


def import_or_unavailable(module: str, extra: str) -> Any:
    """``module`` (a converter, onnxruntime), or ``GraphUnavailableError`` saying why not."""
    try:
        return require(module, extra=extra)
    except MissingDependencyError as exc:
        raise GraphUnavailableError(str(exc)) from None
    except ImportError as exc:  # installed but broken
        raise GraphUnavailableError(f"{module} cannot be imported: {exc}") from None


def type_plans(types: Any, inputs: GraphInputs, precisions: Sequence[str]) -> list[TypePlan]:
    """The initial types for each precision in turn, without repeats; ``types`` is the
    converter's data types module."""
    plans: list[TypePlan] = []
    for precision in precisions:
        plan = [
            (i.name, tensor_type(types, i.dtype, precision)([None, i.width])) for i in inputs.inputs
        ]
        if all(str(plan) != str(earlier) for earlier in plans):
            plans.append(plan)
    return plans


def tensor_type(types: Any, dtype: np.dtype[Any], precision: str) -> Any:
    """The converter's tensor type for values of ``dtype`` at ``precision``."""
    if dtype.kind in "OUS":
        return types.StringTensorType
    if dtype.kind == "b":
        return types.BooleanTensorType
    if precision == "double" and (dtype.kind in "iu" or dtype.itemsize == 8):
        return types.DoubleTensorType
    if precision == "float" and dtype.kind in "iu":
        return types.Int64TensorType
    return types.FloatTensorType


def convert_in_order(
    convert: Callable[[TypePlan], Any],
    plans: Sequence[TypePlan],
    explain: Callable[[Exception | None], str],
) -> OnnxGraph:
    """The graph ``convert`` makes (an ONNX ModelProto) from the first plan that both it
    and onnxruntime accept; else ``GraphUnavailableError`` with ``explain(first error)``."""
    failure: Exception | None = None
    for plan in plans:
        try:
            # The converters warn about their own internals (opsets, deprecations); the
            # graph is verified afterwards, so the warnings tell the user nothing.
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                data: bytes = convert(plan).SerializeToString()
            return open_graph(data)
        except Exception as exc:  # the converters and onnxruntime raise untyped errors
            failure = failure or exc
    raise GraphUnavailableError(explain(failure))


def first_line(exc: BaseException | None) -> str:
    """The start of an error message (converters put whole node dumps in theirs)."""
    text = str(exc).strip()
    if not text:
        return type(exc).__name__
    line = text.splitlines()[0]
    return line if len(line) <= 160 else line[:160].rstrip() + "..."
