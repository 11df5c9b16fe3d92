"""Checking a batch against a signature's inputs before the model sees it.

``validate_batch`` accepts what the model accepts, converted to the signature's types by
the rules in ``modelport.domain.signature``, and raises ``InvalidInputError`` naming the
column or tensor otherwise. Tensors are checked here with numpy; tables in
``table_validation``, imported only when a table comes (it needs pandas, which the
serving path of a tensor model never loads).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from modelport.domain.layout import shape_fits
from modelport.domain.signature import (
    ColumnSchema,
    Schema,
    TensorSchema,
    TensorSpec,
    cast_error,
    cast_numeric,
)
from modelport.errors import InvalidInputError


def validate_batch(schema: Schema, batch: Any) -> Any:
    """Check ``batch`` against ``schema`` (a signature's ``inputs``) and return it in the
    form the model takes: a DataFrame for columns, an ndarray or a dict of them for
    tensors."""
    if isinstance(schema, ColumnSchema):
        from modelport.package.table_validation import validate_table  # pandas: tables only

        return validate_table(schema, batch)
    return validate_tensors(schema, batch)


def validate_tensors(schema: TensorSchema, batch: Any) -> np.ndarray | dict[str, np.ndarray]:
    """Return one ndarray (single tensor) or a dict of ndarrays, checked and cast."""
    if len(schema.tensors) == 1:
        spec = schema.tensors[0]
        if isinstance(batch, Mapping) and spec.name in batch:
            batch = batch[spec.name]
        return _coerce_tensor(batch, spec)
    if not isinstance(batch, Mapping):
        names = ", ".join(repr(t.name) for t in schema.tensors)
        raise InvalidInputError(
            f"the model takes the tensors {names}: pass a mapping of name to array",
            expected="mapping of tensor name to array",
            received=type(batch).__name__,
        )
    for spec in schema.tensors:
        if spec.name not in batch:
            raise InvalidInputError(
                f"missing input tensor {spec.name!r}",
                field=spec.name,
                expected=spec.describe(),
                received="no such tensor",
            )
    return {spec.name: _coerce_tensor(batch[spec.name], spec) for spec in schema.tensors}


def _coerce_tensor(batch: Any, spec: TensorSpec) -> np.ndarray:
    if type(batch).__module__.startswith("pandas"):  # a DataFrame of numbers
        batch = batch.to_numpy()
    try:
        array = np.asarray(batch)
    except ValueError:
        raise InvalidInputError(
            f"tensor {spec.name!r} is ragged: every row must have the same shape",
            field=spec.name,
            expected=spec.describe(),
            received="rows of different lengths",
        ) from None
    if not shape_fits(spec.shape, array.shape):
        raise InvalidInputError(
            f"tensor {spec.name!r} expects shape {list(spec.shape)} (-1 is any size), "
            f"got {list(array.shape)}",
            field=spec.name,
            expected=spec.describe(),
            received=f"shape {list(array.shape)}",
        )
    if array.shape[0] == 0:
        raise InvalidInputError(
            "the batch has no rows", field=spec.name, expected="at least one row"
        )
    return _cast_tensor(array, spec)


def _cast_tensor(array: np.ndarray, spec: TensorSpec) -> np.ndarray:
    if spec.dtype == "string":
        if array.dtype.kind in "OUS":
            return array
        raise cast_error(spec.name, "string", str(array.dtype))
    if spec.dtype == "bool":
        if array.dtype.kind == "b":
            return array
        raise cast_error(spec.name, "bool", str(array.dtype))
    if array.dtype.kind in "OUS":
        raise cast_error(spec.name, spec.dtype, "text")
    return cast_numeric(array, spec.dtype, spec.name, nullable=False)
