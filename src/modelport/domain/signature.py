"""Input and output signatures: what a model accepts and returns, as pure data.

A signature is stored in the package (``to_dict``/``from_dict``). It is inferred from a
sample in ``modelport.package.sample_schema`` (a DataFrame gives named, typed columns;
an ndarray a tensor with a variable batch dimension), and a batch is checked against it
in ``modelport.package.batch_validation``, which raises ``InvalidInputError`` naming the
column or tensor. This module holds the rules those follow.

Conversions validation makes (everything else is refused):

============================  =========================================================
received -> expected          rule
============================  =========================================================
int/uint -> float32/float64   accepted when every value converts exactly
                              (|v| <= 2**24 for float32, 2**53 for float64)
float64 -> float32            accepted when every finite value is in float32's range
float -> int                  accepted when every value is a whole number in range
int -> narrower/wider int     accepted when every value fits the expected type
text -> datetime              accepted when every value parses as a date/time
text/number -> category       accepted when every value is one of the categories
============================  =========================================================

Columns are matched by name and reordered to the signature's order; columns the
signature does not know are dropped; a missing column is an error unless it is
optional (``required=False``), in which case it is filled with missing values.

numpy is the one library imported here: the numeric rules (``cast_numeric``) and the
dtype of a sample array (``tensor_schema_of``) are rules about numpy dtypes. pandas
never is (an import-linter contract keeps it out of ``modelport.domain``).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np

from modelport.domain.params import ParamSchema
from modelport.errors import InvalidArgumentError, InvalidInputError, InvalidSampleError

NUMERIC_DTYPES = (
    "int8", "int16", "int32", "int64", "uint8", "uint16", "uint32", "uint64",
    "float16", "float32", "float64",
)  # fmt: skip
COLUMN_DTYPES = ("bool", *NUMERIC_DTYPES, "string", "datetime", "category")
TENSOR_DTYPES = ("bool", *NUMERIC_DTYPES, "string")
DEFAULT_TENSOR_NAME = "input"
_EXACT_INT_LIMIT = {"float16": 2**11, "float32": 2**24, "float64": 2**53}


@dataclass(frozen=True)
class ColumnSpec:
    """One named column: its type, whether it may hold missing values, whether it may be
    left out, and for ``category`` columns the allowed values."""

    name: str
    dtype: str
    nullable: bool = False
    required: bool = True
    categories: tuple[Any, ...] | None = None

    def to_dict(self) -> dict[str, Any]:
        data: dict[str, Any] = {"name": self.name, "dtype": self.dtype}
        if self.nullable:
            data["nullable"] = True
        if not self.required:
            data["required"] = False
        if self.categories is not None:
            data["categories"] = list(self.categories)
        return data


@dataclass(frozen=True)
class TensorSpec:
    """One named tensor: element type and shape, where -1 is any size."""

    name: str
    dtype: str
    shape: tuple[int, ...]

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "dtype": self.dtype, "shape": list(self.shape)}

    def describe(self) -> str:
        """The spec in words, for error messages: ``float32 of shape [-1, 3]``."""
        return f"{self.dtype} of shape {list(self.shape)}"


@dataclass(frozen=True)
class ColumnSchema:
    """A table of named, typed columns."""

    columns: tuple[ColumnSpec, ...]
    kind: str = field(default="columns", init=False)

    @property
    def names(self) -> list[str]:
        return [column.name for column in self.columns]

    def to_dict(self) -> dict[str, Any]:
        return {"kind": "columns", "columns": [column.to_dict() for column in self.columns]}


@dataclass(frozen=True)
class TensorSchema:
    """One or more named tensors."""

    tensors: tuple[TensorSpec, ...]
    kind: str = field(default="tensors", init=False)

    def to_dict(self) -> dict[str, Any]:
        return {"kind": "tensors", "tensors": [tensor.to_dict() for tensor in self.tensors]}


Schema = ColumnSchema | TensorSchema


@dataclass(frozen=True)
class Signature:
    """A model's input schema and, when known, its output schema and the inference
    parameters it declares (``modelport.domain.params``)."""

    inputs: Schema
    outputs: Schema | None = None
    params: ParamSchema | None = None
    # Columns that identify a row (``customer_id``): a request may send them, the server
    # logs them (``id_<name>``) and returns them, and the model never sees them.
    id_columns: tuple[str, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        data: dict[str, Any] = {
            "inputs": self.inputs.to_dict(),
            "outputs": self.outputs.to_dict() if self.outputs is not None else None,
        }
        if self.params is not None:  # absent, so packages without params read as before
            data["params"] = self.params.to_dict()
        if self.id_columns:  # likewise
            data["id_columns"] = list(self.id_columns)
        return data

    def with_id_columns(self, names: Sequence[str]) -> Signature:
        """This signature with ``names`` as its id columns (checked: distinct, non-empty
        names that are not inputs of the model)."""
        inputs = (
            {c.name for c in self.inputs.columns}
            if isinstance(self.inputs, ColumnSchema)
            else {t.name for t in self.inputs.tensors}
        )
        seen: set[str] = set()
        for name in names:
            if not isinstance(name, str) or not name.strip():
                raise InvalidArgumentError(
                    f"id column {name!r} is not a column name; give non-empty names",
                    field="id_columns",
                )
            if name in inputs:
                raise InvalidArgumentError(
                    f"id column {name!r} is also an input of the model; id columns are "
                    "never passed to the model: leave them out of the sample input",
                    field="id_columns",
                )
            if name in seen:
                raise InvalidArgumentError(f"id column {name!r} is given twice", field="id_columns")
            seen.add(name)
        return replace(self, id_columns=tuple(names))

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Signature:
        outputs = data.get("outputs")
        params = data.get("params")
        return cls(
            inputs=schema_from_dict(data["inputs"]),
            outputs=schema_from_dict(outputs) if outputs is not None else None,
            params=ParamSchema.from_dict(params) if params else None,
            id_columns=tuple(str(name) for name in data.get("id_columns") or ()),
        )


def schema_from_dict(data: Mapping[str, Any]) -> Schema:
    """Rebuild a schema from its ``to_dict`` form."""
    if data.get("kind") == "columns":
        return ColumnSchema(
            tuple(
                ColumnSpec(
                    name=str(c["name"]),
                    dtype=_checked_dtype(c["dtype"], COLUMN_DTYPES),
                    nullable=bool(c.get("nullable", False)),
                    required=bool(c.get("required", True)),
                    categories=tuple(c["categories"]) if c.get("categories") is not None else None,
                )
                for c in data["columns"]
            )
        )
    if data.get("kind") == "tensors":
        return TensorSchema(
            tuple(
                TensorSpec(
                    name=str(t["name"]),
                    dtype=_checked_dtype(t["dtype"], TENSOR_DTYPES),
                    shape=tuple(int(d) for d in t["shape"]),
                )
                for t in data["tensors"]
            )
        )
    raise ValueError(f"unknown schema kind {data.get('kind')!r}; expected 'columns' or 'tensors'")


def _checked_dtype(dtype: Any, allowed: Sequence[str]) -> str:
    if dtype not in allowed:
        raise ValueError(f"unknown dtype {dtype!r}; expected one of {', '.join(allowed)}")
    return str(dtype)


# ----------------------------------------------------------------- rules on numpy dtypes


def tensor_dtype_name(dtype: np.dtype[Any]) -> str:
    """The signature dtype for a numpy dtype (text of any kind is ``string``)."""
    if dtype.kind in "OUS":
        return "string"
    if dtype.name not in TENSOR_DTYPES:
        raise InvalidSampleError(f"unsupported tensor dtype {dtype}; supported: {TENSOR_DTYPES}")
    return dtype.name


def tensor_schema_of(
    sample: np.ndarray | Mapping[str, np.ndarray], default_name: str = DEFAULT_TENSOR_NAME
) -> TensorSchema:
    """The schema of sample arrays: one tensor ``default_name`` for an array, named tensors
    for a mapping; each keeps its dtype and its shape with a variable batch dimension."""
    arrays = sample if isinstance(sample, Mapping) else {default_name: sample}
    return TensorSchema(tuple(_tensor_spec(str(name), arrays[name]) for name in arrays))


def _tensor_spec(name: str, array: np.ndarray) -> TensorSpec:
    array = np.asarray(array)
    return TensorSpec(name=name, dtype=tensor_dtype_name(array.dtype), shape=(-1, *array.shape[1:]))


def cast_numeric(values: np.ndarray, dtype: str, name: str, *, nullable: bool = True) -> np.ndarray:
    """Cast a numeric array to ``dtype`` by the rules in this module's docstring."""
    target = np.dtype(dtype)
    source = values.dtype
    if source == target:
        return values
    if source.kind == "b":
        raise cast_error(name, dtype, "bool")
    if target.kind == "f":
        return _to_float(values, target, name)
    if target.kind in "iu":
        return _to_int(values, target, name, nullable=nullable)
    raise cast_error(name, dtype, str(source))


def _to_float(values: np.ndarray, target: np.dtype[Any], name: str) -> np.ndarray:
    if values.dtype.kind in "iu":
        limit = _EXACT_INT_LIMIT[target.name]
        if values.size and np.abs(values.astype("float64")).max() > limit:
            raise cast_error(
                name, target.name, str(values.dtype), f"integers beyond {limit} lose precision"
            )
        return values.astype(target)
    if values.dtype.kind == "f" and target.itemsize < values.dtype.itemsize:
        finite = values[np.isfinite(values)]
        if finite.size and np.abs(finite).max() > np.finfo(target).max:
            raise cast_error(name, target.name, str(values.dtype), "values out of range")
        return values.astype(target)
    if values.dtype.kind == "f":
        return values.astype(target)
    raise cast_error(name, target.name, str(values.dtype))


def _to_int(values: np.ndarray, target: np.dtype[Any], name: str, *, nullable: bool) -> np.ndarray:
    if values.dtype.kind == "f":
        if np.isnan(values).any():
            if nullable:  # whole numbers with gaps stay float, as pandas keeps them
                return values
            raise cast_error(name, target.name, "missing values")
        if not np.all(np.isfinite(values)) or not np.all(np.mod(values, 1) == 0):
            raise cast_error(name, target.name, str(values.dtype), "values are not whole numbers")
    elif values.dtype.kind not in "iu":
        raise cast_error(name, target.name, str(values.dtype))
    info = np.iinfo(target)
    if values.size and (values.min() < info.min or values.max() > info.max):
        raise cast_error(
            name, target.name, str(values.dtype), f"values outside [{info.min}, {info.max}]"
        )
    return values.astype(target)


def cast_error(name: str, expected: str, received: str, detail: str = "") -> InvalidInputError:
    """The ``InvalidInputError`` for a value of ``name`` that cannot become ``expected``."""
    message = f"{name!r} expects {expected}, got {received}"
    return InvalidInputError(
        f"{message}{': ' + detail if detail else ''}",
        field=name,
        expected=expected,
        received=received,
    )
