"""What a served model takes and returns on the wire, derived from its signature.

A tabular model is served in one of two layouts:

* ``MATRIX``: every column is numeric, so the model takes one 2-D tensor ``input``
  of shape ``[-1, n_columns]`` (what V2 clients and ``{"inputs": [[...]]}`` send); the
  batch is one contiguous array, which is also what an ONNX graph wants;
* ``COLUMNS``: columns of different kinds (text, bool, dates, categories) are one
  1-D input each, named after the column.

Models with a tensor signature (``TENSORS``) take their named tensors as declared.
Outputs are ``predictions`` and, for classifiers, ``probabilities``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from enum import StrEnum
from functools import cached_property
from typing import Any

import numpy as np

from modelport.domain.layout import MATRIX_INPUT
from modelport.domain.signature import ColumnSchema, ColumnSpec, Signature, TensorSchema

PREDICTIONS = "predictions"
PROBABILITIES = "probabilities"

# V2 datatypes by numpy dtype name and back (text of any kind is BYTES).
DATATYPE_BY_DTYPE = {
    "bool": "BOOL",
    "int8": "INT8", "int16": "INT16", "int32": "INT32", "int64": "INT64",
    "uint8": "UINT8", "uint16": "UINT16", "uint32": "UINT32", "uint64": "UINT64",
    "float16": "FP16", "float32": "FP32", "float64": "FP64",
    "string": "BYTES", "datetime": "BYTES", "category": "BYTES",
}  # fmt: skip
DTYPE_BY_DATATYPE = {
    "BOOL": "bool",
    "INT8": "int8", "INT16": "int16", "INT32": "int32", "INT64": "int64",
    "UINT8": "uint8", "UINT16": "uint16", "UINT32": "uint32", "UINT64": "uint64",
    "FP16": "float16", "FP32": "float32", "FP64": "float64",
    "BYTES": "object",
}  # fmt: skip


class Layout(StrEnum):
    """How a model's inputs are laid out in a batch."""

    MATRIX = "matrix"
    COLUMNS = "columns"
    TENSORS = "tensors"


@dataclass(frozen=True)
class IOSpec:
    """One input or output as clients see it: name, V2 datatype, shape (-1 = any)."""

    name: str
    datatype: str
    shape: tuple[int, ...]
    nullable: bool = False

    def to_dict(self) -> dict[str, Any]:
        """The V2 metadata form."""
        return {"name": self.name, "datatype": self.datatype, "shape": list(self.shape)}

    @cached_property  # read on every request
    def dtype(self) -> np.dtype[Any]:
        """The numpy dtype arrays of this input or output have."""
        return np.dtype(DTYPE_BY_DATATYPE[self.datatype])

    @cached_property  # numpy computes ``dtype.name`` anew at each read
    def dtype_name(self) -> str:
        """The name of ``dtype`` (``float64``, ``object``, ...)."""
        return DTYPE_BY_DATATYPE[self.datatype]


@dataclass(frozen=True)
class ModelIO:
    """A served model's inputs and outputs, and the layout of its batches."""

    layout: Layout
    inputs: tuple[IOSpec, ...]
    outputs: tuple[IOSpec, ...]
    columns: tuple[ColumnSpec, ...] = ()

    @property
    def input_names(self) -> list[str]:
        """Names of the inputs, in order."""
        return [spec.name for spec in self.inputs]

    @cached_property
    def column_names(self) -> list[str]:
        """Column names of a tabular model, in signature order."""
        return [column.name for column in self.columns]

    def output(self, name: str) -> IOSpec | None:
        """The output called ``name``, if the model has it."""
        return next((spec for spec in self.outputs if spec.name == name), None)

    @classmethod
    def from_signature(
        cls, signature: Signature | None, *, supports_proba: bool, n_classes: int | None
    ) -> ModelIO:
        """The wire description of a model with this signature."""
        outputs = _outputs(signature, supports_proba, n_classes)
        if signature is None:
            return cls(Layout.TENSORS, (), outputs)
        schema = signature.inputs
        if isinstance(schema, TensorSchema):
            inputs = tuple(
                IOSpec(t.name, DATATYPE_BY_DTYPE[t.dtype], t.shape) for t in schema.tensors
            )
            return cls(Layout.TENSORS, inputs, outputs)
        return _tabular(schema, outputs)


def matrix_dtype(columns: Sequence[ColumnSpec]) -> np.dtype[Any] | None:
    """The one dtype all columns fit in, or None when some column is not numeric."""
    numeric = ("int", "uint", "float")
    if not columns or not all(c.dtype.startswith(numeric) for c in columns):
        return None
    return np.result_type(*(np.dtype(c.dtype) for c in columns))


def _tabular(schema: ColumnSchema, outputs: tuple[IOSpec, ...]) -> ModelIO:
    columns = schema.columns
    common = matrix_dtype(columns)
    if common is not None:
        nullable = any(c.nullable for c in columns)
        spec = IOSpec(MATRIX_INPUT, DATATYPE_BY_DTYPE[common.name], (-1, len(columns)), nullable)
        return ModelIO(Layout.MATRIX, (spec,), outputs, columns)
    inputs = tuple(
        IOSpec(c.name, DATATYPE_BY_DTYPE[c.dtype], (-1,), c.nullable or not c.required)
        for c in columns
    )
    return ModelIO(Layout.COLUMNS, inputs, outputs, columns)


def _outputs(
    signature: Signature | None, supports_proba: bool, n_classes: int | None
) -> tuple[IOSpec, ...]:
    predictions = IOSpec(PREDICTIONS, "FP64", (-1,))
    declared = signature.outputs if signature is not None else None
    if isinstance(declared, TensorSchema) and len(declared.tensors) == 1:
        tensor = declared.tensors[0]
        predictions = IOSpec(PREDICTIONS, DATATYPE_BY_DTYPE[tensor.dtype], tensor.shape)
    outputs = [predictions]
    if supports_proba:
        outputs.append(IOSpec(PROBABILITIES, "FP64", (-1, n_classes or -1)))
    return tuple(outputs)
