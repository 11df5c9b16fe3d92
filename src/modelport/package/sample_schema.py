"""Inferring a schema from a sample: a DataFrame gives typed columns, an ndarray a tensor
with a variable batch dimension, a dict of arrays named tensors.

This is where pandas meets the signature (``modelport.domain.signature`` stays pure):
the package writer calls it on the sample input, and ``modelport.infer_signature``
exposes it.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

import numpy as np
import pandas as pd

from modelport.domain.params import ParamSchema, ParamSpec, param_schema_of
from modelport.domain.signature import (
    DEFAULT_TENSOR_NAME,
    NUMERIC_DTYPES,
    ColumnSchema,
    ColumnSpec,
    Schema,
    Signature,
    tensor_schema_of,
)
from modelport.errors import InvalidSampleError

DEFAULT_OUTPUT_NAME = "predictions"


def infer_signature(
    sample: Any,
    predictions: Any = None,
    params: ParamSchema | Mapping[str, Any] | Iterable[ParamSpec] | None = None,
) -> Signature:
    """The signature of a model taking ``sample``: inputs from the sample and, when given,
    outputs from the model's ``predictions`` on it, and the inference parameters it
    declares, as MLflow's ``infer_signature(model_input, model_output, params)``:
    ``params`` maps each name to its default value (its type is inferred from it), or
    is a ``ParamSchema`` or a list of ``ParamSpec`` for explicit types."""
    inputs = infer_schema(sample)
    outputs = infer_schema(predictions, DEFAULT_OUTPUT_NAME) if predictions is not None else None
    declared = param_schema_of(params) if params is not None else None
    return Signature(inputs=inputs, outputs=outputs, params=declared or None)


def infer_schema(data: Any, default_name: str = DEFAULT_TENSOR_NAME) -> Schema:
    """Infer a schema from a sample or from a model's predictions (an unnamed tensor is
    called ``default_name``)."""
    native = normalize_sample(data)
    if isinstance(native, pd.DataFrame):
        return ColumnSchema(tuple(_infer_column(str(name), native[name]) for name in native))
    return tensor_schema_of(native, default_name)


def normalize_sample(sample: Any) -> pd.DataFrame | np.ndarray | dict[str, np.ndarray]:
    """Turn a sample into a DataFrame, an ndarray or a dict of ndarrays, or raise
    ``InvalidSampleError`` when it is empty or of an unknown kind."""
    data = _to_native(sample)
    rows = _row_count(data)
    if rows == 0:
        raise InvalidSampleError("the sample input has no rows; pass at least one example row")
    return data


def _to_native(sample: Any) -> pd.DataFrame | np.ndarray | dict[str, np.ndarray]:  # noqa: PLR0911
    if isinstance(sample, pd.DataFrame):
        return sample
    if isinstance(sample, pd.Series):
        return sample.to_frame(name=sample.name if sample.name is not None else "value")
    if isinstance(sample, np.ndarray):
        return sample
    if isinstance(sample, Mapping):
        values = list(sample.values())
        if values and all(isinstance(v, np.ndarray) for v in values):
            return {str(k): v for k, v in sample.items()}
        return pd.DataFrame(sample)
    if hasattr(sample, "detach") and hasattr(sample, "numpy"):  # a torch tensor
        return np.asarray(sample.detach().cpu().numpy())
    if isinstance(sample, list | tuple):
        if sample and all(isinstance(row, Mapping) for row in sample):
            return pd.DataFrame(list(sample))
        return np.asarray(sample)
    raise InvalidSampleError(
        f"cannot use a {type(sample).__name__} as a sample input: pass a pandas DataFrame, "
        "a numpy array, a list of records or a dict of columns"
    )


def _row_count(data: pd.DataFrame | np.ndarray | dict[str, np.ndarray]) -> int:
    if isinstance(data, dict):
        return min((len(v) if v.ndim else 0) for v in data.values()) if data else 0
    if isinstance(data, np.ndarray) and data.ndim == 0:
        return 0
    return len(data)


def _infer_column(name: str, series: pd.Series) -> ColumnSpec:
    nullable = bool(series.isna().any())
    dtype = series.dtype
    if isinstance(dtype, pd.CategoricalDtype):
        categories = tuple(dtype.categories.tolist())
        return ColumnSpec(name, "category", nullable=nullable, categories=categories)
    return ColumnSpec(name, _column_dtype_name(name, series), nullable=nullable)


def _column_dtype_name(name: str, series: pd.Series) -> str:
    dtype = series.dtype
    if pd.api.types.is_bool_dtype(dtype):
        return "bool"
    if pd.api.types.is_numeric_dtype(dtype):
        numpy_dtype = getattr(dtype, "numpy_dtype", dtype)
        if np.dtype(numpy_dtype).name in NUMERIC_DTYPES:
            return str(np.dtype(numpy_dtype).name)
    if pd.api.types.is_datetime64_any_dtype(dtype):
        return "datetime"
    inferred = pd.api.types.infer_dtype(series, skipna=True)
    by_kind = {
        "string": "string", "empty": "string", "boolean": "bool", "integer": "int64",
        "floating": "float64", "mixed-integer-float": "float64", "datetime": "datetime",
        "datetime64": "datetime",
    }  # fmt: skip
    if inferred in by_kind:
        return by_kind[inferred]
    raise InvalidSampleError(
        f"column {name!r} holds values of mixed or unsupported kinds ({inferred}); "
        "give it one type: text, number, bool, datetime or category",
        field=name,
    )
